"""Checkpoint evaluation on Ray Data: multi-view batch inference on an actor pool
(:mod:`videomamba.inference.batch`), logits averaged per video, classification metrics
(:mod:`videomamba.metrics`); a ``contrastive`` checkpoint is evaluated as zero-shot retrieval
(:mod:`videomamba.inference.retrieval`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from videomamba.checkpoints import is_mlflow_uri, local_checkpoint_dir, read_meta
from videomamba.data.config import DataConfig
from videomamba.data.normalize import IMAGENET_MEAN, IMAGENET_STD
from videomamba.data.skips import SkipLimitError, check_skips, release_ledger, skip_report
from videomamba.data.splits import Splits
from videomamba.errors import UsageError
from videomamba.inference.batch import NoClipsError, collect, predict_dataset
from videomamba.inference.retrieval import evaluate_retrieval
from videomamba.metrics import classification_metrics
from videomamba.mlflow_store import default_tracking_uri

logger = logging.getLogger(__name__)


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


def evaluate_dataset(
    dataset, checkpoint: str, *, num_classes: int, batch_size: int = 8, num_actors: int = 1,
    label_map: np.ndarray | None = None, tracking_uri: str | None = None,
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
) -> dict[str, Any]:
    """Multi-view evaluation: predict every view on Ray, average logits per video, compute metrics.
    ``label_map`` (see :func:`class_label_map`) maps the dataset's labels to the model's classes;
    ``mean``/``std``: the dataset's ``data.mean``/``data.std`` (normalisation of uint8 clips)."""
    rows = predict_dataset(dataset, checkpoint, batch_size=batch_size, num_actors=num_actors, tracking_uri=tracking_uri,
                           mean=mean, std=std)
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
    splits: Splits | None = None,
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
    :func:`videomamba.inference.retrieval.evaluate_retrieval` instead. Raises ``SkipLimitError`` when
    more than ``max_skip_fraction`` (default ``data.max_skip_fraction``) of the videos were
    skipped or no clip was produced. ``splits``: the data of ``data_cfg`` as already read
    (:class:`~videomamba.data.splits.Splits`, e.g. the training run's), else read here.
    """
    if is_mlflow_uri(checkpoint):  # the actors resolve it in the same store (absolute path)
        tracking_uri = tracking_uri or default_tracking_uri()
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
                                        num_actors=num_actors, label_map=label_map, tracking_uri=tracking_uri,
                                        mean=data_cfg.mean, std=data_cfg.std)
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
