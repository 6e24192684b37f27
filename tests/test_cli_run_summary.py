"""Runs end with a summary a person reads (issue 19 §4): retrieval recalls and median ranks in the
summary, Ctrl-C says where the run stopped and how to resume (MLflow run KILLED), ``--resume`` of a
complete run does nothing, ``evaluate --output`` writes strict JSON."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from test_cli_errors import synth, tiny_train_config, write_checkpoint  # noqa: F401 - fixture
from videomamba.cli import main


def test_retrieval_summary_prints_recalls_and_median_ranks(capsys):
    from videomamba.commands.train import print_summary
    from videomamba.train.launcher import TrainRun

    evaluation = {"test/t2v_r1": 0.25, "test/t2v_r5": 0.75, "test/t2v_r10": 1.0, "test/t2v_medr": 3.0,
                  "test/t2v_meanr": 3.4, "test/v2t_r1": 0.5, "test/v2t_r5": 0.875, "test/v2t_r10": 1.0,
                  "test/v2t_medr": 2.0, "test/r_mean": 0.7, "test/num_videos": 16.0}
    run = TrainRun(result=None, name="r", path="/runs/ray/r", tracking_uri="sqlite:///x.db", mlflow_run_id="abc",
                   best_checkpoint="/runs/ray/r/epoch_0001", best_metrics={"val/r_mean": 0.6}, evaluation=evaluation)
    print_summary(run)
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("evaluation:"))
    assert "test/t2v_r1=0.2500" in line and "test/t2v_medr=3" in line and "test/v2t_r10=1" in line
    assert "test/v2t_medr=2" in line


def _config_file(tmp_path, name: str) -> str:
    raw = tiny_train_config("data", epochs=2)
    raw["run"] = {"root": str(tmp_path / "runs"), "name": name}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_resume_of_a_complete_run_does_nothing(tmp_path, synth, monkeypatch, capsys):  # noqa: F811
    from videomamba.train.launcher import _write_run_info

    monkeypatch.chdir(synth.parent)
    config = _config_file(tmp_path, "done")
    storage = str(tmp_path / "runs" / "ray")
    raw = yaml.safe_load(open(config))
    write_checkpoint(tmp_path / "runs" / "ray" / "done" / "epoch_0001", raw, epoch=1)
    _write_run_info(storage, "done", {"mlflow_run_id": "x", "tracking_uri": "sqlite:///nowhere.db",
                                      "created": time.time(), "finished": time.time()})
    from videomamba.train import launcher

    # nothing starts: neither Ray (other tests of this process may have started it already) nor training
    monkeypatch.setattr(launcher, "init_ray", lambda *a, **k: pytest.fail("Ray started"))
    monkeypatch.setattr(launcher, "run_training", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--config", config, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "run done is complete (2 epochs); nothing to do" in out and "--force" in out
    # more epochs asked for: not complete any more (the real resume then starts; here it fails early)
    from videomamba.train.launcher import resume_state
    from videomamba.train.config import load_config

    state = resume_state(load_config(config, ["train.epochs=4"]))
    assert state.next_epoch == 2 and not state.complete


@pytest.mark.slow
def test_ctrl_c_says_where_and_how_to_resume(ray_local, tmp_path, synth, monkeypatch, capsys):  # noqa: F811
    import mlflow
    from ray.train.torch import TorchTrainer

    monkeypatch.chdir(synth.parent)
    config = _config_file(tmp_path, "stopped")
    raw = yaml.safe_load(open(config))

    def interrupted_fit(self):  # one epoch checkpointed, then Ctrl-C
        write_checkpoint(tmp_path / "runs" / "ray" / "stopped" / "epoch_0000", raw, epoch=0)
        raise KeyboardInterrupt

    monkeypatch.setattr(TorchTrainer, "fit", interrupted_fit)
    assert main(["train", "--config", config, "--set", "train.batch_size=2"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: run stopped stopped after epoch 0; its checkpoint is kept" in err
    assert f"videomamba train --config {config} --set train.batch_size=2 --resume stopped" in err
    assert "Traceback" not in err
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("tests").experiment_id])[0]
    assert run.info.status == "KILLED" and "error" not in run.data.tags
    assert run.data.tags["interrupted_at_epoch"] == "1"


def test_evaluate_output_is_strict_json():
    import numpy as np

    from videomamba.commands.evaluate import json_safe

    full = {"top1": 1.0, "mean_class_acc": float("nan"), "per_class_acc": [1.0, float("nan")],
            "confusion": np.array([[1, 0], [0, 0]]), "skips": {"data/test/skipped": np.float64(0)}}
    text = json.dumps(json_safe(full), allow_nan=False)
    assert json.loads(text)["per_class_acc"] == [1.0, None] and json.loads(text)["mean_class_acc"] is None
