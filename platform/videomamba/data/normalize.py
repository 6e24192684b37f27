"""Pixel normalisation of clips, the one place it is defined: ``(x - 255 mean) / (255 std)``.

The Ray Data pipelines ship clips as uint8 pixels (``data.clip_dtype: uint8``, the default) and
the consumer normalises them on its own device after the host-to-device copy: the training worker
(on the GPU), the batch-inference actors, ``videomamba data bench``. A float32 clip is 4x the bytes
through Ray's object store (measured 3.5 ms vs 0.4 ms of ``ray.put`` per 8 x 224 px clip, i.e.
~6% of a decode task's CPU, benchmarks/data_pipeline.md), through the pinned host buffer and the
host-to-GPU copy. ``clip_dtype: float32`` normalises in the decode task instead (the former
behaviour); :func:`normalize_video` passes floating-point input through unchanged, so consumers
handle both.

The arithmetic is the decode task's NumPy one (float32 ``x - m`` then ``/ s``, with
``m = float32(mean) * 255`` and ``s = float32(std) * 255`` computed in float32), so the model gets
the same float32 values, bit for bit, whichever side normalises (IEEE-754 subtraction and
division are correctly rounded on CPUs and on CUDA without fast-math, as PyTorch builds it).

``IMAGENET_MEAN`` / ``IMAGENET_STD``: the ImageNet-1k RGB channel statistics of torchvision's
pretrained models and timm (``timm.data.constants.IMAGENET_DEFAULT_MEAN/STD``), as in VideoMamba's
release (``videomamba/video_sm/datasets/build.py``: ``input_mean = [0.485, 0.456, 0.406]  #
IMAGENET_DEFAULT_MEAN``, ``input_std = [0.229, 0.224, 0.225]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pixel_stats(mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(3,)`` mean and std in pixel units (``x 255``, computed in float32)."""
    return np.asarray(mean, dtype=np.float32) * 255, np.asarray(std, dtype=np.float32) * 255


def normalize_frames(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 ``(T, S, S, 3)`` -> normalised float32 ``(3, T, S, S)`` (NumPy, in a decode task)."""
    m, s = pixel_stats(mean, std)
    x = (frames.astype(np.float32) - m) / s
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2))


def normalize_video(video, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """uint8 clips ``(..., 3, T, H, W)`` (a torch tensor on any device, or a NumPy array) ->
    normalised float32 of the same shape, on the same device. Floating-point input is taken as
    already normalised and returned unchanged. Raises ``ValueError`` for another dtype or when
    dimension -4 is not the 3 RGB channels."""
    import torch

    if torch.is_tensor(video):
        if video.is_floating_point():
            return video
        if video.dtype != torch.uint8:
            raise ValueError(f"clips must be uint8 pixels or normalised floats, got {video.dtype}")
    else:
        video = np.asarray(video)
        if np.issubdtype(video.dtype, np.floating):
            return video
        if video.dtype != np.uint8:
            raise ValueError(f"clips must be uint8 pixels or normalised floats, got {video.dtype}")
    if video.ndim < 4 or video.shape[-4] != 3:
        raise ValueError(f"clips must be (..., 3, T, H, W), got shape {tuple(video.shape)}")
    m, s = pixel_stats(mean, std)
    if not torch.is_tensor(video):
        return (video.astype(np.float32) - m.reshape(3, 1, 1, 1)) / s.reshape(3, 1, 1, 1)
    m = torch.from_numpy(m).to(video.device).view(3, 1, 1, 1)
    s = torch.from_numpy(s).to(video.device).view(3, 1, 1, 1)
    return (video.float() - m) / s


def normalize_batch(batch: dict[str, Any], mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD) -> dict[str, Any]:
    """``batch`` with its ``video`` column normalised (:func:`normalize_video`); other columns as they are."""
    if "video" not in batch:
        return batch
    return {**batch, "video": normalize_video(batch["video"], mean, std)}
