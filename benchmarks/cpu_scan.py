"""CPU benchmark: the chunked PyTorch selective scan vs the sequential reference.

VideoMamba-Ti scan shapes (d_inner 384, N 16, batch 1, fp32, delta_softplus, D and z on):
L = 1569 (8 frames at 224px) and L = 12545 (64 frames). Forward (no grad) and forward +
backward, both paths timed side by side in one run, best of ``--repeats``; the outputs are
compared. Writes ``cpu_scan.md`` / ``cpu_scan.json`` next to this script with ``--write``.

    python benchmarks/cpu_scan.py [--lengths 1569 12545] [--repeats 3] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import torch

from videomamba.ops import selective_scan_fn
from videomamba.ops.selective_scan_ref import selective_scan_ref


def make_inputs(length: int, dim: int = 384, n: int = 16, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return dict(
        u=torch.randn(1, dim, length, generator=g), delta=torch.randn(1, dim, length, generator=g) - 2,
        A=-torch.arange(1, n + 1.0).repeat(dim, 1), B=torch.randn(1, n, length, generator=g),
        C=torch.randn(1, n, length, generator=g), D=torch.ones(dim), z=torch.randn(1, dim, length, generator=g),
        delta_bias=torch.full((dim,), -1.0),
    )


def run_torch(inp):
    return selective_scan_fn(**inp, delta_softplus=True, backend="torch")


def run_ref(inp):
    return selective_scan_ref(**inp, delta_softplus=True)


def run_quadratic(inp, T: int = 16):
    """The T x T chunk form (decay matrices exp(A (S_t - S_s)), s <= t, per chunk), forward only:
    the alternative design, timed for the record. Costs T/2 times the elementwise work."""
    u, A, B, C, D, z = inp["u"], inp["A"], inp["B"], inp["C"], inp["D"], inp["z"]
    delta = torch.nn.functional.softplus(inp["delta"] + inp["delta_bias"][:, None])
    b, d, length = u.shape
    K = -(-length // T)
    pad = lambda x: torch.nn.functional.pad(x, (0, K * T - length))  # noqa: E731
    dt, x = pad(delta).view(b, d, K, T), pad(delta * u).view(b, d, K, T)
    Bc, Cc = pad(B).view(b, -1, K, T), pad(C).view(b, -1, K, T)
    S = torch.cumsum(dt, -1)[:, :, None] * A[None, :, :, None, None]  # (b, d, n, K, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    h_end, ys, carry = [], [], torch.zeros(b, d, A.shape[1])
    for k in range(K):  # loop over chunks
        Sk = S[:, :, :, k]
        decay = (Sk[..., :, None] - Sk[..., None, :]).masked_fill(~causal, float("-inf")).exp()
        h = torch.einsum("bdnts,bds,bns->bdnt", decay, x[:, :, k], Bc[:, :, k]) + Sk.exp() * carry[..., None]
        carry = h[..., -1]
        ys.append(torch.einsum("bdnt,bnt->bdt", h, Cc[:, :, k]))
    y = torch.cat(ys, -1)[..., :length]
    return (y + D[:, None] * u) * torch.nn.functional.silu(z)


def timed(fn, inp, backward: bool, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        leaves = {k: v.clone().requires_grad_(backward) for k, v in inp.items()}
        t0 = time.perf_counter()
        if backward:
            out = fn(leaves)
            out.sum().backward()
        else:
            with torch.no_grad():
                out = fn(leaves)
        best = min(best, time.perf_counter() - t0)
    return best, out.detach()


def bench(lengths, repeats: int, ref_repeats: int, quadratic_max_len: int) -> list[dict]:
    rows = []
    for length in lengths:
        inp = make_inputs(length)
        for backward in (False, True):
            t_fast, y_fast = timed(run_torch, inp, backward, repeats)
            t_ref, y_ref = timed(run_ref, inp, backward, ref_repeats)
            err = ((y_fast - y_ref).abs().max() / y_ref.abs().max()).item()
            rows.append({"L": length, "pass": "fwd+bwd" if backward else "fwd", "torch_s": t_fast,
                         "reference_s": t_ref, "speedup": t_ref / t_fast, "max_rel_err": err})
            if not backward and length <= quadratic_max_len:
                rows[-1]["quadratic_s"], _ = timed(run_quadratic, inp, False, 1)
            print(f"L={length:>6} {rows[-1]['pass']:<8} torch {t_fast:8.3f}s  reference {t_ref:8.3f}s  "
                  f"x{t_ref / t_fast:6.1f}  max|diff|/max|y| {err:.1e}", flush=True)
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads"


def markdown(rows, meta) -> str:
    lines = [
        "# CPU selective scan: chunked PyTorch path vs sequential reference", "",
        f"- date: {meta['date']}", f"- machine: {meta['machine']}",
        f"- load average (1/5/15 min) at start: {meta['load_start']}, at end: {meta['load_end']}",
        "- shapes: VideoMamba-Ti mixer scan, batch 1, d_inner 384, N 16, fp32, delta_softplus, D and z on",
        f"- best of {meta['repeats']} (torch) / {meta['ref_repeats']} (reference) runs, all channels for both paths",
        f"- command: `{meta['command']}`", "",
        "| L | pass | torch (s) | reference (s) | speed-up | max rel. diff | T x T chunk form (s) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['L']} | {r['pass']} | {r['torch_s']:.3f} | {r['reference_s']:.3f} | "
              f"{r['speedup']:.1f}x | {r['max_rel_err']:.1e} | "
              + (f"{r['quadratic_s']:.3f}" if "quadratic_s" in r else "-") + " |" for r in rows]
    lines += ["", "torch: `selective_scan_fn(..., backend=\"torch\")` (two-level chunked scan, "
              "`platform/videomamba/ops/selective_scan_torch.py`); reference: `selective_scan_ref` "
              "(Python loop over positions); T x T chunk form: the alternative design with per-chunk "
              "decay matrices `exp(A (S_t - S_s))` (T = 16, forward only, in this script)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1569, 12545])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-repeats", type=int, default=1)
    p.add_argument("--quadratic-max-len", type=int, default=2000,
                   help="also time the T x T chunk form (forward) up to this length")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--write", action="store_true", help="write cpu_scan.md/json next to this script")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {"date": dt.datetime.now().astimezone().isoformat(timespec="minutes"), "machine": machine(),
            "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg()), "repeats": args.repeats,
            "ref_repeats": args.ref_repeats,
            "command": "python benchmarks/cpu_scan.py " + " ".join(argv if argv is not None else os.sys.argv[1:])}
    torch.manual_seed(0)
    rows = bench(args.lengths, args.repeats, args.ref_repeats, args.quadratic_max_len)
    meta["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    md = markdown(rows, meta)
    print(md)
    if args.write:
        here = Path(__file__).resolve().parent
        (here / "cpu_scan.md").write_text(md)
        (here / "cpu_scan.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
