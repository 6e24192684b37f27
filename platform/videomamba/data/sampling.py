"""Which frame indices a clip takes from a video of ``L`` frames (pure index math).

- ``segment`` (sparse/TSN, the VideoMamba recipe; ``_get_seq_frames`` of its ``kinetics_sparse``
  loader): split ``[0, L-1]`` into ``T`` equal segments of ``seg = (L-1)/T`` frames; training takes a
  random frame in each (``randint(round(seg*i), round(seg*(i+1)))``, inclusive), evaluation clip
  ``k`` of ``N`` takes ``round(seg*i) + int(seg/(N+1) * (k+1))`` (the segment centre when ``N=1``).
- ``dense``: ``T`` frames ``stride`` apart from a start that is random in training and, in
  evaluation, evenly spread over ``[0, L-span]`` for ``N`` clips (centred when ``N=1``).

Videos shorter than a clip repeat frames (indices clipped to ``L-1``), as the published loaders do.
"""

from __future__ import annotations

import math

import numpy as np


def segment_indices(
    length: int, num_frames: int, *, rng: np.random.Generator | None = None, clip: int = 0, num_clips: int = 1
) -> np.ndarray:
    """(T,) int64 frame indices, TSN segment sampling; ``rng`` given = training (random offsets)."""
    _check(length, num_frames, clip, num_clips)
    seg = max(0.0, (length - 1) / num_frames)
    starts = np.round(seg * np.arange(num_frames)).astype(np.int64)
    if rng is not None:
        ends = np.round(seg * np.arange(1, num_frames + 1)).astype(np.int64)
        idx = rng.integers(starts, ends + 1)
    else:
        idx = starts + int(seg / (num_clips + 1) * (clip + 1))
    return np.minimum(idx, length - 1).astype(np.int64)


def dense_indices(
    length: int,
    num_frames: int,
    stride: int,
    *,
    rng: np.random.Generator | None = None,
    clip: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """(T,) int64 frame indices ``start + stride * t``, clipped to ``L-1`` for short videos."""
    _check(length, num_frames, clip, num_clips)
    max_start = max(length - clip_span(num_frames, stride), 0)
    if rng is not None:
        start = int(rng.integers(0, max_start + 1))
    elif num_clips == 1:
        start = max_start // 2
    else:
        start = int(clip * max_start / (num_clips - 1))
    idx = start + stride * np.arange(num_frames, dtype=np.int64)
    return np.minimum(idx, length - 1)


def clip_span(num_frames: int, stride: int) -> int:
    """Frames a dense clip covers: ``(T-1)*stride + 1``."""
    return (num_frames - 1) * stride + 1


def sample_indices(
    mode: str,
    length: int,
    num_frames: int,
    stride: int = 1,
    *,
    rng: np.random.Generator | None = None,
    clip: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Dispatch on ``mode`` ("segment" | "dense")."""
    if mode == "segment":
        return segment_indices(length, num_frames, rng=rng, clip=clip, num_clips=num_clips)
    if mode == "dense":
        return dense_indices(length, num_frames, stride, rng=rng, clip=clip, num_clips=num_clips)
    raise ValueError(f"unknown sampling mode {mode!r}")


def is_short(mode: str, length: int, num_frames: int, stride: int = 1) -> bool:
    """True when the clip must repeat frames (video shorter than the clip)."""
    need = num_frames if mode == "segment" else clip_span(num_frames, stride)
    return length < need


def frame_window(length: int, fps: float, start_sec: float | None, end_sec: float | None) -> tuple[int, int]:
    """``[start_sec, end_sec)`` as (first frame, number of frames), clamped to the video, at least 1."""
    first = 0 if start_sec is None or not math.isfinite(start_sec) else int(math.floor(start_sec * fps))
    first = min(max(first, 0), length - 1)
    end = length if end_sec is None or not math.isfinite(end_sec) else int(math.ceil(end_sec * fps))
    end = min(max(end, first + 1), length)
    return first, end - first


def _check(length: int, num_frames: int, clip: int, num_clips: int) -> None:
    if length < 1 or num_frames < 1:
        raise ValueError(f"need length >= 1 and num_frames >= 1, got {length}, {num_frames}")
    if not 0 <= clip < num_clips:
        raise ValueError(f"clip {clip} not in [0, {num_clips})")
