"""Classification metrics (top-k, per-class accuracy, confusion matrix), multi-view averaging,
and checkpoint evaluation on Ray Data (batch inference on an actor pool, then aggregation)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def average_views(index: np.ndarray, logits: np.ndarray, labels: np.ndarray | None = None):
    """Average the logits of all views (clips x crops) of each video.

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


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
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


def plot_confusion(cm: np.ndarray, class_names: Sequence[str] | None, path: str | os.PathLike, title: str = "") -> str:
    """Save a row-normalised confusion matrix PNG (counts annotated when small)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


# ------------------------------------------------------------------------------------------------
# Ray Data batch inference
class _Predictor:
    """Actor: loads a checkpoint once, maps batches of clips to ``logits`` (the classifier) or,
    with ``output="embedding"``, to the unit video embeddings of a ``contrastive`` checkpoint."""

    def __init__(self, checkpoint: str, device: str | None = None, precision: str = "auto", output: str = "logits",
                 tracking_uri: str | None = None):
        import torch

        from videomamba.train.checkpointing import load_trained_model
        from videomamba.train.precision import resolve_precision

        self.torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if output == "embedding":
            from videomamba.train.retrieval import load_video_text_model

            self.model = load_video_text_model(checkpoint, self.device)[0].encode_video
        elif output == "logits":
            self.model, _ = load_trained_model(checkpoint, self.device, tracking_uri=tracking_uri)
        else:
            raise ValueError(f"output: unknown {output!r} (logits | embedding)")
        self.output = output
        self.precision = resolve_precision(precision, self.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        video = torch.as_tensor(np.stack(list(batch["video"])) if batch["video"].dtype == object else batch["video"])
        with torch.inference_mode(), self.precision.autocast():
            out = self.model(video.to(self.device, non_blocking=True)).float().cpu().numpy()
        return {"index": batch["index"], "view": batch["view"], "label": batch["label"], self.output: out}


def predict_dataset(
    dataset, checkpoint: str, *, batch_size: int = 8, num_actors: int = 1, num_gpus: float | None = None, output: str = "logits",
    tracking_uri: str | None = None,
):
    """Ray Data dataset of ``index, view, label, <output>`` rows (an actor pool of predictors).
    ``tracking_uri``: where the actors resolve an MLflow model URI (``models:/...``)."""
    import ray

    if num_gpus is None:
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return dataset.map_batches(
        _Predictor,
        fn_constructor_kwargs={"checkpoint": str(checkpoint), "device": "cuda" if num_gpus else "cpu", "output": output,
                               "tracking_uri": tracking_uri},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, num_actors)),
        num_gpus=num_gpus,
        batch_format="numpy",
    )


def collect(rows, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Concatenate the ``keys`` columns of a (prediction) dataset into arrays."""
    cols: dict[str, list] = {key: [] for key in keys}
    for batch in rows.iter_batches(batch_size=256, batch_format="numpy"):
        for key in cols:
            cols[key].append(batch[key])
    if not cols[keys[0]]:
        raise RuntimeError("evaluation dataset produced no clips")
    return {key: np.concatenate([np.stack(list(x)) if x.dtype == object else x for x in parts]) for key, parts in cols.items()}


def evaluate_dataset(
    dataset, checkpoint: str, *, num_classes: int, batch_size: int = 8, num_actors: int = 1, tracking_uri: str | None = None
) -> dict[str, Any]:
    """Multi-view evaluation: predict every view on Ray, average logits per video, compute metrics."""
    rows = predict_dataset(dataset, checkpoint, batch_size=batch_size, num_actors=num_actors, tracking_uri=tracking_uri)
    cols = collect(rows, ("index", "label", "logits"))
    return classification_metrics(cols["logits"], cols["label"], index=cols["index"], num_classes=num_classes)


def evaluate_checkpoint(
    checkpoint: str,
    *,
    data_cfg=None,
    split: str = "test",
    manifest: str | None = None,
    batch_size: int = 8,
    num_actors: int = 1,
    seed: int = 0,
    scope: str = "eval",
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Multi-view evaluation of a training checkpoint on ``split`` (or ``manifest``) on Ray.
    ``checkpoint`` may also be a videomamba MLflow model URI (``models:/NAME/VERSION``,
    ``runs:/RUN_ID/model``), resolved in ``tracking_uri`` (default ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///runs/mlflow.db``) by the driver and by every predictor actor.

    ``data_cfg`` defaults to the checkpoint's own ``data`` config; class names come from its meta.
    Returns :func:`classification_metrics` plus ``class_names``, ``split`` and ``skips``; for a
    ``contrastive`` checkpoint :func:`videomamba.train.retrieval.evaluate_retrieval` instead.
    """
    from videomamba.data.config import DataConfig
    from videomamba.train import data_api
    from videomamba.train import tracking
    from videomamba.train.checkpointing import local_checkpoint_dir, read_meta
    from videomamba.train.mlflow_model import is_mlflow_uri

    if is_mlflow_uri(checkpoint):  # the actors resolve it in the same store (absolute path)
        tracking_uri = tracking_uri or tracking.default_tracking_uri("runs")
    with local_checkpoint_dir(checkpoint, tracking_uri) as d:
        meta = read_meta(d)
    if data_cfg is None:
        data_cfg = DataConfig.model_validate(meta["config"]["data"])
    if meta["config"].get("objective", {}).get("name") == "contrastive":
        from videomamba.train.retrieval import evaluate_retrieval

        return evaluate_retrieval(checkpoint, data_cfg=data_cfg, split=split, manifest=manifest, batch_size=batch_size,
                                  num_actors=num_actors, seed=seed, scope=scope)
    class_names = meta["class_names"]
    ds = data_api.build(data_cfg, split, seed=seed, scope=scope, manifest=manifest)
    full = evaluate_dataset(ds, checkpoint, num_classes=len(class_names), batch_size=batch_size, num_actors=num_actors,
                            tracking_uri=tracking_uri)
    full.update(class_names=class_names, split=split, skips=data_api.skip_metrics(split, scope))
    return full
