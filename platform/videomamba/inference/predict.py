"""Prediction on individual video files with a training checkpoint (no Ray needed)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from videomamba.data.config import DataConfig
from videomamba.data.decode import DecodeError, decode_clips
from videomamba.data.images import ImageTransform, load_image
from videomamba.data.pipeline import clip_picker
from videomamba.data.transforms import ClipTransform
from videomamba.checkpoints import load_trained_model
from videomamba.train.precision import resolve_precision

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """The answer for one video file: its top classes, or why it could not be read."""

    path: str
    top: list[tuple[str, float]] | None  # (class name, probability), best first; None on failure
    num_views: int = 0
    error: str | None = None
    reason: str | None = None  # why it failed: a DecodeError reason (missing, unsupported...) or "error"
    warning: str | None = None  # e.g. a damaged file decoded up to its last good frame


def load_views(path: str, data_cfg, split: str = "test") -> np.ndarray:
    """float32 ``(V, 3, T, S, S)``: the evaluation views (clips x crops) of ``split`` for one video,
    sampled and transformed exactly as the data pipeline does. Raises ``DecodeError``."""
    return decode_views(path, data_cfg, split)[0]


def decode_views(path: str, data_cfg, split: str = "test"):
    """``(views, info)``: :func:`load_views` plus the ``VideoInfo`` found while decoding
    (``info.truncated`` > 0: a damaged file, decoded up to its last good frame; None for an image)."""
    data_cfg = data_cfg if isinstance(data_cfg, DataConfig) else DataConfig.model_validate(data_cfg)
    if data_cfg.kind == "image":  # an image checkpoint: one view (1, 3, 1, S, S) of an image file, info None
        image = load_image(path, exif_transpose=data_cfg.image.exif_transpose)
        return ImageTransform(data_cfg, split)(image)[None, :, None], None
    num_clips, _ = data_cfg.views(split)
    pick = clip_picker(data_cfg, num_clips, float("nan"), float("nan"), None, {})
    clips, info = decode_clips(path, pick, short_side=data_cfg.eval_short_side, num_threads=data_cfg.decode_threads)
    transform = ClipTransform.from_config(data_cfg, split)
    views = np.stack([transform(clip) for clip in clips])  # (clips, crops, 3, T, S, S)
    return views.reshape(-1, *views.shape[2:]), info


def predict_videos(
    checkpoint: str | os.PathLike,
    paths: list[str],
    *,
    top_k: int = 5,
    split: str = "test",
    device: str | None = None,
    batch_size: int = 8,
    tracking_uri: str | None = None,
) -> list[Prediction]:
    """Top-k classes (softmax of the view-averaged logits) for each video file. ``checkpoint``: a
    training checkpoint (directory or URI) or a videomamba MLflow model (``models:/NAME/VERSION``,
    ``runs:/RUN_ID/model``, resolved in ``tracking_uri``, default ``$MLFLOW_TRACKING_URI``)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, meta = load_trained_model(checkpoint, dev, tracking_uri=tracking_uri)
    data_cfg = DataConfig.model_validate(meta["config"]["data"])
    names = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
    precision = resolve_precision("auto", dev)
    out = []
    for path in paths:
        try:
            views, info = decode_views(path, data_cfg, split)
            views = torch.from_numpy(views)
        except Exception as err:  # noqa: BLE001 - one bad input never stops the others
            reason = err.reason if isinstance(err, DecodeError) else "error"
            logger.warning("cannot read %s: %s", path, err)
            out.append(Prediction(path, None, error=f"{type(err).__name__}: {err}", reason=reason))
            continue
        warning = None
        if info is not None and info.truncated:
            warning = (f"damaged file: only {info.num_frames} of the {info.num_frames + info.truncated} frames its "
                       "index announces decode; predicted from those")
            logger.warning("%s: %s", path, warning)
        with torch.inference_mode(), precision.autocast():
            logits = torch.cat([model(v.to(dev)).float() for v in views.split(batch_size)])
        probs = logits.mean(0).softmax(-1).cpu()
        values, indices = probs.topk(min(top_k, probs.numel()))
        top = [(names[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]
        out.append(Prediction(path, top, len(views), warning=warning))
    return out
