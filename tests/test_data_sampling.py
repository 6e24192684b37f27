"""Frame index math: segment (TSN), dense, multi-view, short videos, time windows."""

from __future__ import annotations

import random

import numpy as np
import pytest

from videomamba.data.sampling import (
    EmptyWindowError,
    clip_span,
    dense_indices,
    frame_window,
    is_short,
    retime,
    sample_indices,
    segment_indices,
)


def published_seq_frames(video_size, num_frames, clip_idx=-1, num_segment=1, randint=random.randint):
    """VideoMamba's kinetics_sparse ``_get_seq_frames`` (loop form, as published)."""
    seg_size = max(0.0, float(video_size - 1) / num_frames)
    max_frame = int(video_size) - 1
    seq = []
    if clip_idx == -1:
        for i in range(num_frames):
            start = int(np.round(seg_size * i))
            end = int(np.round(seg_size * (i + 1)))
            seq.append(min(randint(start, end), max_frame))
    else:
        duration = seg_size / (num_segment + 1)
        for i in range(num_frames):
            start = int(np.round(seg_size * i))
            seq.append(min(start + int(duration * (clip_idx + 1)), max_frame))
    return seq


def test_segment_eval_exact_values():
    # L=100, T=8: seg = 99/8 = 12.375; starts round(12.375 i); centre offset int(12.375/2) = 6
    assert segment_indices(100, 8).tolist() == [6, 18, 31, 43, 56, 68, 80, 93]
    # 4 temporal clips: offsets int(12.375/5 * k) = 2, 4, 7, 9
    views = [segment_indices(100, 8, clip=k, num_clips=4).tolist() for k in range(4)]
    assert views[0] == [2, 14, 27, 39, 52, 64, 76, 89]
    assert views[3] == [9, 21, 34, 46, 59, 71, 83, 96]


@pytest.mark.parametrize("length", [1, 2, 5, 7, 8, 9, 16, 31, 100, 301, 1000])
@pytest.mark.parametrize("num_frames", [1, 4, 8, 16, 32])
def test_segment_matches_published_eval(length, num_frames):
    for num_clips in (1, 2, 4):
        for k in range(num_clips):
            ours = segment_indices(length, num_frames, clip=k, num_clips=num_clips)
            assert ours.tolist() == published_seq_frames(length, num_frames, clip_idx=k, num_segment=num_clips)
            assert ours.dtype == np.int64 and ours.shape == (num_frames,)


@pytest.mark.parametrize("length", [3, 16, 100, 1000])
def test_segment_train_in_published_ranges_and_covers_them(length):
    num_frames, seg = 8, max(0.0, (length - 1) / 8)
    rng = np.random.default_rng(0)
    draws = np.stack([segment_indices(length, num_frames, rng=rng) for _ in range(3000)])
    for i in range(num_frames):
        lo, hi = int(np.round(seg * i)), min(int(np.round(seg * (i + 1))), length - 1)
        assert draws[:, i].min() == lo and draws[:, i].max() == hi  # randint(start, end) is inclusive


def test_segment_short_video_repeats_frames():
    # seg = 2/8: starts round(0.25 i) (round half to even, as np.round), centre offset int(0.125) = 0
    assert segment_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert segment_indices(1, 4).tolist() == [0, 0, 0, 0]
    assert is_short("segment", 3, 8) and not is_short("segment", 8, 8)


def test_dense_exact_values():
    # span = 7*4+1 = 29; L=100 -> max_start 71
    assert dense_indices(100, 8, 4).tolist() == [35 + 4 * t for t in range(8)]  # centre start 71 // 2
    starts = [dense_indices(100, 8, 4, clip=k, num_clips=3)[0] for k in range(3)]
    assert starts == [0, 35, 71]  # int(k * 71 / 2)
    assert clip_span(8, 4) == 29


def test_dense_train_start_uniform_and_short_video_padding():
    rng = np.random.default_rng(1)
    starts = {int(dense_indices(40, 8, 4, rng=rng)[0]) for _ in range(2000)}
    assert starts == set(range(0, 40 - 29 + 1))
    # 10 frames < span 29: indices clipped to the last frame (repeated)
    assert dense_indices(10, 8, 4).tolist() == [0, 4, 8, 9, 9, 9, 9, 9]
    assert is_short("dense", 10, 8, 4) and not is_short("dense", 29, 8, 4)


def test_dispatch_and_validation():
    assert sample_indices("segment", 100, 8).tolist() == segment_indices(100, 8).tolist()
    assert sample_indices("dense", 100, 8, 2).tolist() == dense_indices(100, 8, 2).tolist()
    with pytest.raises(ValueError):
        sample_indices("nope", 10, 8)
    with pytest.raises(ValueError):
        segment_indices(0, 8)
    with pytest.raises(ValueError):
        segment_indices(10, 8, clip=2, num_clips=2)


def test_frame_window():
    assert frame_window(300, 30.0, None, None) == (0, 300)
    assert frame_window(300, 30.0, 1.0, 2.5) == (30, 45)
    assert frame_window(300, 30.0, 9.9, 50.0) == (297, 3)  # clamped to the video
    assert frame_window(300, 30.0, float("nan"), float("nan")) == (0, 300)
    assert frame_window(300, 30.0, 1.01, 2.5) == (30, 45)  # frame 30 is on screen at 1.01 s


@pytest.mark.parametrize("start,end", [(20.0, None), (14.0, 24.0), (10.0, 12.0)])
def test_window_beyond_the_video_raises(start, end):
    # Kinetics rows with seconds of the original upload on a trimmed 10 s clip: no frame at all
    # (it used to become a clip of the frozen last frame)
    with pytest.raises(EmptyWindowError, match="holds no frame"):
        frame_window(300, 30.0, start, end)


def test_frame_window_uses_the_frames_own_timestamps():
    # variable frame rate: 10 frames at 5 fps (0.0 .. 1.8 s), then 60 at 30 fps (2.0 .. 3.97 s)
    ts = np.concatenate([0.2 * np.arange(10), 2.0 + np.arange(60) / 30])
    first, length = frame_window(70, 70 / 4.0, 2.0, 3.0, ts)  # avg fps 17.5 would give frames 35..52
    assert (first, length) == (10, 30)
    assert np.all((ts[first:first + length] >= 2.0) & (ts[first:first + length] < 3.0))
    # sampling inside the window is even in time: the 5 fps part gets its share of frames, not a third
    ts = np.concatenate([0.2 * np.arange(10), 2.0 + np.arange(60) / 30])
    idx = retime(segment_indices(70, 8), ts)
    assert np.all(np.diff(ts[idx]) > 0.3) and ts[idx[0]] < 0.5 and ts[idx[-1]] > 3.4


def test_retime_is_identity_for_constant_rate():
    idx = np.arange(90)
    np.testing.assert_array_equal(retime(idx, np.arange(90) / 30), idx)
    np.testing.assert_array_equal(retime(idx, np.round(np.arange(90) / 30, 3)), idx)  # ms-rounded (WebM)
    np.testing.assert_array_equal(retime(idx, None), idx)
