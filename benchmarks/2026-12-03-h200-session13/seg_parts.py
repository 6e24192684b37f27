"""Session 13, call 4: the backward's segment count now that its summary launch skips the segment no other folds in
(its cost is (nseg - 1) / nseg of a pass over L): the scan's backward (summary + main) at Ti 8f and 64f for several
``VIDEOMAMBA_TRITON_BWD_SEGMENTS`` against the default (config.quantized_segments), and the forward's at 64f
(``SEGMENTS``), timed interleaved, with the torch profiler's per-kernel device time.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session13/seg_parts.py OUT_DIR
"""
import json
import sys

import torch

from videomamba.bench.scan_kernels import make_inputs, time_interleaved, triton_env
from videomamba.ops.triton.bimamba_inner import row_pitch
from videomamba.ops.triton.config import scan_config
from videomamba.ops.triton.launch import ScanDir, scan_bwd, scan_fwd

KEYS = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def model_rows(t, pitch):
    """(B, N, L) -> the first L columns of (B, N, pitch) rows, zero past L (x_proj's output layout)."""
    buf = t.new_zeros(*t.shape[:-1], pitch)
    buf[..., :t.shape[-1]] = t
    return buf[..., :t.shape[-1]]


def kernel_ms(fn, names, calls=10):
    """Mean device ms per call of each kernel whose name starts with one of ``names`` (torch profiler)."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return {n: sum(getattr(e, "self_device_time_total", 0) for e in prof.key_averages() if e.key.startswith(n))
            / 1e3 / calls for n in names}

VARIANTS = {"ti-8f": [2, 3, 6, 8], "ti-64f": [11, 22, 33]}
out = {}
for label, dim, batch, frames in (("ti-8f", 384, 32, 8), ("ti-64f", 384, 4, 64)):
    x = make_inputs(dim, batch, frames, torch.device("cuda"))
    length = x["u_f"].shape[-1]
    pitch = row_pitch(length, x["u_f"].device)
    for t in "fb":
        x[f"B_{t}"], x[f"C_{t}"] = model_rows(x[f"B_{t}"], pitch), model_rows(x[f"C_{t}"], pitch)
    dirs = [ScanDir(*[x[f"{k}_{t}"] for k in KEYS], bc_pad_finite=True) for t in "fb"]
    z = x["z"]
    _y, _h, _l, cfg = scan_fwd(dirs, z, True, False, store_states=False, return_last=False)
    hss = scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True)[1]
    dout = torch.randn_like(x["u_f"])
    default = scan_config(batch, dim, 16, length, (dim, dim), x["u_f"].device, backward=True,
                          block_l=cfg["BLOCK_L"] // cfg["HS_SPLIT"])["nseg"]

    def bwd():
        return scan_bwd(dirs, z, hss, dout, None, True, False, cfg)

    entries, names, prof = [], [], {}
    for n in [None] + [v for v in VARIANTS[label] if v != default]:
        env = {} if n is None else {"BWD_SEGMENTS": n}
        name = f"default ({default})" if n is None else f"BWD_SEGMENTS={n}"
        with triton_env(env), torch.no_grad():
            prof[name] = kernel_ms(bwd, ["selective_scan_bwd_kernel", "sloop_bwd_kernel"])
        entries.append((env, bwd))
        names.append(name)
    if label == "ti-64f":  # the forward's segments too (its summary is also a pass over (nseg - 1) / nseg of L)
        def fwd():
            return scan_fwd(dirs, z, True, False, store_states=False, return_last=False)
        for n in (None, 11, 33):
            env = {} if n is None else {"SEGMENTS": n}
            name = f"fwd default ({cfg['nseg']})" if n is None else f"fwd SEGMENTS={n}"
            with triton_env(env), torch.no_grad():
                prof[name] = kernel_ms(fwd, ["selective_scan_fwd_kernel", "sloop_fwd_kernel"])
            entries.append((env, fwd))
            names.append(name)
    ms = time_interleaved(entries, rounds=6, per_round=8)
    out[label] = {"interleaved_ms": dict(zip(names, ms)), "profiler_ms": prof}
    print(label, json.dumps(out[label], indent=1), flush=True)
json.dump(out, open(sys.argv[1] + "/seg_parts.json", "w"), indent=1)
