"""Checkpoints are self-contained (issue 19 §3): a checkpoint whose recorded config holds
cwd-relative paths evaluates and predicts from any directory (class names from its meta.json),
and training records absolute paths."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from test_cli_errors import synth, tiny_train_config, write_checkpoint  # noqa: F401 - fixtures
from videomamba.cli import main


@pytest.fixture
def moved_checkpoint(tmp_path, synth):  # noqa: F811
    """A checkpoint trained in ``project/`` with relative data paths, then copied elsewhere."""
    project = tmp_path / "project"
    shutil.copytree(synth, project / "data")
    ckpt = write_checkpoint(tmp_path / "elsewhere" / "epoch_0000", tiny_train_config("data"))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    return project, ckpt, elsewhere


def test_predict_from_another_directory(moved_checkpoint, monkeypatch, capsys):
    project, ckpt, cwd = moved_checkpoint
    monkeypatch.chdir(cwd)
    assert main(["predict", "--checkpoint", str(ckpt), "--top-k", "2", str(project / "data" / "val" / "00000.mp4")]) == 0
    out = capsys.readouterr().out
    assert "left" in out and "right" in out


def test_evaluate_names_the_missing_recorded_manifest(moved_checkpoint, monkeypatch, capsys):
    _, ckpt, cwd = moved_checkpoint
    monkeypatch.chdir(cwd)
    assert main(["evaluate", "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "data.test_manifest (from the checkpoint) data/test.csv: no such manifest file" in err


@pytest.mark.slow
def test_evaluate_from_another_directory(ray_local, moved_checkpoint, monkeypatch, tmp_path, capsys):
    project, ckpt, cwd = moved_checkpoint
    monkeypatch.chdir(cwd)
    out = tmp_path / "eval.json"
    # class NAMES as labels: only the checkpoint's recorded class names can map them
    manifest = project / "data" / "named.csv"
    manifest.write_text("path,label\nval/00000.mp4,left\nval/00001.mp4,left\n")  # class 0 of the checkpoint
    assert main(["evaluate", "--checkpoint", str(ckpt), "--manifest", str(manifest), "--output", str(out)]) == 0
    result = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert result["num_videos"] == 2 and result["class_names"] == ["left", "right"]
    assert result["per_class_acc"][1] is None  # absent class: null (was NaN)


def test_training_records_absolute_paths(tmp_path, monkeypatch):
    from videomamba.train.config import absolute_paths, validate_config

    monkeypatch.chdir(tmp_path)
    raw = tiny_train_config("data")
    raw["model"]["pretrained"] = "weights/vm.pth"
    cfg = absolute_paths(validate_config(raw))
    assert cfg.data.classes_file == os.path.join(str(tmp_path), "data", "classes.txt")
    assert cfg.data.train_manifest == str(tmp_path / "data" / "train.csv")
    assert cfg.model.pretrained == str(tmp_path / "weights" / "vm.pth")
    assert cfg.run.root == str(tmp_path / "runs")
    remote = validate_config({**raw, "data": {**raw["data"], "train_manifest": "s3://b/train.csv"}})
    assert absolute_paths(remote).data.train_manifest == "s3://b/train.csv"
