"""Training on an embedded Ray at tiny size: a killed worker is survived (FailureConfig), an
interrupted run resumes from its checkpoint into the same MLflow run, a NaN loss stops the run
with a clear message and keeps the last good checkpoint."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
import torch

from videomamba.train.config import validate_config

pytestmark = pytest.mark.slow


def tiny_config(data: dict, root: Path, **overrides) -> dict:
    """A training config small enough for a 2-core CPU (2 workers, 2 steps an epoch)."""
    cfg = {
        "model": {"overrides": {"embed_dim": 16, "depth": 2, "patch_size": 8, "kernel_size": 2}, "drop_path_rate": 0.0},
        "data": {
            "train_manifest": data["train"], "val_manifest": data["val"], "test_manifest": data["val"],
            "classes_file": data["classes"], "num_frames": 4, "img_size": 16, "decode_short_side": 0,
            "randaugment": None, "hflip": False, "test_num_clips": 2, "test_num_crops": 1,
        },
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0.5},
        "train": {"epochs": 2, "batch_size": 4, "log_every": 1},
        "scaling": {"num_workers": 2},
        "eval": {"at_end": False},
        "mlflow": {"experiment": "tests", "log_model": False},
        "run": {"root": str(root)},
    }
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from videomamba.data import make_synthetic_dataset

    out = tmp_path_factory.mktemp("synthetic")
    ds = make_synthetic_dataset(str(out), classes=2, videos_per_class=8, val_videos_per_class=4, frames=8, size=16)
    return {"train": ds.train_manifest, "val": ds.val_manifest, "classes": ds.classes_file}


def _epochs_logged(tracking_uri: str, run_id: str) -> list[int]:
    history = mlflow.MlflowClient(tracking_uri).get_metric_history(run_id, "epoch")
    return [int(m.value) for m in sorted(history, key=lambda m: m.timestamp)]


def test_killed_worker_is_survived(ray_local, tiny_data, tmp_path):
    from videomamba.train.launcher import run_training

    from videomamba.checkpoints import load_train_state, read_meta

    cfg = validate_config(tiny_config(tiny_data, tmp_path, **{
        "debug.fail_at_epoch": 1, "scaling.max_failures": 1, "run.name": "crash", "train.ema": {"decay": 0.9}}))
    run = run_training(cfg)
    assert (Path(run.path) / ".debug_fail_fired").exists()  # a worker really died
    assert run.result.metrics["epoch"] == 1
    last = run.result.checkpoint.path
    assert read_meta(last)["weights"] == "ema"  # model.pt holds the evaluated EMA weights ...
    state = load_train_state(last)
    assert state["ema"] is not None and state["model"] is not None  # ... the raw ones resume training
    # epoch 0 was checkpointed before the crash, so only epoch 1 ran twice (and logged once)
    assert _epochs_logged(run.tracking_uri, run.mlflow_run_id) == [0, 1]
    assert mlflow.MlflowClient(run.tracking_uri).get_run(run.mlflow_run_id).info.status == "FINISHED"


@pytest.fixture(scope="module")
def resumed(ray_local, tiny_data, tmp_path_factory):
    """One run interrupted at epoch 2 (a worker dies, no retries) and resumed to its end: what
    the resume test checks, read as it happens, and the finished run whose latest checkpoint the
    planted-pickle test tampers with (so that test trains nothing of its own)."""
    import ray.train

    from videomamba.checkpoints import load_train_state
    from videomamba.train.launcher import read_run_info, run_training

    root = tmp_path_factory.mktemp("resume")
    raw = tiny_config(tiny_data, root, **{
        "train.epochs": 3, "train.grad_accum": 2, "debug.fail_at_epoch": 2, "run.name": "interrupted"})
    with pytest.raises(ray.train.TrainingFailedError):
        run_training(validate_config(raw))
    run_id = read_run_info(str(root / "ray"), "interrupted")["mlflow_run_id"]
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    interrupted = client.get_run(run_id)
    run = run_training(validate_config(raw), resume=True)
    state = load_train_state(run.result.checkpoint.path)  # counters only: the tensors map files the other test overwrites
    return SimpleNamespace(root=root, raw=raw, run=run, run_id=run_id, client=client, interrupted=interrupted,
                           resumed_tags=client.get_run(run_id).data.tags,
                           state={k: state[k] for k in ("epoch", "num_updates")})


def test_resume_continues_from_the_checkpoint(resumed):
    run, run_id, client = resumed.run, resumed.run_id, resumed.client
    assert resumed.interrupted.info.status == "FAILED"
    assert "error" in resumed.interrupted.data.tags
    assert run.mlflow_run_id == run_id and resumed.resumed_tags["resumed"] == "1"
    assert "error" not in resumed.resumed_tags  # no stale error tag from the interruption
    assert _epochs_logged(run.tracking_uri, run_id) == [0, 1, 2]  # epochs 0-1 not trained again
    state = resumed.state
    assert state["epoch"] == 2 and state["num_updates"] == 3  # 3 epochs x (2 steps / grad_accum 2)
    assert client.get_run(run_id).info.status == "FINISHED"


def test_resume_refuses_a_planted_pickle(resumed, tmp_path, capsys):
    """Someone who can write the checkpoint storage replaces the latest checkpoint's training state
    with a pickle that creates a file when unpickled: `videomamba train --resume` refuses it with a
    clear message before any worker starts, and nothing in it runs. An old-format checkpoint
    (train_state.pt) gets the upgrade message. (The checkpoint is the resumed run's last one.)"""
    import pickle

    import yaml

    from videomamba.cli import main
    from videomamba import checkpoints as ckpt

    raw, run = resumed.raw, resumed.run
    latest = Path(run.result.checkpoint.path)
    assert latest.name == "epoch_0002"
    marker = tmp_path / "pwned"

    class Plant:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (latest / ckpt.STATE_TENSORS_FILE).write_bytes(pickle.dumps({"optimizer": Plant()}))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**raw, "train": {**raw["train"], "epochs": 4}, "debug": {}}))
    assert main(["train", "--config", str(config), "--resume", "interrupted"]) == 1
    err = capsys.readouterr().err
    assert f"{latest / ckpt.STATE_TENSORS_FILE}: it is a Python pickle" in err and "refusing to resume" in err
    assert not marker.exists()

    # a format-1 checkpoint: the pickle under its old name, which is never opened
    for name in (ckpt.STATE_TENSORS_FILE, ckpt.STATE_JSON_FILE):
        (latest / name).unlink()
    (latest / ckpt.LEGACY_STATE_FILE).write_bytes(pickle.dumps({"optimizer": Plant()}))
    assert main(["train", "--config", str(config), "--resume", "interrupted"]) == 1
    assert "videomamba checkpoint upgrade" in capsys.readouterr().err
    assert not marker.exists()
    assert resumed.client.get_run(run.mlflow_run_id).info.status == "FINISHED"  # not reopened


def test_nan_loss_stops_with_last_good_checkpoint(ray_local, tiny_data, tmp_path):
    from videomamba.train.loop import NonFiniteLossError
    from videomamba.train.launcher import run_training

    cfg = validate_config(tiny_config(tiny_data, tmp_path, **{"train.epochs": 3, "debug.nan_at_epoch": 1, "run.name": "nan"}))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 1, step 0.*Last good checkpoint: .*epoch_0000"):
        run_training(cfg)
    good = tmp_path / "ray" / "nan" / "epoch_0000"
    state = torch.load(good / "model.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())
    assert not (tmp_path / "ray" / "nan" / "epoch_0001").exists()
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("tests").experiment_id])[0]
    assert run.info.status == "FAILED" and run.data.tags["stop_reason"] == "nonfinite_loss"
