"""Classification metrics (top-k, per-class accuracy, confusion matrix), multi-view averaging,
and checkpoint evaluation on Ray Data (batch inference on an actor pool, then aggregation)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from videomamba.errors import UsageError

logger = logging.getLogger(__name__)


class NoClipsError(RuntimeError):
    """An evaluation dataset produced no clip at all."""


class ClassListMismatch(UsageError, ValueError):
    """The classes file used to read the data names classes the checkpoint does not have (exit 2)."""


def class_label_map(file_names: Sequence[str], model_names: Sequence[str]) -> np.ndarray | None:
    """Manifest labels (indices into ``file_names``, the classes file the data is read with) ->
    indices into ``model_names`` (the checkpoint's classes), matched by name; None when the two
    lists are identical. Raises ``ValueError`` with both lists when a name of the file is not
    one of the checkpoint's (or repeats): labels are never mapped by position alone."""
    file_names, model_names = [str(n) for n in file_names], [str(n) for n in model_names]
    if file_names == model_names:
        return None
    unknown = [n for n in file_names if n not in model_names]
    if unknown or len(set(file_names)) != len(file_names):
        raise ClassListMismatch(
            f"the classes file does not match the checkpoint's classes ({len(unknown)} unknown: "
            f"{unknown[:10]}).\n  classes file: {file_names}\n  checkpoint:   {model_names}"
        )
    logger.warning("the classes file lists the checkpoint's classes in another order: labels mapped by name")
    return np.asarray([model_names.index(n) for n in file_names], dtype=np.int64)


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

        from videomamba.checkpoints import load_trained_model
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
    """Concatenate the ``keys`` columns of a (prediction) dataset into arrays, sorted by
    ``(index, view)`` when both are among ``keys`` (:func:`sort_views`)."""
    cols: dict[str, list] = {key: [] for key in keys}
    for batch in rows.iter_batches(batch_size=256, batch_format="numpy"):
        for key in cols:
            cols[key].append(batch[key])
    if not cols[keys[0]]:
        raise NoClipsError("evaluation dataset produced no clips")
    out = {key: np.concatenate([np.stack(list(x)) if x.dtype == object else x for x in parts]) for key, parts in cols.items()}
    return sort_views(out) if "index" in out and "view" in out else out


def evaluate_dataset(
    dataset, checkpoint: str, *, num_classes: int, batch_size: int = 8, num_actors: int = 1,
    label_map: np.ndarray | None = None, tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Multi-view evaluation: predict every view on Ray, average logits per video, compute metrics.
    ``label_map`` (see :func:`class_label_map`) maps the dataset's labels to the model's classes."""
    rows = predict_dataset(dataset, checkpoint, batch_size=batch_size, num_actors=num_actors, tracking_uri=tracking_uri)
    cols = collect(rows, ("index", "view", "label", "logits"))
    labels = cols["label"] if label_map is None else label_map[cols["label"].astype(np.int64)]
    return classification_metrics(cols["logits"], labels, index=cols["index"], num_classes=num_classes)


def evaluate_checkpoint(
    checkpoint: str,
    *,
    data_cfg=None,
    split: str = "test",
    manifest: str | None = None,
    batch_size: int = 8,
    num_actors: int = 1,
    seed: int = 0,
    scope: str | None = None,
    max_skip_fraction: float | None = None,
    tracking_uri: str | None = None,
    splits=None,
) -> dict[str, Any]:
    """Multi-view evaluation of a training checkpoint on ``split`` (or ``manifest``) on Ray.
    ``checkpoint`` may also be a videomamba MLflow model URI (``models:/NAME/VERSION``,
    ``runs:/RUN_ID/model``), resolved in ``tracking_uri`` (default ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///runs/mlflow.db``) by the driver and by every predictor actor.

    ``data_cfg`` defaults to the checkpoint's own ``data`` config; class names come from its meta
    (a ``data.classes_file`` listing them in another order is mapped by name; other names raise
    ``ValueError`` with both lists). ``scope`` names the skip ledger (default: one of its own).
    Returns :func:`classification_metrics` plus ``class_names``, ``split``, ``skips`` (metrics)
    and ``skip_report`` (counts by reason, examples); for a ``contrastive`` checkpoint
    :func:`videomamba.train.retrieval.evaluate_retrieval` instead. Raises ``SkipLimitError`` when
    more than ``max_skip_fraction`` (default ``data.max_skip_fraction``) of the videos were
    skipped or no clip was produced. ``splits``: the data of ``data_cfg`` as already read
    (:class:`~videomamba.data.splits.Splits`, e.g. the training run's), else read here.
    """
    import uuid

    from videomamba.data.config import DataConfig
    from videomamba.data.skips import SkipLimitError, check_skips, release_ledger, skip_report
    from videomamba.data.splits import Splits
    from videomamba.train import tracking
    from videomamba.checkpoints import local_checkpoint_dir, read_meta
    from videomamba.checkpoints import is_mlflow_uri

    if is_mlflow_uri(checkpoint):  # the actors resolve it in the same store (absolute path)
        tracking_uri = tracking_uri or tracking.default_tracking_uri("runs")
    with local_checkpoint_dir(checkpoint, tracking_uri) as d:
        meta = read_meta(d)
    if data_cfg is None:
        data_cfg = DataConfig.model_validate(meta["config"]["data"])
    if max_skip_fraction is None:
        max_skip_fraction = data_cfg.max_skip_fraction
    scope = scope or f"eval-{uuid.uuid4().hex[:12]}"
    if splits is None or manifest:
        splits = Splits(data_cfg, {split: manifest})
    total = splits.num_videos(split)
    try:
        try:
            if meta["config"].get("objective", {}).get("name") == "contrastive":
                from videomamba.train.retrieval import evaluate_retrieval

                full = evaluate_retrieval(checkpoint, data_cfg=data_cfg, split=split, manifest=manifest,
                                          batch_size=batch_size, num_actors=num_actors, seed=seed, scope=scope,
                                          splits=splits)
            else:
                class_names = meta["class_names"]
                label_map = None
                if data_cfg.classes_file and class_names:
                    label_map = class_label_map(splits.file_class_names(), class_names)
                ds = splits.dataset(split, seed=seed, scope=scope)
                full = evaluate_dataset(ds, checkpoint, num_classes=len(class_names), batch_size=batch_size,
                                        num_actors=num_actors, label_map=label_map, tracking_uri=tracking_uri)
                full.update(class_names=class_names, split=split)
            no_clips = None
        except NoClipsError as err:
            full, no_clips = None, err
        rep = skip_report(split, scope=scope)
    finally:
        release_ledger(scope)
    what = f"evaluation on {manifest or split}"
    check_skips(rep, total, max_skip_fraction, what)
    if no_clips is not None:
        raise SkipLimitError(f"{what}: no clips ({rep.describe(total)})") from no_clips
    full.update(skips=rep.as_metrics(f"data/{split}"), skip_report=rep.summary())
    return full
