"""GPU micro-benchmark of the BiMamba depthwise conv (+ SiLU), both directions of one layer,
kernel against kernel.

Impls, same run, same inputs (x bf16 as the x half of ``in_proj_bdl``'s xz, strides (L, B L, 1);
fp32 weights (D, 4) and biases; under bf16 autocast, as the model runs):

* ``torch``: :func:`videomamba.ops.causal_conv1d.causal_conv1d_torch` once per direction (pad copy,
  cuDNN depthwise conv, SiLU; what the ``triton`` backend ran before its own kernel);
* ``causal_conv1d``: the causal-conv1d CUDA package once per direction, the anti-causal one on
  flipped copies (``causal_conv1d_cuda``; flips timed: the mamba_ssm backend pays them), if importable;
* ``ours_2calls``: :func:`videomamba.ops.triton.causal_conv1d_triton` once per direction;
* ``ours_bi``: :func:`videomamba.ops.triton.bi_causal_conv1d_triton`, both directions in one
  launch, at its default configuration and at every configuration of a sweep
  (``VIDEOMAMBA_TRITON_CONV_*`` overrides; ``--sweep 'BLOCK_L=1024,NUM_WARPS=8;BWD_KERNEL=generic'``).

Modes ``fwd`` (no grad) and ``fwd+bwd`` (gradients of x, both weights and biases). CUDA events,
warm-up first (Triton compiles there), median of ``--repeats`` (``--interleave ROUNDS``: each shape's
rows re-timed in rotating rounds, ``scan_kernels.time_interleaved``). ``floor``: HBM bytes of the
bidirectional op at 4.8 TB/s (H200; 6 bytes per (batch, channel, position) forward: x read, two
outputs written; 8 backward: x and both dy read, dx written). Agreement: each impl's outputs and
gradients against the fp32 PyTorch conv on the same inputs, relative to its max. Every row is
written to ``conv_kernels.json`` / ``conv_kernels.md`` in ``--out`` as soon as it is measured; a
failing configuration is a row with its error.

    PYTHONPATH=platform python -m videomamba.bench.conv_kernels --out DIR [--quick] [--sweep ...]
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from .floor import peaks_for
from .scan_kernels import SHAPES, kernel_bench_main, parse_sweep_entries, retime_interleaved, time_op, triton_env

log = logging.getLogger(__name__)

SWEEP_SHAPES = ("ti-8f", "ti-64f")
SWEEP_NAMES = ("BLOCK_D", "BLOCK_L", "NUM_WARPS", "BWD_BLOCK_D", "BWD_BLOCK_L", "BWD_NUM_WARPS", "BWD_LTILES")
# around the defaults (ops/triton/causal_conv1d.py: CONV_FWD = (2, 512, 4), CONV_BWD = (2, 256, 4), CONV_BWD_LTILES = 8)
SWEEP = [dict(BLOCK_L=256), dict(BLOCK_L=1024), dict(BLOCK_L=1024, NUM_WARPS=8), dict(BLOCK_D=1),
         dict(BLOCK_D=4), dict(BLOCK_D=4, BLOCK_L=256), dict(NUM_WARPS=2), dict(NUM_WARPS=8),
         dict(BWD_BLOCK_L=128), dict(BWD_BLOCK_L=512), dict(BWD_BLOCK_L=512, BWD_NUM_WARPS=8),
         dict(BWD_BLOCK_D=1, BWD_BLOCK_L=512), dict(BWD_BLOCK_D=4, BWD_BLOCK_L=128), dict(BWD_NUM_WARPS=2),
         dict(BWD_NUM_WARPS=8), dict(BWD_LTILES=4), dict(BWD_LTILES=16), dict(BWD_KERNEL="generic")]
IMPLS = ("torch", "causal_conv1d", "ours_2calls", "ours_bi")
K = 4  # the mixer's d_conv (VideoMamba / Mamba default)


def env_names(cfg: dict | None) -> dict:
    """Sweep entry -> the names :func:`triton_env` sets (``CONV_`` + name under VIDEOMAMBA_TRITON_)."""
    return {f"CONV_{k}": v for k, v in (cfg or {}).items()}


def parse_sweep(text: str) -> list[dict]:
    """``"BLOCK_L=1024,NUM_WARPS=8;BWD_BLOCK_D=4"`` -> [{"BLOCK_L": 1024, "NUM_WARPS": 8}, {"BWD_BLOCK_D": 4}]
    (names of the VIDEOMAMBA_TRITON_CONV_* overrides without the prefix; powers of two but BWD_LTILES),
    and ``BWD_KERNEL=generic``."""
    from videomamba.ops.triton.causal_conv1d import CONV_BWD_KERNELS

    return parse_sweep_entries(text, SWEEP_NAMES, "BWD_KERNEL", CONV_BWD_KERNELS)


def make_inputs(dim: int, batch: int, frames: int, device, seed: int = 0) -> dict:
    """x (B, D, L) bf16 in ``in_proj_bdl``'s layout, fp32 weights (D, K) and biases per direction,
    and the incoming gradients of both outputs (bf16)."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    length = 1 + 196 * frames
    xz = torch.randn(2 * dim, batch * length, generator=g).to(device, torch.bfloat16)
    x = xz.view(2 * dim, batch, length).permute(1, 0, 2)[:, :dim]  # (B, D, L), strides (L, B L, 1)
    out = {"x": x}
    for tag in ("f", "b"):
        out[f"w_{tag}"] = (torch.randn(dim, K, generator=g) / K ** 0.5).to(device)
        out[f"b_{tag}"] = (torch.randn(dim, generator=g) * 0.1).to(device)
        out[f"dy_{tag}"] = torch.randn(batch, dim, length, generator=g).to(device, torch.bfloat16)
    return out


def _impl_fn(impl: str):
    """impl -> fn(x, w_f, b_f, w_b, b_b) -> (y_f, y_b)."""
    from videomamba.ops import causal_conv1d as conv

    if impl == "torch":
        one = conv.causal_conv1d_torch
    elif impl == "causal_conv1d":
        one = conv.causal_conv1d_cuda
    elif impl == "ours_2calls":
        from videomamba.ops.triton import causal_conv1d_triton as one
    elif impl == "ours_bi":
        from videomamba.ops.triton import bi_causal_conv1d_triton

        return lambda x, wf, bf, wb, bb: bi_causal_conv1d_triton(x, wf, bf, wb, bb, "silu")
    else:
        raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLS}")
    return lambda x, wf, bf, wb, bb: (one(x, wf, bf, "silu", False), one(x, wb, bb, "silu", True))


def step_fns(inp: dict, impl: str):
    """(fwd, fwd+bwd) closures of ``impl`` on ``inp`` under bf16 autocast."""
    import torch

    fn = _impl_fn(impl)
    names = ("x", "w_f", "b_f", "w_b", "b_b")
    leaves = [inp[k].detach().requires_grad_() for k in names]

    dev = inp["x"].device.type

    def fwd():
        with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16):
            fn(*[inp[k] for k in names])

    def fwd_bwd():
        with torch.autocast(dev, dtype=torch.bfloat16):
            y_f, y_b = fn(*leaves)
        torch.autograd.backward([y_f, y_b], [inp["dy_f"], inp["dy_b"]])
        for t in leaves:
            t.grad = None

    return fwd, fwd_bwd


def agreement(inp: dict, impl: str) -> dict:
    """Outputs and gradients of ``impl`` (bf16 autocast) vs the fp32 PyTorch conv on the same
    (bf16-rounded) x: max abs error / max abs reference, the worst of each."""
    import torch

    names = ("x", "w_f", "b_f", "w_b", "b_b")

    def run(fn, cast):
        leaves = [(inp[k].float() if cast and k == "x" else inp[k]).detach().requires_grad_() for k in names]
        with torch.autocast(inp["x"].device.type, dtype=torch.bfloat16, enabled=not cast):
            ys = fn(*leaves)
        torch.autograd.backward(list(ys), [inp["dy_f"].float(), inp["dy_b"].float()] if cast
                                else [inp["dy_f"], inp["dy_b"]])
        return list(ys), [t.grad for t in leaves]

    ys, gs = run(_impl_fn(impl), False)
    ys_ref, gs_ref = run(_impl_fn("torch"), True)

    def rel(a, b):
        return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()

    errs = {"y_f": rel(ys[0], ys_ref[0]), "y_b": rel(ys[1], ys_ref[1])}
    errs |= {f"d{k}": rel(a, b) for k, a, b in zip(names, gs, gs_ref)}
    worst_grad = max((k for k in errs if k.startswith("d")), key=errs.get)
    return {"out_rel": max(errs["y_f"], errs["y_b"]), "grad_rel_max": errs[worst_grad], "worst_grad": worst_grad}


def floor_ms(dim: int, batch: int, length: int, peaks) -> dict:
    """HBM floor of the bidirectional op (ms): 6 bytes per element forward, 8 backward (bf16)."""
    n = dim * batch * length
    return {"fwd": 6 * n / peaks.hbm_bytes * 1e3, "fwd_bwd": 14 * n / peaks.hbm_bytes * 1e3}


def _launch_info() -> dict:
    from videomamba.ops.triton.config import LAST_LAUNCH

    return {name: {k: getattr(h, k, None) for k in ("n_regs", "n_spills")}
            for name, h in LAST_LAUNCH.items() if name.startswith("conv")}


def _resolved(batch, dim, length, device) -> dict:
    from videomamba.ops.triton.causal_conv1d import conv_config

    fwd, bwd = (conv_config(batch, dim, length, device, backward=b) for b in (False, True))
    keys = ("BLOCK_D", "BLOCK_L", "num_warps")
    return {"fwd": {k: fwd[k] for k in keys}, "bwd": {**{k: bwd[k] for k in keys}, "kernel": bwd["bwd_kernel"]}}


def _write(out: Path, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "conv_kernels.json").write_text(json.dumps(res, indent=1, default=str))
    (out / "conv_kernels.md").write_text(report(res))


def run(out: Path, *, quick: bool = False, repeats: int = 20, warmup: int = 3, sweep: list[dict] | None = None,
        shapes: list[str] | None = None, sweep_shapes: tuple[str, ...] = SWEEP_SHAPES, interleave: int = 0) -> dict:
    import torch

    from .measure import environment

    device = torch.device("cuda")
    res = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), "rows": [], "agreement": {}}
    try:
        res["env"] = environment(device)
    except Exception as err:  # noqa: BLE001 - recorded; the timings go on
        res["env"] = {"device": torch.cuda.get_device_name(device), "error": repr(err)}
    peaks = peaks_for(res["env"].get("device"))
    impls = list(IMPLS)
    try:
        import causal_conv1d  # noqa: F401
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on without that baseline
        impls.remove("causal_conv1d")
        res["causal_conv1d_error"] = repr(err)
    sweep = SWEEP if sweep is None else sweep
    todo = [s for s in SHAPES if (shapes is None or s[0] in shapes) and (not quick or s[0] in sweep_shapes)]
    for label, dim, batch, frames in todo:
        try:
            inp = make_inputs(dim, batch, frames, device)
        except Exception as err:  # noqa: BLE001
            res["rows"].append({"shape": label, "impl": "-", "config": "-", "error": f"inputs: {err!r}"[:300]})
            _write(out, res)
            continue
        length = inp["x"].shape[-1]
        runs = [(i, None) for i in impls] + [("ours_bi", c) for c in (sweep if label in sweep_shapes else [])]
        timed = []
        for impl, cfg in runs:
            row = {"shape": label, "d_inner": dim, "batch": batch, "L": length, "impl": impl,
                   "config": cfg or ("default" if impl.startswith("ours") else "-"),
                   "floor_ms": floor_ms(dim, batch, length, peaks)}
            try:
                with triton_env(env_names(cfg)):
                    if impl.startswith("ours"):
                        row["resolved"] = _resolved(batch, dim, length, device)
                    torch.cuda.reset_peak_memory_stats()
                    fwd, fwd_bwd = step_fns(inp, impl)
                    row["fwd_ms"] = time_op(fwd, warmup=warmup, repeats=repeats)
                    row["fwd_bwd_ms"] = time_op(fwd_bwd, warmup=warmup, repeats=repeats)
                    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                    if impl.startswith("ours"):
                        row["launch"] = _launch_info()
                    if cfg is None:
                        res["agreement"][f"{label}/{impl}"] = agreement(inp, impl)
                    if interleave:
                        timed.append((row, env_names(cfg), fwd, fwd_bwd))
            except Exception as err:  # noqa: BLE001 - a failing config is a row
                row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
            torch.cuda.empty_cache()
            res["rows"].append(row)
            _ratios(res["rows"])
            _write(out, res)
            log.info("%s", {k: row.get(k) for k in ("shape", "impl", "config", "fwd_ms", "fwd_bwd_ms", "error")})
        if interleave and timed:
            retime_interleaved(timed, interleave, max(1, repeats // interleave))
            del timed
            _ratios(res["rows"])
            _write(out, res)
        del inp
        torch.cuda.empty_cache()
    return res


def _ratios(rows: list[dict]) -> None:
    """x_torch = torch ms / this row's ms on the same shape (> 1: faster than PyTorch's conv);
    x_cc1d the same against the causal-conv1d package; floor_x = ms / HBM floor."""
    for base_impl, tag in (("torch", "torch"), ("causal_conv1d", "cc1d")):
        base = {r["shape"]: r for r in rows if r["impl"] == base_impl and "error" not in r}
        for r in rows:
            b = base.get(r["shape"])
            for m in ("fwd", "fwd_bwd"):
                if b and r.get(f"{m}_ms") and b.get(f"{m}_ms"):
                    r[f"{m}_x_{tag}"] = b[f"{m}_ms"] / r[f"{m}_ms"]
    for r in rows:
        for m in ("fwd", "fwd_bwd"):
            if r.get(f"{m}_ms") and r.get("floor_ms"):
                r[f"{m}_floor_x"] = r[f"{m}_ms"] / r["floor_ms"][m]


def report(res: dict) -> str:
    env = res.get("env", {})
    lines = [
        "# BiMamba depthwise conv (+ SiLU), both directions: Triton (ours) vs PyTorch and causal-conv1d", "",
        f"- date: {res['date']}; device: {env.get('device')}; torch {env.get('torch')}, triton {env.get('triton')}; "
        f"commit {env.get('git_commit')}",
        "- x bf16 in in_proj's layout (strides (L, B L, 1)), fp32 weights (D, 4) and biases, bf16 autocast; "
        "ms per call for BOTH directions (median); x torch / x cc1d = that impl's ms / this row's (> 1: this row "
        "faster); floor x = ms / HBM floor (6 B fwd + 8 B bwd per element at the device's HBM peak).",
        *( [f"- causal_conv1d not importable: {res['causal_conv1d_error']}"] if res.get("causal_conv1d_error") else []),
        "",
        "| shape | d_inner | batch | L | impl | config | resolved fwd / bwd (BLOCK_D, BLOCK_L, warps[, kernel]) "
        "| regs fwd/bwd "
        "| fwd ms | fwd x torch | fwd x cc1d | fwd+bwd ms | fwd+bwd x torch | fwd+bwd x cc1d | fwd+bwd / floor "
        "| peak GiB | note |",
        "|---|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in res["rows"]:
        cfg = r["config"] if isinstance(r["config"], str) else ", ".join(f"{k}={v}" for k, v in r["config"].items())
        rs = r.get("resolved") or {}
        resolved = " / ".join(", ".join(str(v) for v in c.values()) for c in rs.values()) if rs else "-"
        launch = r.get("launch") or {}
        regs = "/".join(str((launch.get(k) or {}).get("n_regs", "-")) for k in ("conv_fwd", "conv_bwd")) \
            if launch else "-"

        def f(k, fmt="{:.3f}"):
            return fmt.format(r[k]) if r.get(k) is not None else "-"

        lines.append(
            f"| {r['shape']} | {r.get('d_inner', '-')} | {r.get('batch', '-')} | {r.get('L', '-')} | {r['impl']} "
            f"| {cfg} | {resolved} | {regs} | {f('fwd_ms')} | {f('fwd_x_torch', '{:.2f}')} "
            f"| {f('fwd_x_cc1d', '{:.2f}')} "
            f"| {f('fwd_bwd_ms')} | {f('fwd_bwd_x_torch', '{:.2f}')} | {f('fwd_bwd_x_cc1d', '{:.2f}')} "
            f"| {f('fwd_bwd_floor_x', '{:.1f}')} | {f('peak_gib', '{:.2f}')} | {r.get('error', '')} |")
    if res.get("agreement"):
        lines += ["", "## Agreement (bf16 autocast vs the fp32 PyTorch conv, same inputs)", "",
                  "| shape/impl | out rel err | worst grad rel err | worst grad |", "|---|---:|---:|---|"]
        for label, a in res["agreement"].items():
            lines.append(f"| {label} | {a['out_rel']:.2e} | {a['grad_rel_max']:.2e} | {a['worst_grad']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return kernel_bench_main(
        argv, description=__doc__.split("\n\n")[0], run_fn=run, parse_sweep_fn=parse_sweep,
        sweep_shapes=SWEEP_SHAPES, quick_help="the sweep shapes only (Ti 8f and 64f)",
        sweep_help="Triton conv configs, e.g. 'BLOCK_L=1024,NUM_WARPS=8;BWD_BLOCK_D=4' ('' for none)")


if __name__ == "__main__":
    raise SystemExit(main())
