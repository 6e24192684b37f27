"""End to end on CPU: ``videomamba train`` on a folder of images (the shipped image demo config,
tiny), bad images skipped and counted in MLflow, the model registered; then its checkpoint
directory as ``model.pretrained`` of a video run."""

from __future__ import annotations

from pathlib import Path

import pytest

import videomamba

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _metric(run, key: str) -> float:
    from mlflow.tracking import MlflowClient

    return MlflowClient(run.tracking_uri).get_run(run.mlflow_run_id).data.metrics[key]


def test_image_training_then_video_finetune(ray_local, tmp_path):
    from mlflow.tracking import MlflowClient

    from videomamba.data import make_synthetic_dataset
    from videomamba.data.synth_images import make_synthetic_images
    from videomamba.train.config import load_config
    from videomamba.train.launcher import run_training

    images = make_synthetic_images(tmp_path / "images", classes=2, images_per_class=8, val_per_class=2, size=32)
    good = Path(images.train_dir) / "horizontal" / "00000.jpg"
    (good.parent / "truncated.jpg").write_bytes(good.read_bytes()[:300])
    (good.parent / "notes.png").write_text("not an image")
    cfg = load_config(ROOT / "configs" / "images_demo_teacher.yaml", [
        f"data.train_manifest={images.train_dir}", f"data.val_manifest={images.val_dir}", "data.test_manifest=null",
        "model.overrides={embed_dim: 32, depth: 2, patch_size: 8}", "train.epochs=1", "train.batch_size=4",
        f"run.root={tmp_path / 'runs'}", "mlflow.log_model=true", "mlflow.register_model=images-e2e",
        "data.max_skip_fraction=0.5",  # 2 of 18 training files are planted bad ones
    ])
    run = run_training(cfg)

    skips = run.skips["train"]  # the run's ledger as the run read it (released at the run's end), as for videos
    # both bad files dropped and counted as skipped under their reasons (a truncated image used to be
    # counted as kept, "padded", like a truncated video); the count reaches MLflow
    expected = {"truncated.jpg": "truncated", "notes.png": "unreadable"}
    assert skips["skipped"] == 2 and skips["padded"] == 0
    assert all(expected[Path(path).name] == reason for path, reason in skips["examples"])
    assert _metric(run, "data/train/skipped") == skips["skipped"]
    assert 0 <= _metric(run, "val/top1") <= 1
    client = MlflowClient(run.tracking_uri)
    assert client.search_model_versions("name='images-e2e'")[0].run_id == run.mlflow_run_id
    from videomamba.checkpoints import read_meta

    meta = read_meta(run.best_checkpoint)
    assert meta["class_names"] == ["deg45", "horizontal"] and meta["model"]["kwargs"]["num_frames"] == 1

    # the image checkpoint directory initialises a video model (2-D patch embedding, temporal pos embed)
    video_kwargs = {"embed_dim": 32, "depth": 2, "patch_size": 8}
    probe = videomamba.create_model("videomamba_tiny", **video_kwargs, img_size=32, num_frames=4, num_classes=2)
    report = videomamba.load_checkpoint(probe, run.best_checkpoint)
    assert report.missing == [] and report.unexpected == [] and report.dropped == []
    synth = make_synthetic_dataset(str(tmp_path / "videos"), classes=2, videos_per_class=2, frames=4, size=32)
    video_cfg = load_config(None, base={
        "model": {"name": "videomamba_tiny", "overrides": video_kwargs, "pretrained": run.best_checkpoint},
        "data": {"train_manifest": synth.train_manifest, "val_manifest": synth.val_manifest,
                 "classes_file": synth.classes_file, "num_frames": 4, "img_size": 32, "randaugment": None,
                 "decode_num_cpus": 0.5},
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0},
        "train": {"epochs": 1, "batch_size": 2},
        "scaling": {"num_workers": 1},
        "eval": {"at_end": False},
        "mlflow": {"log_model": False, "experiment": "images-e2e-video"},
        "run": {"root": str(tmp_path / "runs")},
    })
    video_run = run_training(video_cfg)
    assert video_run.best_checkpoint and _metric(video_run, "val/num_videos") > 0
    assert client.get_run(video_run.mlflow_run_id).data.params["model.pretrained"] == run.best_checkpoint
