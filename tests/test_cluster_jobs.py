"""Job submission against a real Ray head started with ``ray start --head`` (loopback dashboard,
private temp dir, free ports): the checkout is shipped through the Jobs API, logs stream back,
the final status maps to the exit code, and the demo-size training job is tracked in MLflow.

The head is stopped by process group and pid (``LocalHead.stop``), never with ``ray stop``, which
would stop every Ray instance on the machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def head():
    from support.local_head import LocalHead

    # job entrypoints say `python`: this interpreter's directory first on the head's PATH
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "RAY_DEDUP_LOGS": "0"}
    with LocalHead(num_cpus=4, env=env, start_timeout_s=180) as h:
        yield h


def test_submit_ships_the_checkout_streams_logs_and_succeeds(head):
    from videomamba.cluster.submit import submit

    chunks: list[str] = []
    script = (
        "import os, ray, videomamba\n"
        "print('driver', videomamba.__file__, os.environ['VM_FLAG'])\n"
        "ray.init()\n"
        "f = ray.remote(lambda: __import__('videomamba').__file__)\n"
        "print('task', ray.get(f.remote()))\n"
    )
    outcome = submit(["python", "-c", script], address=head.dashboard_url, working_dir=ROOT,
                     env=["VM_FLAG=from-submit"], log_sink=chunks.append, timeout_s=240)
    logs = "".join(chunks)
    assert outcome.ok, logs
    assert outcome.runtime_env["env_vars"]["PYTHONPATH"].split(os.pathsep)[0] == "platform"
    lines = {line.split(" ", 1)[0]: line for line in logs.splitlines() if line.startswith(("driver ", "task "))}
    # both the driver and a remote task import the shipped copy, not the editable install
    for who in ("driver", "task"):
        path = lines[who].split()[1]
        assert "runtime_resources" in path and path.endswith("platform/videomamba/__init__.py"), lines
        assert not path.startswith(str(ROOT)), path
    assert lines["driver"].endswith("from-submit")


def test_failed_job_exits_non_zero(head, capsys):
    from videomamba.cli import main

    code = main(["submit", "--address", head.dashboard_url, "--working-dir", str(ROOT), "--timeout", "240", "--",
                 "python", "-c", "import sys; print('about to fail'); sys.exit(3)"])
    out = capsys.readouterr().out
    assert code == 1
    assert "about to fail" in out and "FAILED" in out


def test_demo_training_job_succeeds_and_is_tracked_in_mlflow(head, tmp_path):
    from mlflow.tracking import MlflowClient

    from videomamba.cluster.submit import submit
    from videomamba.data import make_synthetic_dataset

    synth = make_synthetic_dataset(str(tmp_path / "data"), classes=4, videos_per_class=4, val_videos_per_class=1,
                                   frames=16, size=64, seed=0)
    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    storage = tmp_path / "checkpoints"
    chunks: list[str] = []
    outcome = submit(
        ["train", "--config", "configs/demo.yaml",
         "--set", f"data.train_manifest={synth.train_manifest}",
         "--set", f"data.val_manifest={synth.val_manifest}",
         "--set", f"data.test_manifest={synth.val_manifest}",
         "--set", f"data.classes_file={synth.classes_file}",
         "--set", "train.epochs=2", "--set", "schedule.warmup_epochs=1", "--set", "train.batch_size=4",
         "--set", "run.name=demo-job", "--set", f"run.storage_path={storage}"],
        address=head.dashboard_url, working_dir=ROOT, env={"MLFLOW_TRACKING_URI": tracking_uri},
        log_sink=chunks.append, timeout_s=480,
    )
    logs = "".join(chunks)
    assert outcome.ok, logs[-6000:]
    assert outcome.entrypoint.startswith("python -m videomamba.cli train --config configs/demo.yaml")

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("demo")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["ray_run_name"] == "demo-job"
    assert run.data.params["train.epochs"] == "2"
    assert [int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch")] == [0, 1]
    assert "val/top1" in run.data.metrics and "train/loss_epoch" in run.data.metrics
    assert (storage / "demo-job" / "epoch_0001").is_dir()
