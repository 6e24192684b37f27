"""Session 13: the scan's segment-summary launches: the segment no other segment folds in skipped
(``VIDEOMAMBA_TRITON_SUM_SKIP``, default on) and the summaries' own position tiles (``_SUM_BLOCK_L`` /
``_BWD_SUM_BLOCK_L``), at Ti 8f and 64f with B and C as the model
lays them out. Per variant: the forward (summary + main) and the backward (summary + main) timed interleaved (CUDA
events, rotating rounds), the summary launch's own device time from the torch profiler, its registers and
spills, and its results against the default's.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session13/scan_parts.py OUT_DIR
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
# the summaries before this session first (every segment, the main launch's tiles); {} = the defaults (the unused
# segment skipped); then the summaries' own position tiles
BWD = [{"SUM_SKIP": 0}, {}, {"BWD_SUM_BLOCK_L": 16}, {"BWD_SUM_BLOCK_L": 32}]
FWD = [{"SUM_SKIP": 0}, {}, {"SUM_BLOCK_L": 32}]


def model_rows(t, pitch):
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
    out = {n: 0.0 for n in names}
    for e in prof.key_averages():
        for n in names:
            if e.key.startswith(n):
                out[n] += getattr(e, "self_device_time_total", 0) / 1e3 / calls
    return out


def name(v):
    return ", ".join(f"{k}={x}" for k, x in v.items()) or "default"


out = {}
for label, dim, batch, frames in SHAPES:
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
    res = {"cfg": {k: cfg[k] for k in ("nseg", "BLOCK_L", "SUM_BLOCK_L", "SUM_BLOCK_D", "sum_num_warps")}}

    def fwd():
        return scan_fwd(dirs, z, True, False, store_states=False, return_last=False)[0]

    def bwd():
        return scan_bwd(dirs, z, hss, dout, None, True, False, cfg)

    with torch.no_grad():
        ref_y = fwd().float()
        ref_g = [t.float() for per in bwd()[0].grads([d.B4 for d in dirs], [d.C4 for d in dirs]) for t in per
                 if t is not None]
    entries, names, checks, prof = [], [], {}, {}
    for part, fn, variants, kname in (("bwd", bwd, BWD, "selective_scan_bwd_kernel"),  # tile3d's summary
                                      ("fwd", fwd, FWD if cfg["nseg"] > 1 or frames == 64 else [], "selective_scan_fwd_kernel")):
        for v in variants:
            with triton_env(v), torch.no_grad():
                if part == "fwd":
                    y = fn().float()
                    checks[f"{part}: {name(v)}"] = ((y - ref_y).abs().max() / ref_y.abs().max()).item()
                else:
                    g = [t.float() for per in fn()[0].grads([d.B4 for d in dirs], [d.C4 for d in dirs]) for t in per
                         if t is not None]
                    checks[f"{part}: {name(v)}"] = max(((a - b).abs().max() / (b.abs().max() + 1e-12)).item()
                                                       for a, b in zip(g, ref_g))
                key = f"{part}_summary"
                launch = LAST_LAUNCH.get(key)
                prof[f"{part}: {name(v)}"] = kernel_ms(fn, [kname, f"sloop_{part}_kernel"]) | (
                    {"n_regs": getattr(launch, "n_regs", None), "n_spills": getattr(launch, "n_spills", None)})
            entries.append((v, fn))
            names.append(f"{part}: {name(v)}")
    meds = time_interleaved(entries, rounds=6, per_round=8)
    res |= {"interleaved_ms": dict(zip(names, meds)), "profiler_ms": prof, "max_rel_vs_default": checks}
    out[label] = res
    print(label, json.dumps(res, indent=1), flush=True)
json.dump(out, open(sys.argv[1] + "/scan_parts.json", "w"), indent=1)
