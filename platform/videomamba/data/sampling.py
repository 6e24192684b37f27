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


class EmptyWindowError(ValueError):
    """A ``start_sec,end_sec`` window that holds no frame of the video (e.g. seconds of the
    original upload copied onto an already trimmed clip)."""


def frame_window(
    length: int,
    fps: float,
    start_sec: float | None,
    end_sec: float | None,
    timestamps: np.ndarray | None = None,
) -> tuple[int, int]:
    """``[start_sec, end_sec)`` as (first frame, number of frames).

    With ``timestamps`` (``(length,)`` seconds from the first frame, increasing: the frames' own
    presentation times) the window runs from the frame on screen at ``start_sec`` to the last frame
    that starts before ``end_sec``, so variable frame rate videos get the right seconds; without
    them frame ``i`` is at ``i / fps``. A window that
    ends past the video is cut at its end; one that starts at or after the end of the video (or
    holds no frame) raises ``EmptyWindowError``. NaN/None bounds mean the video's start/end.
    """
    has_start = start_sec is not None and math.isfinite(start_sec)
    has_end = end_sec is not None and math.isfinite(end_sec)
    if timestamps is None:
        timestamps = np.arange(length, dtype=np.float64) / fps
    ts = np.asarray(timestamps, dtype=np.float64)[:length]
    step = (ts[-1] - ts[0]) / (length - 1) if length > 1 else 1 / fps
    duration = float(ts[-1] + step)
    eps = 1e-6
    # first: the frame on screen at start_sec; end: frames that start before end_sec
    first = max(0, int(np.searchsorted(ts, start_sec + eps, side="right")) - 1) if has_start else 0
    end = int(np.searchsorted(ts, end_sec - eps, side="left")) if has_end else length
    if (has_start and start_sec >= duration - eps) or end <= first:
        raise EmptyWindowError(
            f"window {start_sec if has_start else 0:g}-{end_sec if has_end else duration:g} s holds no frame "
            f"of the video ({length} frames, {duration:.2f} s)"
        )
    return first, end - first


def retime(indices: np.ndarray, timestamps: np.ndarray | None) -> np.ndarray:
    """Map indices sampled on an even grid of ``L = len(timestamps)`` points to the frames nearest
    to the grid's times, so a variable frame rate window is sampled evenly in time (the identity
    for a constant rate, also with millisecond-rounded timestamps, or ``timestamps=None``).
    ``timestamps``: the window's frames, increasing."""
    if timestamps is None or len(timestamps) < 2:
        return indices
    ts = np.asarray(timestamps, dtype=np.float64)
    grid = ts[0] + (ts[-1] - ts[0]) * np.asarray(indices, dtype=np.float64) / (len(ts) - 1)
    right = np.clip(np.searchsorted(ts, grid, side="left"), 1, len(ts) - 1)
    nearer_left = grid - ts[right - 1] <= ts[right] - grid
    return np.where(nearer_left, right - 1, right).astype(np.int64)


def _check(length: int, num_frames: int, clip: int, num_clips: int) -> None:
    if length < 1 or num_frames < 1:
        raise ValueError(f"need length >= 1 and num_frames >= 1, got {length}, {num_frames}")
    if not 0 <= clip < num_clips:
        raise ValueError(f"clip {clip} not in [0, {num_clips})")
