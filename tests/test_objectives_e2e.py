"""End to end on CPU: a tiny ``distill`` run and a tiny ``masked_align`` pretraining (through
``videomamba pretrain``'s ``pretrain``, what ``pipelines/pretrain.py`` runs) on the synthetic motion data, via the training launcher (Ray Train +
Ray Data + MLflow). Checks the alignment loss reaches MLflow and the checkpoints export cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import videomamba

pytestmark = pytest.mark.slow

TINY = {"embed_dim": 32, "depth": 2}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from videomamba.data import make_synthetic_dataset

    return make_synthetic_dataset(str(tmp_path_factory.mktemp("synth")), classes=4, videos_per_class=4, frames=8, size=32)


def _config(synth, tmp_path, objective: dict, **sections) -> dict:
    cfg = {
        "model": {"name": "videomamba_tiny", "overrides": TINY, "drop_path_rate": 0.0},
        "data": {
            "train_manifest": synth.train_manifest,
            "val_manifest": synth.val_manifest,
            "classes_file": synth.classes_file,
            "num_frames": 8,
            "img_size": 32,
            "randaugment": None,
            "decode_num_cpus": 0.5,
        },
        "objective": objective,
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0},
        "train": {"epochs": 1, "batch_size": 4, "log_every": 1},
        "scaling": {"num_workers": 1},
        "eval": {"at_end": False},
        "mlflow": {"log_model": False, "experiment": "objectives-e2e"},
        "run": {"root": str(tmp_path / "runs")},
        "debug": {"max_steps_per_epoch": 4},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def _history(run, key: str) -> list[float]:
    from mlflow.tracking import MlflowClient

    return [m.value for m in MlflowClient(run.tracking_uri).get_metric_history(run.mlflow_run_id, key)]


def test_distill_run(ray_local, synth, tmp_path):
    from videomamba.train.config import validate_config
    from videomamba.train.launcher import run_training

    torch.manual_seed(0)
    teacher = videomamba.create_model("videomamba_tiny", embed_dim=16, depth=2, num_frames=8, img_size=32, num_classes=4)
    torch.save(teacher.state_dict(), tmp_path / "teacher.pt")
    objective = {
        "name": "distill",
        "teacher": {"kind": "videomamba", "checkpoint": str(tmp_path / "teacher.pt"), "model": "videomamba_tiny",
                    "overrides": {"embed_dim": 16, "depth": 2, "num_frames": 8, "img_size": 32, "num_classes": 4}},
        "distill_weight": 1.0,
        "weight_schedule": "cosine",
    }
    run = run_training(validate_config(_config(synth, tmp_path, objective)))

    align = _history(run, "train/align_loss")
    assert len(align) == 4 and all(0 <= a <= 4 for a in align)
    assert len(_history(run, "train/align_loss_epoch")) == 1
    weights = _history(run, "train/distill_weight")
    assert weights[0] == pytest.approx(1.0) and weights[-1] < weights[0]  # cosine schedule applied
    ckpt = Path(run.best_checkpoint)
    heads = torch.load(ckpt / "heads.pt", weights_only=True)
    assert set(heads) == {"proj.0.weight", "proj.1.weight", "proj.1.bias"}
    state = torch.load(ckpt / "model.pt", weights_only=True)
    student = videomamba.create_model("videomamba_tiny", **TINY, num_frames=8, img_size=32, num_classes=4)
    student.load_state_dict(state, strict=True)  # no projection head, no teacher


def test_masked_pretraining_then_finetune_init(ray_local, synth, tmp_path):
    objective = {
        "name": "masked_align",
        "teacher": {"kind": "vit", "model": "vit_base_patch16_clip_224",
                    "kwargs": {"embed_dim": 24, "depth": 2, "num_heads": 2, "img_size": 32, "num_classes": 12}},
        "mask": {"type": "clip_row", "ratio": 0.5},
    }
    cfg = _config(synth, tmp_path, objective, train={"val_split": None})
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from videomamba.commands.pretrain import pretrain
    from videomamba.train.config import load_config

    run = pretrain(load_config(str(path)), export=tmp_path / "pretrained.pt")

    align = _history(run, "train/align_loss")
    assert len(align) == 4 and all(0 <= a <= 4 for a in align)
    assert _history(run, "train/mask_ratio")[0] == pytest.approx(0.5)
    heads = torch.load(Path(run.best_checkpoint) / "heads.pt", weights_only=True)
    assert heads and all(k.startswith("decoders.") for k in heads)
    state = torch.load(run.export, weights_only=True)
    assert not any("decoder" in k or "teacher" in k for k in state)
    fine = videomamba.create_model("videomamba_tiny", **TINY, num_frames=8, img_size=32, num_classes=7)
    report = videomamba.load_checkpoint(fine, str(run.export))  # what model.pretrained does
    assert not report.missing and not report.unexpected and report.dropped == ["head.weight", "head.bias"]
