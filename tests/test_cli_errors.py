"""The CLI's one error layer (issue 19 §1): ordinary mistakes end in one line naming the file,
field or option (exit 2 for usage/config, 1 at run time), ``--debug`` shows the traceback;
checkpoint arguments accept a ``model.pt`` and a run directory. No Ray is started here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from videomamba.cli import main

TINY = {"embed_dim": 16, "depth": 2, "patch_size": 8, "kernel_size": 2}


def tiny_train_config(data_dir: str, **train) -> dict:
    """A tiny supervised config whose data paths are RELATIVE (as a user writes them)."""
    return {
        "model": {"overrides": dict(TINY), "drop_path_rate": 0.0},
        "data": {"train_manifest": f"{data_dir}/train.csv", "val_manifest": f"{data_dir}/val.csv",
                 "test_manifest": f"{data_dir}/test.csv", "classes_file": f"{data_dir}/classes.txt",
                 "num_frames": 4, "img_size": 16, "randaugment": None, "hflip": False,
                 "test_num_clips": 1, "test_num_crops": 1},
        "train": {"epochs": 2, "batch_size": 2, **train},
        "eval": {"at_end": False, "num_actors": 1, "batch_size": 2},
        "scaling": {"num_workers": 1},
        "mlflow": {"experiment": "tests", "log_model": False},
    }


def write_checkpoint(directory: Path, raw_config: dict, *, epoch: int = 0, metrics: dict | None = None,
                     class_names=("left", "right"), objective=None) -> Path:
    """A real (tiny, untrained) training checkpoint directory, as the training loop writes it."""
    import videomamba
    from videomamba.checkpoints import save_checkpoint
    from videomamba.train.config import validate_config

    cfg = validate_config(raw_config)
    kwargs = {**TINY, "num_classes": len(class_names), "num_frames": 4, "img_size": 16, "drop_path_rate": 0.0}
    torch.manual_seed(epoch)
    model = videomamba.create_model("videomamba_tiny", **kwargs)
    meta = {"format": 1, "model": {"name": "videomamba_tiny", "kwargs": kwargs}, "class_names": list(class_names),
            "weights": "model", "epoch": epoch, "num_updates": epoch + 1, "metrics": metrics or {"epoch": epoch},
            "mlflow": {"tracking_uri": None, "run_id": None}, "config": cfg.model_dump(mode="json")}
    return save_checkpoint(directory, model_state=model.state_dict(), meta=meta)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from videomamba.data import make_synthetic_dataset

    out = tmp_path_factory.mktemp("synth") / "data"
    make_synthetic_dataset(str(out), classes=2, videos_per_class=1, val_videos_per_class=1, test_videos_per_class=1,
                           frames=8, size=16)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, synth) -> Path:
    """``runs/ray/<run>`` with three checkpoints; the best by val/top1 is epoch_0001 (not the latest)."""
    run = tmp_path_factory.mktemp("runs") / "ray" / "demo-20261130"
    raw = tiny_train_config("data")
    for epoch, top1 in ((0, 0.5), (1, 0.9), (2, 0.7)):
        write_checkpoint(run / f"epoch_{epoch:04d}", raw, epoch=epoch, metrics={"epoch": epoch, "val/top1": top1})
    return run


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------------------------
def test_data_synth_classes_out_of_range_names_the_option(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "d"), "--classes", "20"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "--classes 20" in line and "2 to 16" in line
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("command", [
    ["data", "check"], ["data", "bench"], ["evaluate", "--checkpoint", "{ckpt}", "--manifest"],
    ["retrieve", "--checkpoint", "{ckpt}", "--query", "a red circle", "--manifest"],
])
def test_missing_or_malformed_manifest_is_one_line(command, run_dir, tmp_path, capsys):
    ckpt = str(run_dir / "epoch_0000")
    command = [c.replace("{ckpt}", ckpt) for c in command]
    missing = tmp_path / "nope.csv"
    assert main([*command, str(missing)]) == 2
    assert f"{missing}: no such manifest file" in _one_line_error(capsys.readouterr().err)

    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nv.mp4,1,extra,fields\n")
    assert main([*command, str(bad)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"{bad}:2:" in line and "fields" in line


def test_predict_on_cuda_without_a_gpu(run_dir, synth, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert main(["predict", "--checkpoint", str(run_dir / "epoch_0000"), "--device", "cuda",
                 str(synth / "val" / "00000.mp4")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "--device cuda" in line and "--device cpu" in line


def test_checkpoint_accepts_model_pt_and_run_directory(run_dir, synth, capsys):
    video = str(synth / "val" / "00000.mp4")
    assert main(["predict", "--checkpoint", str(run_dir / "epoch_0002" / "model.pt"), "--top-k", "1", video]) == 0
    out = capsys.readouterr()
    assert "00000.mp4 (1 views)" in out.out and "using its checkpoint directory" in out.err

    assert main(["predict", "--checkpoint", str(run_dir), "--top-k", "1", video]) == 0
    out = capsys.readouterr()
    assert "run directory" in out.err and "epoch_0001" in out.err and "val/top1 (0.9)" in out.err

    assert main(["predict", "--checkpoint", str(run_dir.parent), "--top-k", "1", video]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "a directory of runs" in line and run_dir.name in line


def test_run_directory_without_metric_takes_the_latest(tmp_path):
    from videomamba.checkpoints import resolve_checkpoint

    raw = tiny_train_config("data")
    for epoch in (0, 1):
        write_checkpoint(tmp_path / "run" / f"epoch_{epoch:04d}", raw, epoch=epoch)
    resolved = resolve_checkpoint(tmp_path / "run")
    assert resolved.path.endswith("epoch_0001") and "latest" in resolved.note
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="not a checkpoint directory"):
        resolve_checkpoint(tmp_path / "empty")


def test_pretrained_may_be_a_checkpoint_or_run_directory(run_dir):
    from videomamba.train.loop import build_model

    spec = {"name": "videomamba_tiny", "kwargs": {**TINY, "num_classes": 2, "num_frames": 4, "img_size": 16}}
    expected = torch.load(run_dir / "epoch_0001" / "model.pt", weights_only=True)
    for source in (run_dir / "epoch_0001", run_dir):  # the run directory: its best checkpoint
        model = build_model(spec, str(source))
        assert torch.equal(model.state_dict()["head.weight"], expected["head.weight"])


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    args = ["data", "synth", str(tmp_path / "d"), "--classes", "20"]
    from videomamba.errors import UsageError

    with pytest.raises(UsageError):
        main([*args, "--debug"])
    monkeypatch.setenv("VIDEOMAMBA_DEBUG", "1")
    with pytest.raises(UsageError):
        main(args)


def test_runtime_failure_exits_1_with_one_line(run_dir, tmp_path, capsys, monkeypatch):
    from videomamba.inference import predict

    def broken(*args, **kwargs):
        raise RuntimeError("decoder crashed\nsecond line of detail")

    monkeypatch.setattr(predict, "predict_videos", broken)
    assert main(["predict", "--checkpoint", str(run_dir / "epoch_0000"), "x.mp4"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert line.startswith("error: RuntimeError: decoder crashed") and "--debug" in line


def test_pretrain_refuses_another_objective_before_training(tmp_path, capsys, monkeypatch):
    import yaml

    from videomamba.train import launcher

    monkeypatch.setattr(launcher, "run_training", lambda *a, **k: pytest.fail("pretrain started a run"))
    path = tmp_path / "supervised.yaml"
    path.write_text(yaml.safe_dump(tiny_train_config(str(tmp_path / "data"))))
    assert main(["pretrain", "--config", str(path)]) == 2
    assert "objective.name: pretrain runs masked_align, got 'supervised'" in capsys.readouterr().err
