"""The synthetic dataset: real mp4 files, label only in the temporal order of frames."""

from __future__ import annotations

import numpy as np
import pytest

from videomamba.data.decode import decode_clips
from videomamba.data.manifest import load_classes, read_manifest
from videomamba.data.synth import (
    class_names,
    make_synthetic_dataset,
    order_for_label,
    render_canonical,
    render_video,
    windows,
)


def frame_multiset(frames: np.ndarray) -> list[bytes]:
    return sorted(f.tobytes() for f in frames)


@pytest.mark.parametrize("num_classes", [2, 4, 6, 8])
def test_every_label_has_exactly_the_same_frames(num_classes):
    """Same random parameters, any label: the same multiset of frames, in a different order, so
    a model that ignores temporal order cannot tell the classes apart (chance accuracy)."""
    for seed in range(3):
        videos = [render_video(c, 16, 64, num_classes, np.random.default_rng(seed)) for c in range(num_classes)]
        reference = frame_multiset(videos[0])
        for c in range(1, num_classes):
            assert frame_multiset(videos[c]) == reference
            assert not np.array_equal(videos[c], videos[0])


def test_label_bits_reverse_windows():
    assert windows(16, 4) == [(0, 8), (8, 16)]
    assert order_for_label(0, 16, 4).tolist() == list(range(16))
    assert order_for_label(1, 16, 4).tolist() == [7, 6, 5, 4, 3, 2, 1, 0, *range(8, 16)]
    assert order_for_label(3, 16, 4).tolist() == [*range(7, -1, -1), *range(15, 7, -1)]
    assert class_names(4) == ["right-down", "left-down", "right-up", "left-up"]
    with pytest.raises(ValueError):
        windows(3, 4)


def moving_centroid(frames: np.ndarray, start: int, end: int, axis: int) -> np.ndarray:
    """Centroid (along ``axis``: 1 = x, 0 = y) of what differs from the clip's median frame."""
    background = np.median(frames.astype(np.float32), axis=0)
    out = []
    for t in range(start, end):
        diff = np.abs(frames[t].astype(np.float32) - background).sum(-1) > 60
        ys, xs = np.nonzero(diff)
        out.append((xs if axis == 1 else ys).mean())
    return np.asarray(out)


def oracle(frames: np.ndarray, num_classes: int) -> int:
    """Read the label back from the direction of motion in each window (uses the frame order)."""
    label = 0
    for w, (start, end) in enumerate(windows(len(frames), num_classes)):
        c = moving_centroid(frames, start, end, axis=1 if w % 2 == 0 else 0)
        label |= int(np.polyfit(np.arange(len(c)), c, 1)[0] < 0) << w
    return label


def test_written_dataset_is_real_video_and_temporally_labelled(tmp_path):
    ds = make_synthetic_dataset(str(tmp_path), classes=4, videos_per_class=3, val_videos_per_class=1, seed=7)
    train = read_manifest(ds.train_manifest, classes_file=ds.classes_file)
    val = read_manifest(ds.val_manifest, classes_file=ds.classes_file)
    assert load_classes(ds.classes_file) == class_names(4)
    assert len(train) == 12 and len(val) == 4
    assert sorted(r.label for r in train) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert {r.path for r in train}.isdisjoint(r.path for r in val)
    with open(train[0].path, "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"  # an mp4 container
    for rec in train + val:
        frames, info = decode_clips(rec.path, lambda i: np.arange(i.num_frames))
        assert (info.num_frames, info.width, info.height, info.fps) == (16, 64, 64, 8.0)
        assert oracle(frames, 4) == rec.label  # recoverable after H.264 from the order of frames
        for flip in range(1, 4):  # time-reversing windows turns the video into the paired class
            assert oracle(frames[order_for_label(flip, 16, 4)], 4) == rec.label ^ flip


def test_canonical_is_label_free_and_deterministic():
    a = render_canonical(16, 64, 4, np.random.default_rng(3))
    b = render_canonical(16, 64, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (16, 64, 64, 3) and a.dtype == np.uint8
