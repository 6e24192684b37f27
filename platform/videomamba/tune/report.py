"""A search's trials as rows: best / Pareto selection, a markdown table and a parallel-coordinates PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

COMPLETED, STOPPED, ERROR, UNFINISHED = "COMPLETED", "STOPPED_EARLY", "ERROR", "UNFINISHED"


def _finite(row: dict, metrics: Sequence[str]) -> bool:
    return all(isinstance(row["metrics"].get(m), (int, float)) and math.isfinite(row["metrics"][m]) for m in metrics)


def _key(row: dict, metric: str, mode: str) -> float:
    value = row["metrics"][metric]
    return value if mode == "max" else -value


def pareto_front(rows: Sequence[dict], metrics: Sequence[str], modes: Sequence[str]) -> list[dict]:
    """The non-dominated rows (finite metrics only; errored trials excluded)."""
    ok = [r for r in rows if r["status"] in (COMPLETED, STOPPED) and _finite(r, metrics)]

    def dominates(a: dict, b: dict) -> bool:
        ka = [_key(a, m, d) for m, d in zip(metrics, modes)]
        kb = [_key(b, m, d) for m, d in zip(metrics, modes)]
        return all(x >= y for x, y in zip(ka, kb)) and any(x > y for x, y in zip(ka, kb))

    return [r for r in ok if not any(dominates(o, r) for o in ok if o is not r)]


def best_row(rows: Sequence[dict], metrics: Sequence[str], modes: Sequence[str]) -> dict | None:
    """Single metric: the best finite value. Several: the Pareto point best on the first metric
    (ties broken by the next metrics). Trials stopped early by the scheduler take part."""
    front = pareto_front(rows, metrics, modes)
    if not front:
        return None
    return max(front, key=lambda r: tuple(_key(r, m, d) for m, d in zip(metrics, modes)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[dict], params: Sequence[str], metrics: Sequence[str]) -> str:
    """One line per trial: id, status, epochs, seed (``train.seed``), parameters, metrics (last
    reported), error."""
    head = ["trial", "status", "epochs", "seed", *params, *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["trial_id"], r["status"] + (f": {r['error'][:60]}" if r.get("error") else ""), _fmt(r.get("epochs")),
                 _fmt(r.get("seed"))]
        cells += [_fmt(r["params"].get(p)) for p in params] + [_fmt(r["metrics"].get(m)) for m in metrics]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_trials(rows: Sequence[dict], params: Sequence[str], metrics: Sequence[str], path: str | os.PathLike,
                *, log_params: Sequence[str] = (), title: str = "") -> str | None:
    """Parallel coordinates: one axis per parameter then per metric, one line per trial, coloured
    by the first metric; categorical axes are evenly spaced, ``log_params`` on a log scale.
    Errored trials are drawn dashed grey over the parameter axes. None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["params"]]
    axes_names = [*params, *metrics]
    if not rows or not axes_names:
        return None
    positions: dict[str, dict[Any, float]] = {}
    scales: dict[str, tuple[float, float, bool]] = {}
    for name in axes_names:
        source = "metrics" if name in metrics else "params"
        values = [r[source].get(name) for r in rows if r[source].get(name) is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if values and not numeric:
            cats = list(dict.fromkeys(map(str, values)))
            positions[name] = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
        else:
            finite = [float(v) for v in values if math.isfinite(float(v))] or [0.0]
            log = name in log_params and min(finite) > 0
            lo, hi = (math.log10(min(finite)), math.log10(max(finite))) if log else (min(finite), max(finite))
            scales[name] = (lo, hi, log)

    def y(name: str, value: Any) -> float | None:
        if value is None:
            return None
        if name in positions:
            return positions[name].get(str(value))
        lo, hi, log = scales[name]
        v = float(value)
        if not math.isfinite(v) or (log and v <= 0):
            return None
        v = math.log10(v) if log else v
        return 0.5 if hi == lo else (v - lo) / (hi - lo)

    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(axes_names)), 4.8))
    cmap = plt.get_cmap("viridis")
    colour_scale = scales.get(metrics[0]) if metrics else None
    for r in rows:
        pts = [(i, y(n, (r["metrics"] if n in metrics else r["params"]).get(n))) for i, n in enumerate(axes_names)]
        pts = [(i, v) for i, v in pts if v is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        if r["status"] == ERROR or not _finite(r, metrics[:1]):
            ax.plot(xs, ys, color="0.6", linestyle="--", linewidth=1, alpha=0.8)
            continue
        c = 0.5
        if colour_scale:
            lo, hi, _ = colour_scale
            c = 0.5 if hi == lo else (float(r["metrics"][metrics[0]]) - lo) / (hi - lo)
        ax.plot(xs, ys, color=cmap(c), linewidth=2 if r["status"] == COMPLETED else 1, marker="o", markersize=3,
                alpha=0.9 if r["status"] == COMPLETED else 0.5)
    for i, name in enumerate(axes_names):
        ax.axvline(i, color="k", linewidth=0.8)
        if name in positions:
            for label, pos in positions[name].items():
                ax.text(i + 0.03, pos, label, fontsize=7, va="center")
        else:
            lo, hi, log = scales[name]
            for frac in (0.0, 1.0):
                v = lo + frac * (hi - lo)
                ax.text(i + 0.03, frac, _fmt(10**v if log else v), fontsize=7, va="center")
    ax.set_xticks(range(len(axes_names)), [n.replace(".", ".\n") for n in axes_names], fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(axes_names) - 0.5)
    ax.set_ylim(-0.08, 1.08)
    ax.set_title(title or f"{len(rows)} trials (colour: {metrics[0] if metrics else ''}; dashed: failed; thin: stopped early)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
