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
import time
from pathlib import Path

import torch

from videomamba.env import cpu_model
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


def run_sequential(inp):
    """A leaner sequential loop (same math as the reference, slices taken with ``unbind`` so its
    backward is O(L)): the fairer sequential baseline for forward + backward."""
    u, A, B, C, D, z = inp["u"], inp["A"], inp["B"], inp["C"], inp["D"], inp["z"]
    delta = torch.nn.functional.softplus(inp["delta"] + inp["delta_bias"][:, None])
    dA = torch.exp(delta[:, :, None] * A[None, :, :, None]).unbind(-1)
    dBu = ((delta * u)[:, :, None] * B[:, None]).unbind(-1)
    Cs = C[:, None].unbind(-1)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for a_t, b_t, c_t in zip(dA, dBu, Cs):
        h = a_t * h + b_t
        ys.append((h * c_t).sum(-1))
    return (torch.stack(ys, -1) + D[:, None] * u) * torch.nn.functional.silu(z)


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


def bench(lengths, repeats: int, ref_repeats: int, quadratic_max_len: int, ref_bwd_max_len: int) -> list[dict]:
    rows = []
    for length in lengths:
        inp = make_inputs(length)
        for backward in (False, True):
            row = {"L": length, "pass": "fwd+bwd" if backward else "fwd"}
            row["torch_s"], y_fast = timed(run_torch, inp, backward, repeats)
            row["sequential_s"], y_seq = timed(run_sequential, inp, backward, ref_repeats)
            if not backward or length <= ref_bwd_max_len:
                row["reference_s"], y_ref = timed(run_ref, inp, backward, ref_repeats)
            else:
                y_ref = y_seq  # the reference's own backward is O(L^2) (see the notes)
            if not backward and length <= quadratic_max_len:
                row["quadratic_s"], _ = timed(run_quadratic, inp, False, 1)
            row["max_rel_err"] = ((y_fast - y_ref).abs().max() / y_ref.abs().max()).item()
            rows.append(row)
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
    return rows


def machine() -> str:
    return f"{os.cpu_count()}-core CPU ({cpu_model()}), torch {torch.__version__}, {torch.get_num_threads()} threads"


def _cell(row, key, base=None):
    if key not in row:
        return "-"
    if base is None:
        return f"{row[key]:.3f}"
    return f"{row[key]:.3f} ({row[key] / row[base]:.1f}x)"


def markdown(rows, meta) -> str:
    lines = [
        "# CPU selective scan: chunked PyTorch path vs sequential reference", "",
        f"- date: {meta['date']}", f"- machine: {meta['machine']}",
        f"- load average (1/5/15 min) at start: {meta['load_start']}, at end: {meta['load_end']}",
        "- shapes: VideoMamba-Ti mixer scan, batch 1, d_inner 384, N 16, fp32, delta_softplus, D and z on",
        f"- best of {meta['repeats']} (torch) / {meta['ref_repeats']} (others) runs, all 384 channels for every path",
        f"- command: `{meta['command']}`", "",
        "Seconds; in brackets the time relative to the torch path (= its speed-up).", "",
        "| L | pass | torch | reference | sequential (unbind) | T x T chunk form | max rel. diff |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['L']} | {r['pass']} | {_cell(r, 'torch_s')} | {_cell(r, 'reference_s', 'torch_s')} | "
              f"{_cell(r, 'sequential_s', 'torch_s')} | {_cell(r, 'quadratic_s', 'torch_s')} | "
              f"{r['max_rel_err']:.1e} |" for r in rows]
    lines += [
        "",
        "- torch: `selective_scan_fn(..., backend=\"torch\")`, the two-level chunked scan of "
        "`platform/videomamba/ops/selective_scan_torch.py` (autograd.Function, recomputing backward).",
        "- reference: `selective_scan_ref`, the tests' ground truth (Python loop over positions). Its "
        "autograd backward is O(L^2): every `dA[..., t]` slice's backward writes a full-size zero "
        "gradient, so its fwd+bwd is run only up to L = " + str(meta["ref_bwd_max_len"]) + ".",
        "- sequential (unbind): the same loop with the slices taken by `unbind` (O(L) backward), the "
        "fair sequential baseline for fwd+bwd.",
        "- T x T chunk form: the alternative chunked design (per-chunk decay matrices "
        "`exp(A (S_t - S_s))`, T = 16, loop over chunks), forward only, timed up to L = "
        + str(meta["quadratic_max_len"]) + ": T/2 times the elementwise work of a scan.",
        "- max rel. diff: max |torch - reference| / max |reference| of the outputs (the sequential "
        "loop where the reference did not run).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1569, 12545])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-repeats", type=int, default=1)
    p.add_argument("--quadratic-max-len", type=int, default=2000,
                   help="also time the T x T chunk form (forward) up to this length")
    p.add_argument("--ref-bwd-max-len", type=int, default=2000,
                   help="run the reference's (O(L^2)) fwd+bwd only up to this length")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--write", action="store_true", help="write cpu_scan.md/json next to this script")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {"date": dt.datetime.now().astimezone().isoformat(timespec="minutes"), "machine": machine(),
            "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg()), "repeats": args.repeats,
            "ref_repeats": args.ref_repeats, "quadratic_max_len": args.quadratic_max_len,
            "ref_bwd_max_len": args.ref_bwd_max_len,
            "command": "python benchmarks/cpu_scan.py " + " ".join(argv if argv is not None else os.sys.argv[1:])}
    torch.manual_seed(0)
    rows = bench(args.lengths, args.repeats, args.ref_repeats, args.quadratic_max_len, args.ref_bwd_max_len)
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
