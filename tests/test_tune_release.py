"""Searches always finish: stopped trials release what they hold, runs that cannot start say so
(issue 21). Fast: the resource arithmetic and the refusals before anything starts. Slow: an
early-stopping search on a 2-CPU Ray, and a training run whose workers cannot be placed."""

from __future__ import annotations

import os
import textwrap
import time
from types import SimpleNamespace

import pytest
import ray.tune

from videomamba.train import resources
from videomamba.train.resources import Capacity, InsufficientResourcesError, ResourceRequest
from videomamba.tune import report


def _cfg(workers=2, cpus=1.0, gpus=None, decode=1.0, decode_res=None, per_worker=None):
    return SimpleNamespace(
        scaling=SimpleNamespace(num_workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus,
                                resources_per_worker=per_worker or {}),
        data=SimpleNamespace(decode_num_cpus=decode, decode_resources=decode_res or {}),
    )


def _capacity(total, node=None):
    return Capacity(total=dict(total), free=dict(total), node=dict(node or total), maximum=dict(total))


# -- fast -------------------------------------------------------------------------------------------
def test_request_totals_and_what_can_never_fit():
    req = resources.request_for(_cfg(workers=2, cpus=1, decode=1), gpus=0, driver={"CPU": 0.01})
    assert req.workers == {"CPU": 2.0} and req.run == {"CPU": 3.0} and req.total == {"CPU": pytest.approx(3.01)}
    assert req.describe() == "2 training workers x {CPU: 1} + decode {CPU: 1} + trial driver {CPU: 0.01} = {CPU: 3.01}"
    assert resources.unfit(req, _capacity({"CPU": 4})) == []

    # 2 x 1 CPU + 1 decode CPU on 2 CPUs: the decode task never fits next to the workers
    problems = resources.unfit(req, _capacity({"CPU": 2}))
    assert problems == ["CPU: needs 3.01, the cluster has 2"]

    # a GPU per worker on a CPU cluster; a decode-node resource nobody advertises
    gpu = resources.request_for(_cfg(workers=2, gpus=1), gpus=1)
    assert "GPU: needs 2, the cluster has 0" in resources.unfit(gpu, _capacity({"CPU": 64}))
    pinned = resources.request_for(_cfg(decode_res={"decode_node": 0.01}), gpus=0)
    assert resources.request_for(_cfg(decode=0.25), gpus=0).decode == {"CPU": 1.0}  # the 1-CPU read tasks
    assert resources.unfit(pinned, _capacity({"CPU": 64})) == ["decode_node: needs 0.01, the cluster has 0"]

    # enough in total, but one worker is larger than any node
    big = ResourceRequest(2, {"CPU": 1, "GPU": 4})
    assert resources.unfit(big, _capacity({"CPU": 16, "GPU": 8}, node={"CPU": 8, "GPU": 4})) == []
    assert resources.unfit(ResourceRequest(1, {"GPU": 8}), _capacity({"GPU": 8}, node={"GPU": 4})) == [
        "GPU: one training worker needs 8, the largest node has 4"]

    with pytest.raises(InsufficientResourcesError) as err:
        resources.check_fits(req, _capacity({"CPU": 2}), what="one trial")
    text = str(err.value)
    assert "one trial cannot fit this cluster" in text and "{CPU: 3.01}" in text and "{CPU: 2}" in text


def test_placement_group_resources_are_not_counted():
    res = {"CPU": 2.0, "memory": 1e9, "node:10.0.0.1": 1.0, "CPU_group_0_f014cedab29716b6a942b2bb5a0301000000": 0.01,
           "CPU_group_f014cedab29716b6a942b2bb5a0301000000": 0.01, "bundle_group_f014cedab29716b6a942b2bb5a0301000000": 1000,
           "decode_node": 1.0}
    assert resources.counted(res) == {"CPU": 2.0, "decode_node": 1.0}


def test_placement_bound_is_split_into_attempts(monkeypatch):
    assert resources.placement_attempts(600) == (60.0, 9)  # 10 attempts of 60 s
    assert resources.placement_attempts(5) == (5.0, 0)
    assert resources.placement_attempts(90) == (60.0, 1)
    monkeypatch.delenv(resources.START_TIMEOUT_ENV, raising=False)
    with resources.start_timeout(7.5):
        assert os.environ[resources.START_TIMEOUT_ENV] == "7.5"
    assert resources.START_TIMEOUT_ENV not in os.environ

    from ray.train import ControllerError
    from ray.train.v2._internal.exceptions import WorkerGroupStartupTimeoutError

    assert resources.is_placement_timeout(ControllerError(WorkerGroupStartupTimeoutError(2)))
    assert not resources.is_placement_timeout(RuntimeError("boom"))


def test_tune_check_refuses_trials_that_cannot_fit(tmp_path, capsys, monkeypatch):
    from videomamba.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.mp4").write_bytes(b"")  # the data preflight reads the manifest (and its classes)
    (tmp_path / "train.csv").write_text("path,label\nv.mp4,0\n")
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  optim.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-3}\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(textwrap.dedent("""\
        data: {train_manifest: train.csv, num_frames: 8, img_size: 32, decode_resources: {decode_node: 0.01}}
        scaling: {num_workers: 2, gpus_per_worker: 0}
    """))
    assert main(["tune", "--config", str(cfg), "--space", str(space), "--check"]) == 2
    err = capsys.readouterr().err
    assert "one trial of this search cannot fit this cluster" in err and "decode_node: needs 0.01, the cluster has 0" in err

    assert main(["tune", "--config", str(cfg), "--space", str(space), "--check", "--set", "data.decode_resources={}"]) == 0
    assert "valid for" in capsys.readouterr().out


# -- slow: on a 2-CPU Ray ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_two_cpus():
    """A Ray of exactly 2 logical CPUs for this module's two tests (one restart of the session's
    shared Ray, if any, afterwards; not two). The search test leaves all 2 CPUs free (it asserts
    so) and the placement test removes what it holds, so each finds the cluster whole."""
    import ray

    was = ray.is_initialized()
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=256 * 1024**2)
    yield ray
    ray.shutdown()
    if was:  # the session fixture's settings (conftest.ray_local)
        ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 object_store_memory=512 * 1024**2)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from videomamba.data import make_synthetic_dataset

    return make_synthetic_dataset(str(tmp_path_factory.mktemp("synth")), classes=4, videos_per_class=2,
                                  val_videos_per_class=1, frames=8, size=32)


def tiny_config(root, data, **scaling):
    """2 workers x 0.4 CPU + the data stage's 1 CPU (read tasks; decode 0.5) + 0.01 for the trial
    driver: one trial at a time fits 2 CPUs, with 0.19 to spare."""
    from videomamba.train.config import validate_config

    return validate_config({
        "model": {"name": "videomamba_tiny", "overrides": {"embed_dim": 32, "depth": 2}, "backend": "torch",
                  "drop_path_rate": 0.0},
        "data": {"train_manifest": data.train_manifest, "classes_file": data.classes_file, "num_frames": 8,
                 "img_size": 32, "randaugment": None, "hflip": False, "decode_num_cpus": 0.5},
        "objective": {"label_smoothing": 0.0},
        "optim": {"lr": 1.0e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0, "min_lr": 0.0},
        "train": {"epochs": 2, "batch_size": 4, "log_every": 1, "keep_checkpoints": 1},
        "scaling": {"num_workers": 2, "cpus_per_worker": 0.4, "placement_timeout_s": 30, **scaling},
        "eval": {"at_end": False},
        "mlflow": {"experiment": "release-test", "log_model": False},
        "run": {"root": str(root)},
    })


# ASHA on train/lr (deterministic: the cosine schedule's lr at an epoch's end is proportional to the
# base lr), so which trials stop after their first epoch does not depend on what the model learns.
# The 3rd point asks 2 x 1.5 + 1 CPUs of a 2-CPU cluster: that trial errors with the numbers.
SPACE = """\
search:
  metric: train/lr
  mode: max
  num_samples: 4
  max_concurrent: 1
  scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
  points_to_evaluate:
    - {optim.lr: 1.0e-3, scaling.cpus_per_worker: 0.4}   # 2 epochs (ASHA stops it at max_t)
    - {optim.lr: 1.0e-4, scaling.cpus_per_worker: 0.4}   # below the rung: stopped after epoch 1
    - {optim.lr: 1.0e-3, scaling.cpus_per_worker: 1.5}   # 4 CPUs of 2: cannot start
    - {optim.lr: 5.0e-5, scaling.cpus_per_worker: 0.4}   # stopped after epoch 1, after a stopped one
parameters:
  optim.lr: {type: loguniform, low: 1.0e-5, high: 3.0e-3}
  scaling.cpus_per_worker: {type: choice, values: [0.4, 1.5]}
"""


class FreeAfterEachTrial(ray.tune.Callback):
    """Records the cluster's free CPUs and live placement groups when each trial ends (after the
    search's own callbacks: what the next trial will find)."""

    def __init__(self):
        self.seen: list[tuple[str, float, list]] = []

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._record(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._record(trial)

    def _record(self, trial):
        import ray

        pgs = [pg["bundles"] for pg in ray.util.placement_group_table().values() if pg["state"] != "REMOVED"]
        self.seen.append((trial.trial_id, ray.available_resources().get("CPU", 0.0), pgs))


@pytest.mark.slow
def test_early_stopped_trials_release_everything_and_the_search_finishes(ray_two_cpus, synthetic, tmp_path):
    from videomamba.tune.runner import TRIAL_DRIVER_CPUS, run_search
    from videomamba.tune.space import parse_space

    ray = ray_two_cpus
    start_cpus = ray.available_resources()["CPU"]
    assert start_cpus == 2.0
    cfg = tiny_config(tmp_path / "runs", synthetic)
    space = parse_space(textwrap.dedent(SPACE), source="release.yaml", name="release")
    probe = FreeAfterEachTrial()
    t0 = time.monotonic()
    result = run_search(cfg, space, name="s", callbacks=[probe], verbose=0)
    wall = time.monotonic() - t0

    by_status: dict[str, list] = {}
    for row in result.trials:
        by_status.setdefault(row["status"], []).append(row)
    assert not result.interrupted and len(result.trials) == 4, result.trials
    assert len(by_status.get(report.STOPPED, [])) == 2, result.trials
    assert len(by_status.get(report.COMPLETED, [])) == 1, result.trials  # ended at max_t, finished by itself
    [failed] = by_status[report.ERROR]
    assert "cannot fit this cluster" in failed["error"] and "CPU: needs 4, the cluster has 2" in failed["error"]

    # after every trial (stopped, completed or failed) the cluster is back to where it started,
    # but for the ended trial's own driver reservation, which Tune returns when its actor is gone
    assert len(probe.seen) == 4
    for trial_id, free, pgs in probe.seen:
        assert free == pytest.approx(start_cpus - TRIAL_DRIVER_CPUS, abs=1e-6), (trial_id, free, pgs)
        assert all(b == {0: {"CPU": TRIAL_DRIVER_CPUS}} for b in pgs), (trial_id, pgs)  # Tune's, not Train's
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU") != start_cpus and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU") == start_cpus
    # a hang would otherwise run into pytest's timeout; ~4 trials of actor/worker start-up + 1-2 epochs
    assert wall < 480, f"search took {wall:.0f} s"


@pytest.mark.slow
def test_a_run_whose_workers_cannot_be_placed_fails_with_the_numbers(ray_two_cpus, synthetic, tmp_path):
    from ray.util.placement_group import placement_group, remove_placement_group

    from videomamba.train.launcher import run_training
    from videomamba.train.resources import PlacementTimeoutError

    ray = ray_two_cpus
    assert ray.available_resources().get("CPU") == 2.0, "the module's Ray is not whole (a test before leaked)"
    cfg = tiny_config(tmp_path / "runs", synthetic, placement_timeout_s=4)
    squatter = placement_group([{"CPU": 1.5}])  # another run holds 1.5 of the 2 CPUs: 0.8 do not fit
    ray.get(squatter.ready())
    try:
        t0 = time.monotonic()
        with pytest.raises(PlacementTimeoutError) as err:
            run_training(cfg)
        elapsed = time.monotonic() - t0
    finally:
        remove_placement_group(squatter)
    text = str(err.value)
    assert "could not place its workers within 4 s (scaling.placement_timeout_s)" in text
    assert "2 training workers x {CPU: 0.4}" in text and "{CPU: 0.5} free of {CPU: 2}" in text
    assert "1 placement group (training runs) hold {CPU: 1.5}" in text
    assert elapsed < 120

    # never fits: refused before anything starts
    with pytest.raises(InsufficientResourcesError, match="CPU: needs 4, the cluster has 2"):
        run_training(tiny_config(tmp_path / "runs2", synthetic, cpus_per_worker=1.5))
