"""Session 14, call 2: the sloop kernels asking L1 for the next tile's B and C rows (``PREFETCH_BC`` in the
forward and its states-only re-run, ``BWD_PREFETCH_BC`` in the backward) against the defaults. Per Ti shape
(8f x 32, 64f x 4; B and C at the model's padded pitch): the forward, the re-run and the backward (summary +
main), timed interleaved (CUDA events, rotating rounds), each main kernel's device time (torch profiler),
registers and spills, results against the default's.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session14/bc_parts.py OUT_DIR [VARIANTS_JSON]

VARIANTS_JSON (call 3): {"fwd": [...], "rerun": [...], "bwd": [...]}, each a list of environment overrides (the
first is the reference of the bitwise checks); the results then go to bc_parts_<N>.json, N = the argument count.
"""
import json
import sys

import torch

from videomamba.bench.scan_kernels import make_inputs, time_interleaved, triton_env
from videomamba.ops.triton.bimamba_inner import row_pitch
from videomamba.ops.triton.config import LAST_LAUNCH
from videomamba.ops.triton.launch import ScanDir, SegmentSummaries, scan_bwd, scan_fwd

KEYS = ("u", "delta", "A", "B", "C", "D", "delta_bias")
SHAPES = (("ti-8f", 384, 32, 8), ("ti-64f", 384, 4, 64))
VARIANTS = {"fwd": [{}, {"PREFETCH_BC": 1}], "rerun": [{}, {"PREFETCH_BC": 1}], "bwd": [{}, {"BWD_PREFETCH_BC": 1}]}
if len(sys.argv) > 2:
    VARIANTS = json.loads(sys.argv[2])


def model_rows(t, pitch):
    buf = t.new_zeros(*t.shape[:-1], pitch)
    buf[..., :t.shape[-1]] = t
    return buf[..., :t.shape[-1]]


def kernel_ms(fn, name, calls=10):
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return sum(getattr(e, "self_device_time_total", 0) for e in prof.key_averages() if e.key.startswith(name)) / 1e3 / calls


def label(v):
    return ", ".join(f"{k}={x}" for k, x in v.items()) or "default"


out = {}
for shape, dim, batch, frames in SHAPES:
    x = make_inputs(dim, batch, frames, torch.device("cuda"))
    pitch = row_pitch(x["u_f"].shape[-1], x["u_f"].device)
    for t in "fb":
        x[f"B_{t}"], x[f"C_{t}"] = model_rows(x[f"B_{t}"], pitch), model_rows(x[f"C_{t}"], pitch)
    dirs = [ScanDir(*[x[f"{k}_{t}"] for k in KEYS], bc_pad_finite=True) for t in "fb"]
    z = x["z"]
    summ = SegmentSummaries()
    _y, _h, _l, cfg = scan_fwd(dirs, z, True, False, store_states=False, return_last=False, summaries=summ)
    hss = scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True, summaries=summ)[1]
    dout = torch.randn_like(x["u_f"])
    parts = {
        "fwd": lambda: [scan_fwd(dirs, z, True, False, store_states=False, return_last=False)[0]],
        "rerun": lambda: list(scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True,
                                       summaries=summ)[1]),
        "bwd": lambda: (lambda r: [t for per in r[0].grads([d.B4 for d in dirs], [d.C4 for d in dirs]) for t in per
                                   if t is not None] + [r[1]])(scan_bwd(dirs, z, hss, dout, None, True, False, cfg)),
    }
    entries, names, checks, prof = [], [], {}, {}
    for part, fn in ((p, f) for p, f in parts.items() if VARIANTS.get(p)):
        ref = None
        for v in VARIANTS[part]:
            with triton_env(v), torch.no_grad():
                val = fn()
                if ref is None:
                    ref = val
                else:
                    checks[f"{part}: {label(v)}"] = all(torch.equal(a, b) for a, b in zip(val, ref))
                k = LAST_LAUNCH.get("bwd" if part == "bwd" else "fwd")
                prof[f"{part}: {label(v)}"] = {
                    "kernel_ms": kernel_ms(fn, "sloop_bwd_kernel" if part == "bwd" else "sloop_fwd_kernel"),
                    "n_regs": getattr(k, "n_regs", None), "n_spills": getattr(k, "n_spills", None)}
            entries.append((v, fn))
            names.append(f"{part}: {label(v)}")
    meds = time_interleaved(entries, rounds=8, per_round=8)
    out[shape] = {"nseg": cfg["nseg"], "interleaved_ms": dict(zip(names, meds)), "profiler": prof, "bitwise": checks}
    print(shape, json.dumps(out[shape], indent=1), flush=True)
json.dump(out, open(sys.argv[1] + ("/bc_parts.json" if len(sys.argv) == 2 else "/bc_parts_3.json"), "w"), indent=1)
