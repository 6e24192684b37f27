"""Session 13: the RMSNorm backward of one Ti block at 8 frames x 32 clips (50,208 tokens x 192, fp32 residual,
bf16 output gradient): torch's fused backward computing the weight's gradient too (GammaBetaBackward, before) against
the fused backward for the input's gradient only plus a product and a matrix-vector product (now), interleaved.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session13/norm_parts.py OUT_DIR
"""
import json
import sys

import torch

from videomamba.bench.scan_kernels import time_interleaved

g = torch.Generator(device="cuda").manual_seed(0)
res = torch.randn(32, 1569, 192, device="cuda", generator=g)
w = 1 + 0.1 * torch.randn(192, device="cuda", generator=g)
dout = torch.randn(32, 1569, 192, device="cuda", generator=g).bfloat16()
normed, rstd = torch._fused_rms_norm(res, [192], w, 1e-5)


def before():
    return torch.ops.aten._fused_rms_norm_backward(dout.float(), res, [192], rstd, w, [True, True])


def now():  # call 3: the bf16 gradient times the fp32 residual (a mixed-dtype product)
    dr, _ = torch.ops.aten._fused_rms_norm_backward(dout.float(), res, [192], rstd, w, [True, False])
    return dr, (dout * res).reshape(-1, 192).t().mv(rstd.reshape(-1))


def now_d32():  # call 4, the code as it landed: the gradient cast to fp32 once, for both
    d32 = dout.float()
    dr, _ = torch.ops.aten._fused_rms_norm_backward(d32, res, [192], rstd, w, [True, False])
    return dr, (d32 * res).reshape(-1, 192).t().mv(rstd.reshape(-1))


a, b, c = before(), now(), now_d32()
rel = ((a[1] - b[1]).abs().max() / a[1].abs().max()).item()
rel_c = ((a[1] - c[1]).abs().max() / a[1].abs().max()).item()
ms = time_interleaved([({}, before), ({}, now), ({}, now_d32)], rounds=6, per_round=20)
out = {"before_ms": ms[0], "now_ms": ms[1], "now_d32_ms": ms[2], "dweight_max_rel": rel, "dweight_d32_max_rel": rel_c,
       "dr_equal": bool(torch.equal(a[0], b[0])), "dr_d32_equal": bool(torch.equal(a[0], c[0]))}
print(json.dumps(out))
json.dump(out, open(sys.argv[1] + "/norm_parts.json", "w"))
