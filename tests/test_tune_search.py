"""Searches end to end on Ray (slow) and the MLflow bookkeeping of trials Tune ends (fast)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray.tune

from videomamba.train import tracking
from videomamba.tune import report
from videomamba.tune.runner import ChildRuns, find_child
from videomamba.tune.space import parse_space
from videomamba.tune.trial import TAG_ERROR, TAG_PARENT, TAG_SEED, TAG_STATUS, TAG_TRIAL


# -- ChildRuns without Ray ------------------------------------------------------------------------
def test_child_runs_record_errors_and_early_stops(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    space = parse_space("parameters:\n  optim.lr: {type: choice, values: [0.1, 0.2]}\n")
    parent = tracking.start_run(uri, "exp", run_name="search")
    cb = ChildRuns(uri, "exp", parent.run_id, "search", space)
    err = tmp_path / "error.txt"
    err.write_text("Traceback ...\nValueError: boom\n")

    # a trial that failed before its training run existed gets a FAILED child with the error
    cb.on_trial_error(0, [], SimpleNamespace(trial_id="t1", config={"optim.lr": 0.1}, error_file=str(err)))
    run = find_child(uri, "exp", parent.run_id, "t1")
    assert run.info.status == "FAILED" and "ValueError: boom" in run.data.tags[TAG_ERROR]
    assert run.data.tags[TAG_PARENT] == parent.run_id and run.data.params["optim.lr"] == "0.1"

    # a child still RUNNING when Tune completes the trial was stopped by the scheduler
    for tid, status in (("t2", "RUNNING"), ("t3", "FINISHED")):
        child = tracking.start_run(uri, "exp", tags={TAG_PARENT: parent.run_id, TAG_TRIAL: tid})
        if status == "FINISHED":
            child.set_status("FINISHED")
        cb.on_trial_complete(0, [], SimpleNamespace(trial_id=tid, config={}, last_result={"epochs_completed": 1}))
    t2, t3 = (find_child(uri, "exp", parent.run_id, t) for t in ("t2", "t3"))
    assert t2.info.status == "KILLED" and t2.data.tags[TAG_STATUS] == report.STOPPED
    assert t3.info.status == "FINISHED" and t3.data.tags[TAG_STATUS] == report.COMPLETED


def test_concurrency_fits_the_cluster_and_trials_run_in_the_driver_workdir(monkeypatch, tmp_path):
    from videomamba.tune import runner, trial
    from videomamba.tune.runner import Plan, fit_concurrency, trial_cpus

    cfg = SimpleNamespace(scaling=SimpleNamespace(num_workers=2, cpus_per_worker=1, gpus_per_worker=None),
                          data=SimpleNamespace(decode_num_cpus=0.5))
    plan = Plan(("val/top1",), ("max",), num_samples=4, max_concurrent=4, seed=0, algorithm="tpe")
    assert trial_cpus(cfg) == pytest.approx(3.01)
    monkeypatch.setattr(runner.ray, "cluster_resources", lambda: {"CPU": 8.0})
    assert fit_concurrency(cfg, plan).max_concurrent == 2  # 2 workers + 1 data task each
    monkeypatch.setattr(runner.ray, "cluster_resources", lambda: {"CPU": 64.0, "GPU": 2.0})
    assert fit_concurrency(cfg, plan).max_concurrent == 1  # one GPU per worker by default
    monkeypatch.setattr(runner.ray, "cluster_resources", lambda: {"CPU": 2.0})
    assert fit_concurrency(cfg, plan).max_concurrent == 1  # never below one

    ctx = SimpleNamespace(workdir=str(tmp_path))
    monkeypatch.chdir(Path("/"))
    trial._restore_workdir(ctx)  # Tune starts trials in their own directory
    assert Path.cwd() == tmp_path


# -- end to end -------------------------------------------------------------------------------------
class InterruptAfterFirstTrial(ray.tune.Callback):
    """Sends the driver SIGINT (like Ctrl-C) once the first trial has completed, once per marker."""

    def __init__(self, marker: str):
        self.marker = marker

    def on_trial_complete(self, iteration, trials, trial, **info):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from videomamba.data import make_synthetic_dataset

    return make_synthetic_dataset(str(tmp_path_factory.mktemp("synth")), classes=4, videos_per_class=2,
                                  val_videos_per_class=1, frames=8, size=32)


def base_config(root: Path, data):
    from videomamba.train.config import validate_config

    return validate_config({
        "model": {"name": "videomamba_tiny", "overrides": {"embed_dim": 32, "depth": 2}, "backend": "torch",
                  "drop_path_rate": 0.0},
        "data": {"train_manifest": data.train_manifest, "val_manifest": data.val_manifest,
                 "classes_file": data.classes_file, "num_frames": 8, "img_size": 32, "randaugment": None,
                 "hflip": False, "decode_num_cpus": 0.25},
        "objective": {"label_smoothing": 0.0},
        "optim": {"lr": 1.0e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0},
        "train": {"epochs": 2, "batch_size": 4, "log_every": 1},
        "scaling": {"num_workers": 1},
        "eval": {"at_end": False},
        "mlflow": {"experiment": "tune-test", "log_model": False},
        "run": {"root": str(root)},
    })


SPACE = """\
search:
  metric: val/top1
  mode: max
  num_samples: 3
  max_concurrent: 2
  scheduler: {type: fifo}
  points_to_evaluate:                      # ok, NaN loss (raises), ok; two at a time
    - {optim.lr: 1.0e-3, debug.nan_at_epoch: null}
    - {optim.lr: 2.0e-3, debug.nan_at_epoch: 0}
    - {optim.lr: 2.0e-3, debug.nan_at_epoch: null}
parameters:
  optim.lr: {type: choice, values: [1.0e-3, 2.0e-3]}
  debug.nan_at_epoch: {type: choice, values: [null, 0]}
"""


@pytest.mark.slow
def test_search_end_to_end_with_failure_interrupt_and_resume(ray_local, synthetic, tmp_path):
    from mlflow import MlflowClient

    from videomamba.train.config import load_config
    from videomamba.tune.runner import run_search

    cfg = base_config(tmp_path / "runs", synthetic)
    space = parse_space(textwrap.dedent(SPACE), source="e2e.yaml", name="e2e")
    marker = str(tmp_path / "interrupted")

    # Ctrl-C once the first trial completed: a second one is still running (or not started yet)
    first = run_search(cfg, space, name="s", callbacks=[InterruptAfterFirstTrial(marker)], verbose=0)
    assert first.interrupted
    done_first = [r for r in first.trials if r["status"] == report.COMPLETED]
    assert [r["trial_id"] for r in done_first] == [Path(marker).read_text()]
    assert any(r["status"] == report.UNFINISHED for r in first.trials) or len(first.trials) < 3
    client = MlflowClient(first.tracking_uri)
    assert client.get_run(first.parent_run_id).info.status == "KILLED"

    result = run_search(cfg, space, name="s", resume=True, verbose=0)
    assert not result.interrupted and result.parent_run_id == first.parent_run_id
    by_status = {}
    for r in result.trials:
        by_status.setdefault(r["status"], []).append(r)
    assert len(by_status[report.COMPLETED]) == 2 and len(by_status[report.ERROR]) == 1, result.trials
    failed = by_status[report.ERROR][0]
    assert failed["params"]["debug.nan_at_epoch"] == 0 and "NonFiniteLoss" in failed["error"]

    # MLflow: a parent with one nested child per trial (the training run), params and per-epoch metrics
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.params["search.algorithm"] == "optuna.tpe"
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`{TAG_PARENT}` = '{parent.info.run_id}'")
    assert sorted(c.data.tags[TAG_TRIAL] for c in children) == sorted(r["trial_id"] for r in result.trials)
    statuses = {c.data.tags[TAG_TRIAL]: c for c in children}
    assert statuses[failed["trial_id"]].info.status == "FAILED"
    assert "NonFiniteLoss" in statuses[failed["trial_id"]].data.tags[TAG_ERROR]
    for r in by_status[report.COMPLETED]:
        child = statuses[r["trial_id"]]
        assert child.info.status == "FINISHED" and float(child.data.params["optim.lr"]) == r["params"]["optim.lr"]
        assert child.data.tags[TAG_SEED] == child.data.params["train.seed"] == "0" and r["seed"] == 0
        assert len(client.get_metric_history(child.info.run_id, "val/top1")) == 2  # one per epoch

    # the trial finished before the interruption was not re-run
    kept = statuses[done_first[0]["trial_id"]]
    assert "resumed" not in kept.data.tags
    assert kept.info.end_time == client.get_run(done_first[0]["run_id"]).info.end_time
    assert kept.info.end_time < client.get_run(result.parent_run_id).info.end_time
    progress = Path(result.path) / f"trial_{done_first[0]['trial_id']}" / "result.json"
    assert len(progress.read_text().splitlines()) == 2  # two epochs reported, once

    artifacts = {a.path for d in ("search", "plots") for a in client.list_artifacts(parent.info.run_id, d)}
    assert {"search/space.yaml", "search/base_config.yaml", "search/trials.md", "search/best_config.yaml",
            "plots/trials.png"} <= artifacts
    assert parent.data.tags["best_trial_id"] == result.best["trial_id"]
    best = load_config(result.best_config_path)  # a ready training config
    assert best.optim.lr == result.best["params"]["optim.lr"] and best.debug.nan_at_epoch is None
    assert best.run.name is None and best.mlflow.run_name is None
    assert json.loads((Path(result.path) / "trials.json").read_text())[0]["trial_id"]
