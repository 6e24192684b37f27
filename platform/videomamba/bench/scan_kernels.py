"""GPU micro-benchmark of the bidirectional selective scan, kernel against kernel.

Ours: :func:`videomamba.ops.triton.bi_selective_scan_triton` (both directions
in one launch, the backward direction read by index) at its default configuration and at
every configuration of a sweep (``VIDEOMAMBA_TRITON_BLOCK_D`` x ``VIDEOMAMBA_TRITON_SEGMENTS``).
Baseline, same run, same inputs: mamba-ssm's CUDA ``selective_scan_fn`` called once per
direction on inputs flipped beforehand (the flips are not timed; the outputs are added).

Shapes are the BiMamba scans of VideoMamba-Ti/S/M at 224 px (d_inner = 2 x embed, N = 16,
L = 1 + 196 T) with the benchmark's batches, bf16 activations (u, delta, z, B, C), fp32 A, D
and delta bias, delta_softplus: what the model feeds the scan under bf16 autocast. Modes:
``fwd`` (no grad) and ``fwd+bwd`` (the whole autograd op, gradients of every input). CUDA
events, warm-up first (Triton compiles there), median of ``--repeats``. Correctness: the
default configuration against the mamba-ssm pair (with the real flips), outputs and input
gradients, relative to the reference's max.

``--interleave ROUNDS`` re-times each shape's rows in rounds (:func:`time_interleaved`), so that a
row's place in the run cannot favour it.

    PYTHONPATH=platform python -m videomamba.bench.scan_kernels --out DIR [--quick] [--interleave 5]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import statistics
import time
from pathlib import Path

from .floor import peaks_for, scan_floor

log = logging.getLogger(__name__)

# (label, d_inner, batch, frames)
SHAPES = [("ti-8f", 384, 32, 8), ("ti-64f", 384, 4, 64), ("s-8f", 768, 32, 8), ("s-64f", 768, 4, 64),
          ("m-8f", 1152, 32, 8), ("m-64f", 1152, 4, 64)]
SWEEP_SHAPES = ("ti-64f", "ti-8f")
SWEEP = [dict(KERNEL="tile3d"), dict(BLOCK_L=16), dict(BLOCK_D=16, NS=4), dict(BLOCK_D=16, NS=4, NUM_WARPS=2),
         dict(SEGMENTS=8), dict(KERNEL="tile3d", BWD_EXP_ONCE=0)]
IMPLS = ("mamba_ssm", "mamba_ssm_packed", "ours")
RESOLVED = ("kernel", "BLOCK_D", "NS", "BLOCK_L", "nseg", "num_warps", "SUB", "maxnreg", "dbc_scatter", "prefetch",
            "preload", "split_tail", "split_head",
            "fwd_split")
RESOLVED_LABELS = {"num_warps": "warps"}  # the report header's names where they differ
KEYS = ["u", "delta", "A", "B", "C", "D", "delta_bias"]


@contextlib.contextmanager
def triton_env(cfg: dict | None):
    """Set VIDEOMAMBA_TRITON_* for the duration (the kernels read them at every call)."""
    names = {k: f"VIDEOMAMBA_TRITON_{k}" for k in (cfg or {})}
    old = {n: os.environ.get(n) for n in names.values()}
    os.environ.update({names[k]: str(v) for k, v in (cfg or {}).items()})
    try:
        yield
    finally:
        for n, v in old.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def make_inputs(dim: int, batch: int, frames: int, device, seed: int = 0, n_state: int = 16) -> dict:
    """Both directions' scan inputs, as the model produces them under bf16 autocast."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    length = 1 + 196 * frames
    bf = dict(dtype=torch.bfloat16)

    def r(*shape, scale=1.0, shift=0.0, **kw):
        return (torch.randn(*shape, generator=g) * scale + shift).to(device=device, **kw)

    out = {}
    for tag in ("f", "b"):
        dt0 = torch.exp(torch.rand(dim, generator=g) * (torch.log(torch.tensor(0.1)) - torch.log(torch.tensor(1e-3)))
                        + torch.log(torch.tensor(1e-3)))
        out |= {
            f"u_{tag}": r(batch, dim, length, **bf), f"delta_{tag}": r(batch, dim, length, scale=0.5, **bf),
            f"A_{tag}": -torch.arange(1, n_state + 1, dtype=torch.float32).repeat(dim, 1).to(device),
            f"B_{tag}": r(batch, n_state, length, **bf), f"C_{tag}": r(batch, n_state, length, **bf),
            f"D_{tag}": torch.ones(dim, device=device),
            f"delta_bias_{tag}": (dt0 + torch.log(-torch.expm1(-dt0))).to(device),
        }
    out["z"] = r(batch, dim, length, **bf)
    return out


def ours(x: dict):
    from videomamba.ops.triton import bi_selective_scan_triton

    return bi_selective_scan_triton(*[x[f"{k}_f"] for k in KEYS], *[x[f"{k}_b"] for k in KEYS], x["z"],
                                    delta_softplus=True)


def mamba_pair(x: dict, flipped: dict | None = None):
    """mamba-ssm per direction. ``flipped``: the backward direction's sequence tensors already
    flipped (timing; output left in scan order); None: flip here and back (correctness)."""
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    def run(tag, src):
        return selective_scan_fn(src["u"], src["delta"], x[f"A_{tag}"], src["B"], src["C"], x[f"D_{tag}"],
                                 src["z"], x[f"delta_bias_{tag}"], delta_softplus=True)

    fwd = run("f", {k: x[f"{k}_f"] for k in ("u", "delta", "B", "C")} | {"z": x["z"]})
    if flipped is not None:
        return fwd + run("b", flipped)
    src = {k: x[f"{k}_b"].flip(-1) for k in ("u", "delta", "B", "C")} | {"z": x["z"].flip(-1)}
    return fwd + run("b", src).flip(-1)


def mamba_packed(x: dict):
    """mamba-ssm, both directions in one ``selective_scan_fn`` launch (packed along channels,
    B/C as two groups; the packing copies are timed: they are part of the op)."""
    from videomamba.ops.dispatch import bi_selective_scan_mamba_ssm

    return bi_selective_scan_mamba_ssm(*[x[f"{k}_f"] for k in KEYS], *[x[f"{k}_b"] for k in KEYS], x["z"],
                                       delta_softplus=True)


def flipped_inputs(x: dict) -> dict:
    return {k: x[f"{k}_b"].flip(-1).contiguous() for k in ("u", "delta", "B", "C")} | {"z": x["z"].flip(-1).contiguous()}


def time_op(fn, *, warmup: int, repeats: int, device="cuda") -> float:
    """Median ms of ``fn()``: :func:`videomamba.bench.gpu.time_steps` (CUDA events between
    back-to-back calls), ``repeats`` timed calls."""
    import torch

    from .timing import Clock as _Clock, time_steps

    ms, _ = time_steps(fn, _Clock(torch.device(device)), warmup=warmup, repeats=repeats, budget_s=60.0,
                       min_repeats=repeats)
    return statistics.median(ms)


def time_interleaved(entries: list, *, rounds: int, per_round: int, device="cuda") -> list[float]:
    """Median ms per call of each ``(env cfg, fn)`` entry, timed in ``rounds`` rounds in which every
    entry makes ``per_round`` calls back to back (CUDA events between calls; one untimed call after
    each switch). Round r starts with entry r mod n, and every other round runs the rest in reverse,
    so that no configuration always runs first, or after the same neighbour: sequential rows were
    skewed by their position in the run (the conv sweeps of benchmarks/2026-12-03-h200-session10)."""
    import torch

    from .timing import Clock as _Clock

    clock = _Clock(torch.device(device))
    samples: list[list[float]] = [[] for _ in entries]
    n = len(entries)
    for r in range(rounds):
        order = [(i + r) % n for i in range(n)]
        for i in (order[:1] + order[:0:-1] if r % 2 else order):
            cfg, fn = entries[i]
            with triton_env(cfg):
                fn()
                clock.sync()
                marks = [clock.mark()]
                for _ in range(per_round):
                    fn()
                    marks.append(clock.mark())
                clock.sync()
            samples[i] += [clock.ms(a, b) for a, b in zip(marks, marks[1:])]
    return [statistics.median(v) for v in samples]


def retime_interleaved(timed: list, rounds: int, per_round: int, device="cuda") -> None:
    """Replace the sequential ``fwd_ms`` / ``fwd_bwd_ms`` of ``timed`` [(row, cfg, fwd, fwd_bwd)] (one
    shape's rows) by :func:`time_interleaved` medians; each row keeps its sequential values as
    ``*_seq_ms`` and records ``timing``."""
    ok = [t for t in timed if "error" not in t[0]]
    for key, k in (("fwd_ms", 2), ("fwd_bwd_ms", 3)):
        meds = time_interleaved([(t[1], t[k]) for t in ok], rounds=rounds, per_round=per_round, device=device)
        for t, ms in zip(ok, meds):
            t[0][key.replace("_ms", "_seq_ms")] = t[0].get(key)
            t[0][key] = ms
            t[0]["timing"] = f"interleaved: {rounds} rounds x {per_round} calls"


def _with_grad(x: dict) -> dict:
    return {k: v.detach().clone().requires_grad_(v.is_floating_point()) for k, v in x.items()}


def step_fns(x: dict, impl: str):
    """(fwd, fwd+bwd) closures for ``impl`` in IMPLS."""
    import torch

    xg = _with_grad(x)
    gout = torch.randn_like(x["u_f"])
    if impl == "ours":
        f_nograd, f_grad = (lambda: ours(x)), (lambda: ours(xg))
    elif impl == "mamba_ssm_packed":
        f_nograd, f_grad = (lambda: mamba_packed(x)), (lambda: mamba_packed(xg))
    else:
        fl, flg = flipped_inputs(x), _with_grad(flipped_inputs(x))
        f_nograd, f_grad = (lambda: mamba_pair(x, fl)), (lambda: mamba_pair(xg, flg))

    def fwd():
        with torch.no_grad():
            f_nograd()

    def fwd_bwd():
        f_grad().backward(gout)

    return fwd, fwd_bwd


def agreement(x: dict) -> dict:
    """Ours vs the mamba-ssm pair: output and input-gradient errors relative to max |ref|."""
    import torch

    xo, xm = _with_grad(x), _with_grad(x)
    yo, ym = ours(xo), mamba_pair(xm)
    gout = torch.randn_like(ym)
    yo.backward(gout)
    ym.backward(gout)

    def rel(a, b):
        return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()

    grads = {k: rel(xo[k].grad, xm[k].grad) for k in xo if xo[k].grad is not None}
    worst = max(grads, key=grads.get)
    return {"out_rel": rel(yo, ym), "grad_rel_max": grads[worst], "worst_grad": worst}


def _launch_info() -> dict:
    from videomamba.ops.triton.config import LAST_LAUNCH

    info = {}
    for name, h in LAST_LAUNCH.items():
        info[name] = {k: getattr(h, k, None) for k in ("n_regs", "n_spills")}
    return info


def parse_sweep_entries(text: str, allowed: tuple[str, ...], choice: str, choices: tuple[str, ...]) -> list[dict]:
    """``"A=8,B=2;C=4"`` -> [{"A": 8, "B": 2}, {"C": 4}]: integer ``allowed`` names, and ``choice``
    (one string name) taking one of ``choices``. Raises ValueError naming the bad entry."""
    out = []
    for item in filter(None, (t.strip() for t in text.split(";"))):
        cfg = {}
        for kv in item.split(","):
            k, _, v = kv.partition("=")
            k, v = k.strip().upper(), v.strip()
            if k == choice and v in choices:
                cfg[k] = v
                continue
            if k not in allowed or not v.isdigit():
                raise ValueError(f"--sweep: bad entry {kv!r}; expected NAME=INT with NAME in {allowed}, "
                                 f"or {choice}=one of {choices}")
            cfg[k] = int(v)
        out.append(cfg)
    return out


def parse_sweep(text: str) -> list[dict]:
    """``"BLOCK_L=8,NUM_WARPS=2;BLOCK_D=4"`` -> [{"BLOCK_L": 8, "NUM_WARPS": 2}, {"BLOCK_D": 4}]
    (names of the VIDEOMAMBA_TRITON_* overrides, without the prefix)."""
    from videomamba.ops.triton.config import KERNELS

    allowed = ("BLOCK_D", "BLOCK_L", "NUM_WARPS", "SEGMENTS", "BWD_SEGMENTS", "BWD_BLOCK_L", "BWD_BLOCK_D", "BWD_NUM_WARPS", "BWD_EXP_ONCE",
               "BWD_ATOMIC", "BWD_DBC_SCATTER", "NS", "BWD_NS", "BWD_SUB", "MAXNREG", "BWD_MAXNREG", "PREFETCH",
               "BWD_PRELOAD", "BWD_SPLIT_TAIL",
               "BWD_SPLIT_HEAD", "FWD_SPLIT", "SUM_BLOCK_L", "BWD_SUM_BLOCK_L", "SUM_SKIP")
    return parse_sweep_entries(text, allowed, "KERNEL", KERNELS)


def run(out: Path, *, quick: bool = False, repeats: int = 20, warmup: int = 3,
        sweep: list[dict] | None = None, shapes: list[str] | None = None,
        sweep_shapes: tuple[str, ...] = SWEEP_SHAPES, interleave: int = 0) -> dict:
    import torch

    from videomamba.ops.triton.config import scan_config
    from .measure import environment

    device = torch.device("cuda")
    res = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
           "env": environment(device), "rows": [], "agreement": {}}
    try:
        import mamba_ssm  # noqa: F401
        have_mamba = True
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on without the baseline
        have_mamba, res["mamba_ssm_error"] = False, repr(err)
    sweep = SWEEP if sweep is None else sweep
    todo = [s for s in SHAPES if (shapes is None or s[0] in shapes) and (not quick or s[0] in SWEEP_SHAPES)]
    for label, dim, batch, frames in todo:
        x = make_inputs(dim, batch, frames, device)
        length = x["u_f"].shape[-1]
        cfgs = [None] + (sweep if label in sweep_shapes else [])
        impls = [("mamba_ssm", None), ("mamba_ssm_packed", None)] * have_mamba + [("ours", c) for c in cfgs]
        timed = []
        for impl, cfg in impls:
            with triton_env(cfg):
                chosen = {}
                if impl == "ours":  # the backward's tiles: the forward's BLOCK_L / HS_SPLIT (launch.scan_bwd)
                    chosen["fwd"] = scan_config(batch, dim, 16, length, (dim, dim), device)
                    chosen["bwd"] = scan_config(batch, dim, 16, length, (dim, dim), device, backward=True,
                                                block_l=chosen["fwd"]["BLOCK_L"] // chosen["fwd"]["HS_SPLIT"])
                row = {"shape": label, "d_inner": dim, "batch": batch, "L": length, "impl": impl,
                       "config": cfg or ("default" if impl == "ours" else "-"),
                       "resolved": {kind: {k: c[k] for k in RESOLVED} for kind, c in chosen.items()}}
                torch.cuda.reset_peak_memory_stats()
                try:
                    fwd, fwd_bwd = step_fns(x, impl)
                    row["fwd_ms"] = time_op(fwd, warmup=warmup, repeats=repeats)
                    row["fwd_bwd_ms"] = time_op(fwd_bwd, warmup=warmup, repeats=repeats)
                    if impl == "ours":
                        row["launch"] = _launch_info()
                    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                    if interleave:
                        timed.append((row, cfg, fwd, fwd_bwd))
                except Exception as err:  # noqa: BLE001 - a failing config is a row
                    row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
                torch.cuda.empty_cache()
            res["rows"].append(row)
            log.info("%s", {k: row.get(k) for k in ("shape", "impl", "config", "fwd_ms", "fwd_bwd_ms", "error")})
        if interleave and timed:
            retime_interleaved(timed, interleave, max(1, repeats // interleave))
            del timed
        if have_mamba:
            res["agreement"][label] = agreement(x)
        del x
        torch.cuda.empty_cache()
    _ratios(res["rows"], peaks_for(res["env"].get("device")))
    out.mkdir(parents=True, exist_ok=True)
    (out / "scan_kernels.json").write_text(json.dumps(res, indent=1, default=str))
    (out / "scan_kernels.md").write_text(report(res))
    return res


def _ratios(rows: list[dict], peaks=None) -> None:
    """speed-up = mamba-ssm ms / ours ms on the same shape (> 1: ours faster); floor x = ms /
    the scan's own floor (:func:`videomamba.bench.floor.scan_floor`)."""
    base = {r["shape"]: r for r in rows if r["impl"] == "mamba_ssm" and "error" not in r}
    peaks = peaks or peaks_for(None)
    for r in rows:
        fl = scan_floor(r["d_inner"], r["batch"], r["L"], peaks)
        r["floor_ms"] = {m: fl[m]["t_floor"] * 1e3 for m in ("fwd", "fwd_bwd")}
        for m in ("fwd", "fwd_bwd"):
            if r.get(f"{m}_ms"):
                r[f"{m}_floor_x"] = r[f"{m}_ms"] / r["floor_ms"][m]
        b = base.get(r["shape"])
        for m in ("fwd_ms", "fwd_bwd_ms"):
            if b and r.get(m):
                r[m.replace("_ms", "_x")] = b[m] / r[m]


def report(res: dict) -> str:
    env = res["env"]
    lines = [
        "# Bidirectional selective scan: Triton (ours) vs mamba-ssm CUDA, kernel against kernel", "",
        f"- date: {res['date']}; device: {env.get('device')}; torch {env.get('torch')}, "
        f"triton {env.get('triton')}, mamba_ssm {env.get('mamba_ssm')}",
        "- ours: one launch for both directions (plus a summary launch when the sequence is cut into "
        "segments); mamba_ssm: `selective_scan_fn` once per direction on pre-flipped inputs (flips not timed); "
        "mamba_ssm_packed: both directions in one `selective_scan_fn` launch (packed along channels, B/C as "
        "2 groups; packing copies timed).",
        "- floor: the scan's own floor (`bench/floor.py::scan_floor`: max of its HBM bytes and its exp count "
        "on the SFUs).",
        "- bf16 u/delta/z/B/C, fp32 A/D/bias, N = 16, delta_softplus; median ms per call; x = mamba-ssm ms / ours "
        "(> 1: ours faster).", "",
        "| shape | d_inner | batch | L | impl | config | resolved fwd / bwd "
        f"({', '.join(RESOLVED_LABELS.get(k, k) for k in RESOLVED)}) | fwd ms | fwd x "
        "| fwd+bwd ms | fwd+bwd x | fwd+bwd / floor | peak GiB | note |",
        "|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in res["rows"]:
        rs = r.get("resolved") or {}
        cfg = r["config"] if isinstance(r["config"], str) else ", ".join(f"{k}={v}" for k, v in r["config"].items())
        resolved = " / ".join(", ".join(str(c.get(k, "-")) for k in RESOLVED) for c in rs.values()) if rs else "-"

        def f(k, fmt="{:.3f}"):
            return fmt.format(r[k]) if r.get(k) is not None else "-"

        lines.append(f"| {r['shape']} | {r['d_inner']} | {r['batch']} | {r['L']} | {r['impl']} | {cfg} | {resolved} "
                     f"| {f('fwd_ms')} | {f('fwd_x', '{:.2f}')} | {f('fwd_bwd_ms')} | {f('fwd_bwd_x', '{:.2f}')} "
                     f"| {f('fwd_bwd_floor_x', '{:.1f}')} | {f('peak_gib', '{:.2f}')} | {r.get('error', '')} |")
    if res["agreement"]:
        lines += ["", "## Agreement (default config vs mamba-ssm, bf16)", "",
                  "| shape | out rel err | worst input-grad rel err | worst grad |", "|---|---:|---:|---|"]
        for label, a in res["agreement"].items():
            lines.append(f"| {label} | {a['out_rel']:.2e} | {a['grad_rel_max']:.2e} | {a['worst_grad']} |")
    return "\n".join(lines) + "\n"


def kernel_bench_main(argv, *, description: str, run_fn, parse_sweep_fn, sweep_shapes, quick_help: str,
                      sweep_help: str) -> int:
    """The command line shared by the kernel benchmarks (this one, ``conv_kernels``): --out,
    --quick, --repeats, --warmup, --sweep-all, --sweep, --shapes; calls ``run_fn``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--sweep-all", action="store_true", help="the sweep at every shape (default: "
                   f"{', '.join(sweep_shapes)})")
    p.add_argument("--sweep", type=parse_sweep_fn, default=None, help=sweep_help)
    p.add_argument("--shapes", type=lambda t: [x for x in t.split(",") if x], default=None,
                   help=f"subset of {[s[0] for s in SHAPES]}")
    p.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                   help="re-time each shape's rows in ROUNDS interleaved rounds of REPEATS / ROUNDS calls each "
                        "(the order rotated every round), so that a row's place in the run cannot skew it")
    args = p.parse_args(argv)
    if args.interleave < 0:
        p.error(f"--interleave {args.interleave}: expected 0 (off) or a number of rounds")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    run_fn(Path(args.out), quick=args.quick, repeats=args.repeats, warmup=args.warmup, sweep=args.sweep,
           shapes=args.shapes, sweep_shapes=tuple(s[0] for s in SHAPES) if args.sweep_all else sweep_shapes,
           interleave=args.interleave)
    log.info("done in %.0f s; results in %s", time.time() - t0, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    return kernel_bench_main(
        argv, description=__doc__.split("\n\n")[0], run_fn=run, parse_sweep_fn=parse_sweep,
        sweep_shapes=SWEEP_SHAPES, quick_help="Ti shapes only",
        sweep_help="Triton configs for the Ti shapes, e.g. 'BLOCK_L=8,NUM_WARPS=2;BLOCK_D=4,SEGMENTS=16'")


if __name__ == "__main__":
    raise SystemExit(main())
