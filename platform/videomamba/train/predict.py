"""Prediction on individual video files with a training checkpoint (no Ray needed)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]] | None  # (class name, probability), best first; None on failure
    num_views: int = 0
    error: str | None = None
    reason: str | None = None  # why it failed: a DecodeError reason (missing, unsupported...) or "error"


def load_views(path: str, data_cfg, split: str = "test") -> np.ndarray:
    """float32 ``(V, 3, T, S, S)``: the evaluation views (clips x crops) of ``split`` for one video,
    sampled and transformed exactly as the data pipeline does. Raises ``DecodeError``."""
    from videomamba.data import sampling
    from videomamba.data.decode import decode_clips
    from videomamba.data.transforms import ClipTransform

    num_clips, _ = data_cfg.views(split)

    def pick(info) -> np.ndarray:
        first, length = sampling.frame_window(info.num_frames, info.fps, None, None)
        clips = [
            sampling.sample_indices(data_cfg.sampling, length, data_cfg.num_frames, data_cfg.frame_stride,
                                    clip=k, num_clips=num_clips)
            for k in range(num_clips)
        ]
        return first + np.stack(clips)

    clips, _ = decode_clips(path, pick, short_side=data_cfg.eval_short_side, num_threads=data_cfg.decode_threads)
    transform = ClipTransform.from_config(data_cfg, split)
    views = np.stack([transform(clip) for clip in clips])  # (clips, crops, 3, T, S, S)
    return views.reshape(-1, *views.shape[2:])


def predict_videos(
    checkpoint: str | os.PathLike,
    paths: list[str],
    *,
    top_k: int = 5,
    split: str = "test",
    device: str | None = None,
    batch_size: int = 8,
) -> list[Prediction]:
    """Top-k classes (softmax of the view-averaged logits) for each video file."""
    from videomamba.data.config import DataConfig
    from videomamba.data.decode import DecodeError
    from videomamba.train.checkpointing import load_trained_model
    from videomamba.train.precision import resolve_precision

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, meta = load_trained_model(checkpoint, dev)
    data_cfg = DataConfig.model_validate(meta["config"]["data"])
    names = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
    precision = resolve_precision("auto", dev)
    out = []
    for path in paths:
        try:
            views = torch.from_numpy(load_views(path, data_cfg, split))
        except Exception as err:  # noqa: BLE001 - one bad input never stops the others
            reason = err.reason if isinstance(err, DecodeError) else "error"
            logger.warning("cannot read %s: %s", path, err)
            out.append(Prediction(path, None, error=f"{type(err).__name__}: {err}", reason=reason))
            continue
        with torch.inference_mode(), precision.autocast():
            logits = torch.cat([model(v.to(dev)).float() for v in views.split(batch_size)])
        probs = logits.mean(0).softmax(-1).cpu()
        values, indices = probs.topk(min(top_k, probs.numel()))
        out.append(Prediction(path, [(names[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())], len(views)))
    return out
