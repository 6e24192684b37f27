"""Repeated sampling (``data.clips_per_video``) and one decoder per clip (issue 14, items 2-3).
Tiny videos written here; nothing starts Ray."""

from __future__ import annotations

import numpy as np
import pytest

from videomamba.data import decode, pipeline
from videomamba.data.config import DataConfig
from videomamba.data.manifest import read_manifest, to_columns
from videomamba.data.synth import render_video, write_mp4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpv")
    rng = np.random.default_rng(0)
    for i in range(3):
        write_mp4(str(root / f"v{i}.mp4"), render_video(i % 2, 32, 64, 4, rng))
    (root / "m.csv").write_text("path,label\n" + "".join(f"v{i}.mp4,{i % 2}\n" for i in range(3)))
    return root


def _decode(root, k, epoch=0, **kw):
    cfg = DataConfig(train_manifest=str(root / "m.csv"), num_frames=4, img_size=32, randaugment=None,
                     decode_short_side=48, clips_per_video=k, **kw)
    columns = to_columns(read_manifest(str(root / "m.csv")))
    return pipeline.decode_batch(pipeline.take_rows(columns, np.arange(3), epoch), cfg=cfg, split="train",
                                 seed=7, scope="t")


def test_clips_per_video_one_decode_k_independent_clips(data, monkeypatch):
    calls = []
    real = decode.decode_clips
    monkeypatch.setattr(pipeline, "decode_clips", lambda path, pick, **kw: calls.append(path) or real(path, pick, **kw))
    one = _decode(data, 1)
    two = _decode(data, 2)
    assert len(calls) == 6  # one decode per video, whatever k
    assert two["video"].shape == (6, 3, 4, 32, 32)
    assert two["index"].tolist() == [0, 0, 1, 1, 2, 2] and two["view"].tolist() == [0, 1] * 3
    assert two["label"].tolist() == [0, 0, 1, 1, 0, 0]
    # clip 0 is exactly the clip of clips_per_video=1 (same seeds); clip 1 differs (own offsets, crop)
    np.testing.assert_array_equal(two["video"][0::2], one["video"])
    assert all(not np.array_equal(two["video"][2 * i], two["video"][2 * i + 1]) for i in range(3))
    # reproducible from (seed, epoch, row, clip); a new epoch draws new clips
    np.testing.assert_array_equal(_decode(data, 2)["video"], two["video"])
    assert not np.array_equal(_decode(data, 2, epoch=1)["video"], two["video"])


def test_clips_per_video_is_train_only_and_counted_in_rows():
    cfg = DataConfig(clips_per_video=3, val_num_clips=2, val_num_crops=3)
    assert pipeline.clips_per_row(cfg, "train") == 3 and pipeline.clips_per_row(cfg, "val") == 6
    assert cfg.views("train") == (1, 1)
    with pytest.raises(ValueError):
        DataConfig(clips_per_video=0)


def test_epoch_rows_count_every_clip(data):
    from videomamba.data.splits import Splits

    cfg = DataConfig(train_manifest=str(data / "m.csv"), clips_per_video=2)
    assert Splits(cfg).num_train_rows() == 6
    assert Splits(cfg.model_copy(update={"clips_per_video": 1})).num_train_rows() == 3


def test_contrastive_refuses_several_clips_per_video():
    from videomamba.train.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match="data.clips_per_video"):
        validate_config({"objective": {"name": "contrastive"}, "data": {"captions": True, "clips_per_video": 2}})


def test_hot_path_opens_the_file_once_with_decord_only(data, monkeypatch):
    import av
    import decord

    opened = []
    real_reader = decord.VideoReader
    monkeypatch.setattr(decord, "VideoReader", lambda *a, **kw: opened.append(a[0]) or real_reader(*a, **kw))

    def no_pyav(*a, **kw):
        raise AssertionError("PyAV opened the file in the decode hot path")

    monkeypatch.setattr(av, "open", no_pyav)
    frames, info = decode.decode_clips(str(data / "v0.mp4"), lambda i: np.array([[0, 9, 19, 31]]), short_side=48)
    assert frames.shape == (1, 4, 48, 48, 3) and (info.width, info.height) == (64, 64) and len(opened) == 1
    _decode(data, 2)
    assert len(opened) == 4
