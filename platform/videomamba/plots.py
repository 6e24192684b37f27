"""PNG figures logged to MLflow: the confusion matrix of an evaluation and metric curves.

matplotlib (Agg backend, no display needed) is imported on first use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: np.ndarray, class_names: Sequence[str] | None, path: str | os.PathLike, title: str = "") -> str:
    """Save a row-normalised confusion matrix ``cm[true, pred]`` ``(K, K)`` as a PNG at ``path``
    (counts annotated up to 20 classes, tick labels up to 40); returns ``str(path)``."""
    plt = _pyplot()
    n = cm.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * n, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    if n <= 40:
        ax.set_xticks(range(n), names, rotation=90)
        ax.set_yticks(range(n), names)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike) -> str | None:
    """One panel per metric (three per row), ``series[name] = (steps, values)``, saved as a PNG at
    ``path``; returns ``str(path)``, or None when ``series`` is empty."""
    if not series:
        return None
    plt = _pyplot()
    cols = min(3, len(series))
    rows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (key, (steps, values)) in zip(axes.flat, series.items()):
        ax.plot(steps, values, marker="." if len(steps) < 50 else None)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
