"""Evaluation metrics on arrays (numpy, torch only): multi-view averaging, classification
(top-k, per-class accuracy, confusion matrix) and video-text retrieval (Recall@K, median rank).

Used by the objectives' validation (:meth:`videomamba.objectives.Objective.eval_metrics`) and by
checkpoint evaluation (:mod:`videomamba.inference`).

Retrieval ranks are 1-based; a tie with a wrong candidate counts against the right one (a constant
similarity gets the worst ranks, never the best). Text-to-video: each caption has one right
video. Video-to-text: a video's rank is that of its best-ranked own caption among all captions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

#: the K of the reported Recall@K (the retrieval literature's R@1/5/10)
RECALLS = (1, 5, 10)


# ------------------------------------------------------------------------------------------------
# views
def sort_views(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rows of per-view ``cols`` (arrays of equal length) sorted by ``(index, view)`` (by ``index``
    alone, stably, without a ``view`` column): the order in which views arrive from Ray Data or
    from the training workers then no longer changes any float sum taken over them."""
    if "index" not in cols:
        return cols
    index = np.asarray(cols["index"])
    order = np.lexsort((np.asarray(cols["view"]), index)) if "view" in cols else np.argsort(index, kind="stable")
    return {key: np.asarray(values)[order] for key, values in cols.items()}


def average_views(index: np.ndarray, logits: np.ndarray, labels: np.ndarray | None = None):
    """Average the logits of all views (clips x crops) of each video, summed in row order in
    float64 (pass rows in a fixed order, e.g. :func:`sort_views`, for bit-identical means).

    Returns ``(unique_index, mean_logits, labels_per_index, views_per_index)``, sorted by index.
    """
    index = np.asarray(index).astype(np.int64)
    logits = np.asarray(logits, dtype=np.float64)
    uniq, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
    sums = np.zeros((len(uniq), logits.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, logits)
    per_label = None
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64)
        per_label = np.empty(len(uniq), dtype=np.int64)
        per_label[inverse] = labels
        if np.any(per_label[inverse] != labels):
            raise ValueError("views of the same video carry different labels")
    return uniq, sums / counts[:, None], per_label, counts


# ------------------------------------------------------------------------------------------------
# classification
def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows of ``logits (N, K)`` whose label ``(N,)`` is among the ``k`` best
    (ties broken by class order); NaN without rows."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, pred]`` counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return cm


def classification_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    index: np.ndarray | None = None,
    num_classes: int | None = None,
    topk: Sequence[int] = (1, 5),
) -> dict[str, Any]:
    """Metrics over videos; with ``index`` the logits of views sharing an index are averaged first.

    Returns ``{"top1", "top5", "mean_class_acc", "per_class_acc" (list, NaN for absent classes),
    "confusion" (np.ndarray), "num_videos", "num_views"}``.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64)
    num_views = len(labels)
    if index is not None:
        _, logits, labels, _ = average_views(index, logits, labels)
    num_classes = num_classes or logits.shape[1]
    pred = logits.argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(pred, labels, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    out: dict[str, Any] = {f"top{k}": topk_accuracy(logits, labels, k) for k in topk}
    out.update(
        mean_class_acc=float(np.nanmean(per_class)) if np.any(support > 0) else float("nan"),
        per_class_acc=per_class.tolist(),
        confusion=cm,
        num_videos=int(len(labels)),
        num_views=int(num_views),
    )
    return out


def scalar_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The scalar entries of :func:`classification_metrics`, keyed ``prefix/name``."""
    return {f"{prefix}/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating))}


# ------------------------------------------------------------------------------------------------
# video-text retrieval
def _rank_stats(ranks: np.ndarray, prefix: str) -> dict[str, float]:
    out = {f"{prefix}_r{k}": float(np.mean(ranks <= k)) for k in RECALLS}
    out[f"{prefix}_medr"] = float(np.median(ranks))
    out[f"{prefix}_meanr"] = float(np.mean(ranks))
    return out


def retrieval_ranks(sim: np.ndarray, text_video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sim (N_text, N_video)``, ``text_video (N_text,)`` = the right video of each caption ->
    ``(t2v ranks (N_text,), v2t ranks (N_video,))``. Every video needs at least one caption."""
    sim = np.asarray(sim, dtype=np.float64)
    text_video = np.asarray(text_video, dtype=np.int64)
    n_text, n_video = sim.shape
    if text_video.shape != (n_text,) or (n_text and (text_video.min() < 0 or text_video.max() >= n_video)):
        raise ValueError(f"text_video must be ({n_text},) ints in [0, {n_video}), got {text_video.shape}")
    own = np.zeros((n_video, n_text), dtype=bool)
    own[text_video, np.arange(n_text)] = True
    if not own.any(1).all():
        raise ValueError(f"videos without a caption: {np.flatnonzero(~own.any(1))[:10].tolist()}")
    right = sim[np.arange(n_text), text_video]
    t2v = (sim >= right[:, None]).sum(1)  # 1 + wrong videos scoring >= the right one
    sim_t = sim.T
    best = np.where(own, sim_t, -np.inf).max(1)
    v2t = 1 + ((sim_t >= best[:, None]) & ~own).sum(1)
    return t2v, v2t


def retrieval_metrics(sim: np.ndarray, text_video: np.ndarray) -> dict[str, float]:
    """Recall@1/5/10 (fractions), median and mean rank both ways (``t2v_*``, ``v2t_*``), their
    mean recall ``r_mean``, ``num_videos`` and ``num_captions``; see :func:`retrieval_ranks`."""
    t2v, v2t = retrieval_ranks(sim, text_video)
    out = {**_rank_stats(t2v, "t2v"), **_rank_stats(v2t, "v2t")}
    out["r_mean"] = float(np.mean([out[f"{d}_r{k}"] for d in ("t2v", "v2t") for k in RECALLS]))
    out.update(num_videos=int(sim.shape[1]), num_captions=int(sim.shape[0]))
    return out


def chance_metrics(num_videos: int, captions_per_video: int = 1) -> dict[str, float]:
    """Expected Recall@K and median rank of a random ranking (one right video per caption;
    ``captions_per_video`` right captions per video, video-to-text)."""
    n_text = num_videos * captions_per_video
    out = {f"t2v_r{k}": min(1.0, k / num_videos) for k in RECALLS}
    out["t2v_medr"] = (num_videos + 1) / 2
    # v2t: the best of c right captions among n_text: P(rank <= k) = 1 - C(n - c, k) / C(n, k)
    c = captions_per_video
    for k in RECALLS:
        p_miss = np.prod([(n_text - c - i) / (n_text - i) for i in range(min(k, int(n_text - c) + 1))])
        out[f"v2t_r{k}"] = float(1 - max(p_miss, 0.0))
    return out


def video_text_metrics(
    video_emb: np.ndarray,
    index: np.ndarray,
    captions: Sequence[Sequence[str]],
    encode_text: Callable[[list[str]], torch.Tensor],
) -> dict[str, Any]:
    """Retrieval metrics of per-view unit video embeddings ``(V, E)`` of manifest rows ``index
    (V,)`` (views of a video averaged, renormalised) against all captions of those rows
    (``captions[row]``), embedded by ``encode_text(list[str]) -> (N, E)``."""
    rows, mean_emb, _, _ = average_views(index, video_emb)
    mean_emb /= np.maximum(np.linalg.norm(mean_emb, axis=1, keepdims=True), 1e-12)
    texts, text_video = [], []
    for position, row in enumerate(rows):
        texts.extend(captions[row])
        text_video.extend([position] * len(captions[row]))
    with torch.inference_mode():
        text_emb = encode_text(texts).float().cpu().numpy().astype(np.float64)
    return {**retrieval_metrics(text_emb @ mean_emb.T, np.asarray(text_video)), "task": "retrieval"}
