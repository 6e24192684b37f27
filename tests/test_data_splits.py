"""``videomamba.data.splits.Splits``: a run reads each configured manifest and its classes file once
(the checks before the run, the class names, counts, captions and datasets all come from that read)."""

from __future__ import annotations

from collections import Counter

import pytest

from videomamba import storage
from videomamba.data.config import DataConfig
from videomamba.data.splits import Splits

TINY = {"embed_dim": 32, "depth": 2, "patch_size": 8}


@pytest.fixture
def data(tmp_path):
    (tmp_path / "classes.txt").write_text("left\nright\n")
    for split, rows in (("train", 4), ("val", 2), ("test", 3)):
        lines = ["path,label,caption"]
        for i in range(rows):
            (tmp_path / f"{split}{i}.mp4").write_bytes(b"")  # the checks look for the first video only
            lines.append(f"{split}{i}.mp4,{['left', 'right'][i % 2]},{split} clip {i}")
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.fixture
def reads(monkeypatch):
    """Counts ``storage.read_bytes`` (every manifest and classes file read goes through it) by file name."""
    counts: Counter = Counter()
    real = storage.read_bytes

    def counting(path):
        counts[str(path).rsplit("/", 1)[-1]] += 1
        return real(path)

    monkeypatch.setattr(storage, "read_bytes", counting)
    return counts


def _train_config(data):
    from videomamba.train.config import validate_config

    return validate_config({
        "model": {"overrides": TINY},
        "data": {"train_manifest": str(data / "train.csv"), "val_manifest": str(data / "val.csv"),
                 "test_manifest": str(data / "test.csv"), "classes_file": str(data / "classes.txt"),
                 "num_frames": 4, "img_size": 16, "clips_per_video": 2},
        "eval": {"at_end": True},
    })


def test_a_run_reads_each_manifest_and_the_classes_file_once(data, reads, monkeypatch):
    from videomamba.train.preflight import preflight

    report = preflight(_train_config(data))  # the checks run_training makes before Ray starts
    splits = report.splits
    # what run_training and its final evaluation then ask of the data
    assert splits.class_names() == report.class_names == ["left", "right"]
    assert splits.num_train_rows() == 8 and splits.num_videos("val") == 2 and splits.num_videos("test") == 3
    assert splits.captions("val") == [["val clip 0"], ["val clip 1"]]
    assert [r.label for r in splits.records("test")] == [0, 1, 0]
    assert splits.file_class_names() == ["left", "right"] and not splits.is_prepared("train")
    built = []
    monkeypatch.setattr("videomamba.data.pipeline.build_dataset", lambda cfg, split, **kw: built.append((split, kw)))
    splits.dataset("train", seed=1, epoch=2, scope="s", epochs=3)
    splits.dataset("val", scope="s")
    assert [kw["records"] for _, kw in built] == [splits.records("train"), splits.records("val")]
    assert built[0][1]["epochs"] == 3 and built[0][1]["epoch"] == 2
    assert reads == {"train.csv": 1, "val.csv": 1, "test.csv": 1, "classes.txt": 1}
    assert report.videos == {"train": 4, "val": 2, "test": 3}


def test_an_override_manifest_and_class_names_without_a_classes_file(data, reads):
    cfg = DataConfig(train_manifest=str(data / "train.csv"), num_classes=None)
    (data / "numeric.csv").write_text("path,label\ntrain0.mp4,0\ntrain1.mp4,4\n")
    splits = Splits(cfg.model_copy(update={"train_manifest": str(data / "numeric.csv")}),
                    {"test": str(data / "test.csv")})
    assert splits.configured == ["train", "test"] and not splits.has("val") and not splits.has(None)
    assert splits.class_names() == ["0", "1", "2", "3", "4"]  # 0..max label of the train manifest
    assert splits.num_videos("train") == 2 and splits.manifest("test") == str(data / "test.csv")
    assert reads == {"numeric.csv": 1}  # the test override is not read until asked for
    with pytest.raises(ValueError, match="data.val_manifest is not set"):
        splits.records("val")


def test_num_classes_contradicting_the_classes_file(data):
    splits = Splits(DataConfig(train_manifest=str(data / "train.csv"), classes_file=str(data / "classes.txt"),
                               num_classes=3))
    with pytest.raises(ValueError, match="num_classes=3 but .*classes.txt lists 2 classes"):
        splits.class_names()
