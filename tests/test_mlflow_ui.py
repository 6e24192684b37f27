"""The MLflow UI opens on what a researcher compares (issue 19 §8): experiments are marked as
model-training experiments (runs table, not the GenAI overview), summary ``best/*`` values are tags
and a table, not one-point charts, and ``curves.png`` plots only real curves."""

from __future__ import annotations

import json

import mlflow
import pytest

from test_cli_errors import tiny_train_config, write_checkpoint
from videomamba.train import tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_experiments_are_model_training_experiments(store):
    client = tracking.client(store)
    run = tracking.start_run(store, "fresh")
    assert client.get_experiment(client.get_run(run.run_id).info.experiment_id).tags[
        tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    old = client.create_experiment("made-before")  # an experiment from an older version: marked on next use
    tracking.get_or_create_experiment(store, "made-before")
    assert client.get_experiment(old).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    mine = client.create_experiment("user-kind", tags={tracking.EXPERIMENT_KIND_TAG: "genai_development"})
    tracking.get_or_create_experiment(store, "user-kind")  # a kind the user chose is kept
    assert client.get_experiment(mine).tags[tracking.EXPERIMENT_KIND_TAG] == "genai_development"


def test_best_values_are_tags_and_a_table_not_metrics(store, tmp_path):
    from videomamba.train.config import validate_config
    from videomamba.train.launcher import TrainRun, _log_best

    raw = tiny_train_config("data")
    ckpt = write_checkpoint(tmp_path / "epoch_0001", raw, epoch=1, metrics={"epoch": 1, "val/top1": 0.75})
    tracker = tracking.start_run(store, "best")
    run = TrainRun(result=None, name="r", path=str(tmp_path), tracking_uri=store, mlflow_run_id=tracker.run_id,
                   best_checkpoint=str(ckpt), best_metrics={"epoch": 1, "val/top1": 0.75})
    _log_best(tracker, validate_config(raw), run)
    data = tracking.client(store).get_run(tracker.run_id).data
    assert not [k for k in data.metrics if k.startswith("best/")]
    assert data.tags["best/val/top1"] == "0.75" and data.tags["best_checkpoint"] == str(ckpt)
    table = mlflow.artifacts.load_dict(f"{tracking.client(store).get_run(tracker.run_id).info.artifact_uri}"
                                       "/best_checkpoint/metrics.json")
    assert table == {"epoch": 1, "val/top1": 0.75}


def test_curves_png_plots_only_curves(store, tmp_path, monkeypatch):
    tracker = tracking.start_run(store, "curves")
    for step in range(3):
        tracker.log_metrics({"epoch": step, "train/loss": 1.0 / (step + 1), "data/train/skipped": 0.0,
                             "val/num_videos": 8.0, "val/top1": 0.5 + 0.1 * step}, step=step)
    tracker.log_metrics({"test/top1": 0.9}, step=3)  # one point: a summary, not a curve
    plotted = []
    real = tracking.is_curve
    monkeypatch.setattr(tracking, "is_curve", lambda k, h: real(k, h) and not plotted.append(k))
    assert tracking.plot_curves(store, tracker.run_id, tmp_path / "curves.png")
    assert sorted(plotted) == ["train/loss", "val/top1"]
    assert (tmp_path / "curves.png").stat().st_size > 0
