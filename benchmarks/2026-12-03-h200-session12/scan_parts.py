"""Session 12 calls 1-2: the Ti scan's launches one by one with B and C as the model lays them out (the
first L columns of x_proj's output rows, at the padded pitch, zero past L), their loads 16 bytes at a
time (``VIDEOMAMBA_TRITON_BC_VEC``, default) against one per position (=0), timed interleaved (CUDA
events, rotating rounds): the forward (summary + main), the backward's states-only re-run (kept
summaries), the backward (summary + main), at Ti 8f and 64f, bf16 inputs as the model feeds them.
Call 2 adds the backward's state loop unrolled (``VIDEOMAMBA_TRITON_BWD_UNROLL``, default) against not.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session12/scan_parts.py OUT_DIR [call2]
"""
import json
import sys

import torch

from videomamba.bench.scan_kernels import SHAPES, make_inputs, time_interleaved
from videomamba.ops.triton.bimamba_inner import row_pitch
from videomamba.ops.triton.config import LAST_LAUNCH
from videomamba.ops.triton.launch import ScanDir, SegmentSummaries, scan_bwd, scan_fwd

KEYS = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def model_rows(t, pitch):
    """(B, N, L) -> the first L columns of (B, N, pitch) rows, zero past L (x_proj's output layout)."""
    buf = t.new_zeros(*t.shape[:-1], pitch)
    buf[..., :t.shape[-1]] = t
    return buf[..., :t.shape[-1]]


out = {}
for label, dim, batch, frames in SHAPES:
    if label not in ("ti-8f", "ti-64f"):
        continue
    x = make_inputs(dim, batch, frames, torch.device("cuda"))
    length = x["u_f"].shape[-1]
    pitch = row_pitch(length, x["u_f"].device)
    for t in "fb":
        x[f"B_{t}"], x[f"C_{t}"] = model_rows(x[f"B_{t}"], pitch), model_rows(x[f"C_{t}"], pitch)
    dirs = [ScanDir(*[x[f"{k}_{t}"] for k in KEYS], bc_pad_finite=True) for t in "fb"]
    z = x["z"]
    summ = SegmentSummaries()
    _y, _h, _l, cfg = scan_fwd(dirs, z, True, False, store_states=False, return_last=False, summaries=summ)
    dout = torch.randn_like(x["u_f"])
    hss = scan_fwd(dirs, z, True, False, store_states=True, return_last=False, summaries=summ, states_only=True)[1]

    # correctness: the vector loads (and the unrolled backward) give the scalar loads' (rolled) results
    with torch.no_grad():
        res = {}
        import os
        for v in ("1", "0"):
            os.environ["VIDEOMAMBA_TRITON_BC_VEC"] = v
            # call 2: the unrolled backward with vector loads against the rolled one without
            os.environ["VIDEOMAMBA_TRITON_BWD_UNROLL"] = v if sys.argv[2:] == ["call2"] else "0"
            y = scan_fwd(dirs, z, True, False, store_states=False, return_last=False)[0].float()
            g = scan_bwd(dirs, z, hss, dout, None, True, False, cfg)[0].grads([d.B4 for d in dirs], [d.C4 for d in dirs])
            res[v] = (y, [t.float() for per in g for t in per if t is not None], LAST_LAUNCH["fwd_bc_vec"],
                      LAST_LAUNCH["bwd_bc_vec"])
        os.environ.pop("VIDEOMAMBA_TRITON_BC_VEC")
        os.environ.pop("VIDEOMAMBA_TRITON_BWD_UNROLL")
        check = {"vec_widths_on": res["1"][2:], "vec_widths_off": res["0"][2:],
                 "out_max_rel": ((res["1"][0] - res["0"][0]).abs().max() / res["0"][0].abs().max()).item(),
                 "grads_max_rel": max(((a - b).abs().max() / (b.abs().max() + 1e-12)).item()
                                      for a, b in zip(res["1"][1], res["0"][1]))}
    print(label, "check", check, flush=True)

    def fwd():
        scan_fwd(dirs, z, True, False, store_states=False, return_last=False)

    def rerun():
        scan_fwd(dirs, z, True, False, store_states=True, return_last=False, summaries=summ, states_only=True)

    def bwd():
        scan_bwd(dirs, z, hss, dout, None, True, False, cfg)

    variants = [{"BC_VEC": 1}, {"BC_VEC": 0}]
    if sys.argv[2:] == ["call2"]:
        variants = [{"BC_VEC": 1, "BWD_UNROLL": 1}, {"BC_VEC": 1, "BWD_UNROLL": 0}, {"BC_VEC": 0, "BWD_UNROLL": 0}]
    entries, names = [], []
    for name, f in (("fwd (summary + main)", fwd), ("re-run (states only)", rerun), ("bwd (summary + main)", bwd)):
        for v in variants:
            if name.startswith("bwd") or "BWD_UNROLL" not in v or v["BWD_UNROLL"] == 1:
                entries.append((v, f))
                names.append(f"{name}, " + ", ".join(f"{k}={x}" for k, x in v.items()))
    meds = time_interleaved(entries, rounds=6, per_round=8)
    out[label] = dict(zip(names, meds)) | {"check": check}
    out[label]["launch"] = {k: {a: getattr(v, a, None) for a in ("n_regs", "n_spills")} for k, v in LAST_LAUNCH.items()
                            if not isinstance(v, int)}
    print(label, json.dumps(out[label], indent=1), flush=True)
json.dump(out, open(sys.argv[1] + "/scan_parts.json", "w"), indent=1)
