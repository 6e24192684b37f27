"""Session 14: the state-loop kernels' column picks. ``before``: the kernels before the session
(``sloop_before.py``, picks by compare + select + add), ``tree``: picks by a tree of selects on the
iteration's bits (``selective_scan_sloop._col``), ``tree+hloop``: and the backward's state iterations loading
their column of the saved entering state (``VIDEOMAMBA_TRITON_BWD_H_LOOP=1``). Per Ti shape (8f x 32, 64f x 4,
B and C at the model's padded pitch): the forward, the backward's forward re-run (states only) and the backward
(summary + main), timed interleaved (CUDA events, rotating rounds); each kernel's device time (torch profiler),
registers and spills; results against ``before``'s.

    PYTHONPATH=platform python benchmarks/2026-12-03-h200-session14/scan_parts.py OUT_DIR
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import sloop_before  # noqa: E402
from videomamba.bench.scan_kernels import make_inputs, time_interleaved, triton_env  # noqa: E402
from videomamba.ops.triton import launch  # noqa: E402
from videomamba.ops.triton.bimamba_inner import row_pitch  # noqa: E402
from videomamba.ops.triton.config import LAST_LAUNCH  # noqa: E402
from videomamba.ops.triton.launch import ScanDir, SegmentSummaries, scan_bwd, scan_fwd  # noqa: E402

KEYS = ("u", "delta", "A", "B", "C", "D", "delta_bias")
SHAPES = (("ti-8f", 384, 32, 8), ("ti-64f", 384, 4, 64))
DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if DEV.type == "cpu":  # a smoke run under TRITON_INTERPRET=1
    SHAPES = (("smoke", 16, 1, 1),)
NEW = (launch.sloop_fwd_kernel, launch.sloop_bwd_kernel)


class _Before:
    """The old backward kernel, launched as the new one is (without the new H_LOOP argument)."""

    def __getitem__(self, grid):
        k = sloop_before.sloop_bwd_kernel[grid]
        return lambda *a, **kw: k(*a, **{n: v for n, v in kw.items() if n != "H_LOOP"})


OLD = (sloop_before.sloop_fwd_kernel, _Before())
VARIANTS = (("before", OLD, {}), ("tree", NEW, {"BWD_H_LOOP": 0}), ("tree+hloop", NEW, {"BWD_H_LOOP": 1}))


def kernels(pair, fn):
    def call():
        launch.sloop_fwd_kernel, launch.sloop_bwd_kernel = pair
        try:
            return fn()
        finally:
            launch.sloop_fwd_kernel, launch.sloop_bwd_kernel = NEW
    return call


def model_rows(t, pitch):
    buf = t.new_zeros(*t.shape[:-1], pitch)
    buf[..., :t.shape[-1]] = t
    return buf[..., :t.shape[-1]]


def kernel_ms(fn, names, calls=10):
    if DEV.type == "cpu":
        return {}
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


def rel(a, b):
    return ((a.float() - b.float()).abs().max() / (b.float().abs().max() + 1e-12)).item()


out = {}
for label, dim, batch, frames in SHAPES:
    x = make_inputs(dim, batch, frames, DEV)
    length = x["u_f"].shape[-1]
    pitch = row_pitch(length, x["u_f"].device)
    for t in "fb":
        x[f"B_{t}"], x[f"C_{t}"] = model_rows(x[f"B_{t}"], pitch), model_rows(x[f"C_{t}"], pitch)
    dirs = [ScanDir(*[x[f"{k}_{t}"] for k in KEYS], bc_pad_finite=True) for t in "fb"]
    z = x["z"]
    summ = SegmentSummaries()
    _y, _h, _l, cfg = scan_fwd(dirs, z, True, False, store_states=False, return_last=False, summaries=summ)
    hss = scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True, summaries=summ)[1]
    dout = torch.randn_like(x["u_f"])
    res = {"cfg": {k: cfg[k] for k in ("nseg", "BLOCK_L", "NS", "BLOCK_D")}}

    def fwd():
        return scan_fwd(dirs, z, True, False, store_states=False, return_last=False)[0]

    def rerun():
        return scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True,
                        summaries=summ)[1]

    def bwd():
        return scan_bwd(dirs, z, hss, dout, None, True, False, cfg)

    def grads(g):
        return [t for per in g[0].grads([d.B4 for d in dirs], [d.C4 for d in dirs]) for t in per if t is not None]

    entries, names, checks, prof, ref = [], [], {}, {}, {}
    for vname, pair, env in VARIANTS:
        for part, fn in (("fwd", fwd), ("rerun", rerun), ("bwd", bwd)):
            if part != "bwd" and vname == "tree+hloop":
                continue  # H_LOOP is the backward's
            f = kernels(pair, fn)
            with triton_env(env), torch.no_grad():
                r = f()
                val = [r] if part == "fwd" else (list(r) if part == "rerun" else grads(r) + [r[1]])
                if vname == "before":
                    ref[part] = val
                else:
                    checks[f"{part}: {vname}"] = {"max_rel": max(rel(a, b) for a, b in zip(val, ref[part])),
                                                  "bitwise": all(torch.equal(a, b) for a, b in zip(val, ref[part]))}
                kname = "sloop_bwd_kernel" if part == "bwd" else "sloop_fwd_kernel"
                launch_k = LAST_LAUNCH.get(part if part == "bwd" else "fwd")
                prof[f"{part}: {vname}"] = kernel_ms(f, [kname]) | {
                    "n_regs": getattr(launch_k, "n_regs", None), "n_spills": getattr(launch_k, "n_spills", None)}
            entries.append((env, f))
            names.append(f"{part}: {vname}")
    meds = time_interleaved(entries, rounds=6 if DEV.type == "cuda" else 1, per_round=8 if DEV.type == "cuda" else 1,
                            device=DEV.type)
    res |= {"interleaved_ms": dict(zip(names, meds)), "profiler_ms": prof, "vs_before": checks}
    out[label] = res
    print(label, json.dumps(res, indent=1), flush=True)
json.dump(out, open(sys.argv[1] + "/scan_parts.json", "w"), indent=1)
