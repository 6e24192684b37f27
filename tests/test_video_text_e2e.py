"""End to end on CPU: a tiny video-text ``contrastive`` run with 2 Ray Train workers (negatives
gathered across them) on captioned synthetic videos, a tiny local BERT text tower, validation by
zero-shot retrieval, evaluation of the held-out test split logged to MLflow, and
``videomamba retrieve`` on the best checkpoint."""

from __future__ import annotations

import json
import os

import pytest

from test_video_text import _save_tiny_bert

pytestmark = pytest.mark.slow

RETRIEVAL_KEYS = [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("r1", "r5", "r10", "medr")]


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    from videomamba.data import make_synthetic_dataset

    return make_synthetic_dataset(str(tmp_path_factory.mktemp("captioned")), classes=2, videos_per_class=4,
                                  val_videos_per_class=2, test_videos_per_class=2, frames=8, size=32,
                                  captions_per_video=2)


def test_contrastive_run_validates_evaluates_and_retrieves(ray_local, captioned, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    from videomamba.cli import main
    from videomamba.train.config import validate_config
    from videomamba.train.launcher import run_training

    bert = _save_tiny_bert(tmp_path / "bert")
    # paths relative to the working directory (as in configs/), which Ray Train workers do not share
    rel = {name: os.path.relpath(getattr(captioned, name)) for name in ("train_manifest", "val_manifest", "test_manifest", "classes_file")}
    cfg = validate_config({
        "model": {"name": "videomamba_tiny", "overrides": {"embed_dim": 32, "depth": 2}, "drop_path_rate": 0.0},
        "data": {**rel,
                 "num_frames": 8, "img_size": 32, "randaugment": None, "hflip": False, "decode_num_cpus": 0.5,
                 "captions": True, "test_num_clips": 1, "test_num_crops": 1},
        "objective": {"name": "contrastive", "text": {"model": str(bert)}, "embed_dim": 16, "matching_head": True},
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0},
        "train": {"epochs": 1, "batch_size": 2, "log_every": 1},
        "scaling": {"num_workers": 2},
        "eval": {"at_end": True, "split": "test"},
        "mlflow": {"log_model": False, "experiment": "video-text-e2e"},
        "run": {"root": str(tmp_path / "runs")},
    })
    run = run_training(cfg)

    client = MlflowClient(run.tracking_uri)
    metrics = client.get_run(run.mlflow_run_id).data.metrics
    for key in RETRIEVAL_KEYS + ["r_mean", "num_videos"]:
        assert f"val/{key}" in metrics and f"test/{key}" in metrics, key
    assert metrics["val/num_videos"] == 4 and metrics["test/num_captions"] == 8
    for key in ("train/nce_loss_epoch", "train/itm_loss_epoch", "train/temperature"):
        assert key in metrics
    assert len(client.get_metric_history(run.mlflow_run_id, "train/nce_loss")) == 2  # 2 updates
    artifacts = {a.path for a in client.list_artifacts(run.mlflow_run_id, "eval")}
    assert "eval/test_metrics.json" in artifacts
    assert run.best_checkpoint and run.evaluation["test/t2v_r10"] == 1.0  # 4 test videos: all in the top 10

    out = tmp_path / "hits.json"
    assert main(["retrieve", "--checkpoint", run.best_checkpoint, "--manifest", rel["test_manifest"],
                 "--query", "a red circle moves left", "--query", "a blue square moves up",
                 "--top-k", "3", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "query: a red circle moves left" in printed and "test/" in printed
    hits = json.loads(out.read_text())
    assert [len(h["hits"]) for h in hits] == [3, 3]
    scores = [hit["score"] for hit in hits[0]["hits"]]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
