"""Session 11 call 2: the Ti scan's launches one by one (CUDA events, interleaved rounds): the forward
(output, summaries), the backward's states-only re-run (kept summaries), and the backward (its summary
launch + main kernel), at Ti 8f and 64f, bf16 inputs as the model feeds them. Where does the re-run's
time stand against the forward it repeats?

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session11/scan_parts.py OUT_DIR
"""
import json
import sys

import torch

from videomamba.bench.scan_kernels import SHAPES, make_inputs, time_interleaved
from videomamba.ops.triton.config import LAST_LAUNCH
from videomamba.ops.triton.launch import ScanDir, SegmentSummaries, scan_bwd, scan_fwd

out = {}
for label, dim, batch, frames in SHAPES:
    if label not in ("ti-8f", "ti-64f"):
        continue
    x = make_inputs(dim, batch, frames, torch.device("cuda"))
    dirs = [ScanDir(*[x[f"{k}_{t}"] for k in ("u", "delta", "A", "B", "C", "D", "delta_bias")]) for t in "fb"]
    z = x["z"]
    summ = SegmentSummaries()
    _y, _h, _l, cfg = scan_fwd(dirs, z, True, False, store_states=False, return_last=False, summaries=summ)
    dout = torch.randn_like(x["u_f"])

    def fwd():
        scan_fwd(dirs, z, True, False, store_states=False, return_last=False)

    def rerun():
        return scan_fwd(dirs, z, True, False, store_states=True, return_last=False, summaries=summ, states_only=True)

    def fwd_states():
        scan_fwd(dirs, z, True, False, store_states=True, return_last=False, summaries=summ)

    hss = rerun()[1]

    def bwd():
        scan_bwd(dirs, z, hss, dout, None, True, False, cfg)

    names = ["fwd (summary + main)", "re-run (states only)", "fwd with states, kept summaries", "bwd (summary + main)"]
    meds = time_interleaved([(None, f) for f in (fwd, rerun, fwd_states, bwd)], rounds=5, per_round=8)
    out[label] = dict(zip(names, meds))
    out[label]["launch"] = {k: {a: getattr(v, a, None) for a in ("n_regs", "n_spills")} for k, v in LAST_LAUNCH.items()}
    print(label, json.dumps(out[label], indent=1), flush=True)
json.dump(out, open(sys.argv[1] + "/scan_parts.json", "w"), indent=1)
