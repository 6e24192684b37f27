"""Session 13: the depthwise conv's kernels at Ti 8f and 64f (x in in_proj's layout, bf16), the code before this
session (``conv_before.py``: exp and IEEE divisions in SiLU and its derivative, one tile per backward program)
against this session's: the forward, and the backward written out for K = 4 (``k4``) with 1-8 position tiles per
program (``CONV_BWD_LTILES``), and the two-pass backward (``twopass``: dpre once per position, then dx). Timed
interleaved (CUDA events, rotating rounds), with the torch profiler's per-kernel device time, and each variant's
dx / dweight / dbias against the old code's.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session13/conv_parts.py OUT_DIR
"""
import importlib.util
import json
import pathlib
import sys

import torch

import videomamba.ops.triton as pkg
from videomamba.bench.conv_kernels import make_inputs
from videomamba.bench.scan_kernels import time_interleaved, triton_env
from videomamba.ops.triton import causal_conv1d as new

spec = importlib.util.spec_from_file_location("videomamba.ops.triton.conv_before",
                                              pathlib.Path(__file__).with_name("conv_before.py"),
                                              submodule_search_locations=None)
old = importlib.util.module_from_spec(spec)
old.__package__ = pkg.__name__
spec.loader.exec_module(old)

BWD = [("old k4", old, {}), ("k4 LTILES=1", new, {"CONV_BWD_LTILES": 1}), ("k4 LTILES=2", new, {"CONV_BWD_LTILES": 2}),
       ("k4 LTILES=4", new, {"CONV_BWD_LTILES": 4}), ("k4 LTILES=8", new, {"CONV_BWD_LTILES": 8}),
       ("twopass LTILES=1", new, {"CONV_BWD_KERNEL": "twopass", "CONV_BWD_LTILES": 1}),
       ("twopass LTILES=4", new, {"CONV_BWD_KERNEL": "twopass", "CONV_BWD_LTILES": 4})]


def kernel_ms(fn, calls=10):
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return {e.key: round(getattr(e, "self_device_time_total", 0) / 1e3 / calls, 4) for e in prof.key_averages()
            if getattr(e, "self_device_time_total", 0) > 0}


out = {}
for label, batch, frames in (("ti-8f", 32, 8), ("ti-64f", 4, 64)):
    t = make_inputs(384, batch, frames, torch.device("cuda"))
    x, w = t["x"], (t["w_f"], t["b_f"], t["w_b"], t["b_b"])
    res = {"fwd": {}, "bwd": {}, "kernels": {}, "max_rel_vs_old": {}}
    fwd_entries = [({}, lambda m=m: m.bi_conv_fwd(x, *w, True)) for m in (old, new)]
    bwd_entries, names = [], []
    ref = None
    for name, mod, env in BWD:
        fn = (lambda m=mod: m.bi_conv_bwd(x, *w, t["dy_f"], t["dy_b"], True))
        with triton_env(env), torch.no_grad():
            dx, grads = fn()
            got = [dx.float()] + [g.float() for pair in grads for g in pair]
            if ref is None:
                ref = got
            res["max_rel_vs_old"][name] = max(((a - b).abs().max() / (b.abs().max() + 1e-12)).item()
                                              for a, b in zip(got, ref))
            res["kernels"][name] = kernel_ms(fn)
        bwd_entries.append((env, fn))
        names.append(name)
    fm = time_interleaved(fwd_entries, rounds=6, per_round=10)
    bm = time_interleaved(bwd_entries, rounds=6, per_round=10)
    res["fwd"] = {"old": fm[0], "new": fm[1]}
    res["bwd"] = dict(zip(names, bm))
    out[label] = res
    print(label, json.dumps(res, indent=1), flush=True)
json.dump(out, open(sys.argv[1] + "/conv_parts.json", "w"), indent=1)
