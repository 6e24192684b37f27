"""A multi-node cluster simulated on this machine (``ray.cluster_utils.Cluster``: real GCS and
raylets): a head with 0 CPUs, a CPU "decode" node (``decode_node``) and two "train" nodes
(``train_node``), driving the platform's own ``run_training`` with cluster.yaml's placement
requests (``data.decode_resources`` / ``scaling.resources_per_worker``). One training run (one
cluster start-up) serves both tests:

1. placement: decode tasks ran only on decode nodes, training workers only on train nodes
   (node ids from Ray's state API);
2. fault tolerance: the train node holding the workers is removed mid-run (a lost/preempted
   node) right after the first checkpoint is committed; Ray Train restarts the worker group on
   the surviving train node from that checkpoint and the run finishes. The epoch it resumed from
   is that checkpoint's + 1, so the redone work is bounded by ``train.checkpoint_every``.
   "Committed" matters: a restart resumes from the last checkpoint Ray Train's controller has
   registered (it polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S: 2 s by default, 0.5 s
   in this suite, see conftest.py), not from the last one a worker wrote.

The cluster runs in a child interpreter (this file run as a script) with a private Ray temp dir,
so it can neither join nor disturb the session's embedded Ray or anyone else's; the test kills
whatever is left of it by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

T, S = 8, 32
CHECKPOINT_EVERY = 2
FAULT_EPOCHS = 4
TINY = {"embed_dim": 32, "depth": 2}


# ------------------------------------------------------------------------------------------------
# the test side
@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Run the simulated cluster and its training run once (one start-up) and return the record."""
    from support.local_head import kill_processes_naming

    work = tmp_path_factory.mktemp("multinode")
    ray_tmp = Path(tempfile.mkdtemp(prefix="vmsim-", dir="/tmp"))  # short: unix sockets live here
    out = work / "result.json"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_DEDUP_LOGS": "0", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    env.pop("RAY_ADDRESS", None)
    log = work / "scenario.log"
    try:
        with open(log, "w") as f:
            proc = subprocess.run([sys.executable, __file__, str(work), str(out), str(ray_tmp)],
                                  env=env, stdout=f, stderr=subprocess.STDOUT, timeout=570)
    finally:
        kill_processes_naming(str(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0 and out.exists(), f"scenario failed ({proc.returncode}):\n{text[-6000:]}"
    return json.loads(out.read_text())


def test_decode_on_decode_nodes_and_train_workers_on_train_nodes(simulated):
    nodes = simulated["nodes"]
    run = simulated["run"]
    decode_tasks = {name: set(ids) for name, ids in run["tasks"].items() if "decode_batch" in name}
    assert decode_tasks, f"no decode task seen: {sorted(run['tasks'])}"
    ran_on = set().union(*decode_tasks.values())
    assert ran_on and ran_on <= set(nodes["decode"]), f"decode tasks on {ran_on}, decode nodes {nodes['decode']}"
    workers = set(run["workers_before"]) | set(run["workers_after"])
    assert workers and workers <= set(nodes["train"]), f"train workers on {workers}, train nodes {nodes['train']}"
    # the train nodes had spare CPUs for decoding, the head none: the custom resources did the placing
    assert nodes["head"] not in ran_on | workers


def test_skip_ledger_lives_on_the_drivers_node(simulated):
    """The run's skip counts (one named actor) sit on the driver's node, the head here, which has
    no CPUs (as cluster.yaml's): with soft affinity Ray put it on a worker node, and losing that
    node failed the resumed run (a third of the runs of the test below)."""
    nodes, run = simulated["nodes"], simulated["run"]
    assert run["ledger_nodes"] == [nodes["head"]], (run["ledger_nodes"], nodes)


def test_lost_train_node_resumes_from_last_checkpoint(simulated):
    run = simulated["run"]
    nodes = simulated["nodes"]
    assert run["status"] == "finished", run
    assert run["removed_node"] in nodes["train"] and run["removed_node"] in run["workers_before"]
    # the node went down right after the first checkpoint (epoch CHECKPOINT_EVERY-1) was committed
    assert run["committed_at_kill"] == f"epoch_{CHECKPOINT_EVERY - 1:04d}", run
    before, after = run["epochs_before_kill"], run["epochs_after_kill"]  # rank 0's "epoch" metric
    assert before and after, run
    # the dying group may still log the epoch it was ending as its node went down (seen: [3, 2, 3]
    # after [0, 1, 2]): that straggler continues the old count; the restarted group starts below it
    restart = next((i for i in range(1, len(after)) if after[i] <= after[i - 1]), 0)
    stragglers, after = after[:restart], after[restart:]
    assert stragglers == list(range(before[-1] + 1, before[-1] + 1 + len(stragglers))), run
    # the restarted workers began right after the last committed checkpoint, not from scratch ...
    resumed_from = after[0]
    assert resumed_from == CHECKPOINT_EVERY, run
    assert after == list(range(resumed_from, FAULT_EPOCHS)), run
    # ... so the finished epochs redone are bounded by the checkpoint interval
    redone = [e for e in before if e >= resumed_from]
    assert len(redone) < CHECKPOINT_EVERY, run
    # the restarted worker group ran on the surviving train node only, and finished
    assert run["workers_after"] and run["removed_node"] not in run["workers_after"]
    assert run["checkpoints"][-1] == f"epoch_{FAULT_EPOCHS - 1:04d}"


# ------------------------------------------------------------------------------------------------
# the child side: python tests/test_cluster_multinode.py WORK OUT RAY_TMP
def _config(synth, work: Path, name: str, **sections) -> dict:
    from videomamba.cluster.placement import DECODE_RESOURCE, TRAIN_RESOURCE, node_marker

    cfg = {
        "model": {"name": "videomamba_tiny", "overrides": TINY, "drop_path_rate": 0.0},
        "data": {
            "train_manifest": synth.train_manifest,
            "classes_file": synth.classes_file,
            "num_frames": T,
            "img_size": S,
            "randaugment": None,
            "rows_per_block": 4,
            "decode_batch_size": 4,
            "decode_num_cpus": 1,
            "decode_resources": node_marker(DECODE_RESOURCE),
        },
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0},
        "train": {"epochs": 1, "batch_size": 4, "log_every": 1, "val_split": None},
        "scaling": {"num_workers": 2, "cpus_per_worker": 1, "gpus_per_worker": 0,
                    "resources_per_worker": node_marker(TRAIN_RESOURCE)},
        "eval": {"at_end": False},
        "mlflow": {"log_model": False, "experiment": "multinode", "tracking_uri": f"sqlite:///{work}/mlflow.db"},
        "run": {"root": str(work / "runs"), "name": name, "storage_path": str(work / "ray_results")},
        "debug": {"max_steps_per_epoch": 2},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def _epoch_history(tracking_uri: str, run_id: str) -> list[tuple[int, int]]:
    """``[(timestamp ms, epoch)]`` of rank 0's per-epoch ``epoch`` metric, in logging order."""
    from mlflow.tracking import MlflowClient

    hist = MlflowClient(tracking_uri).get_metric_history(run_id, "epoch")
    return [(m.timestamp, int(m.value)) for m in sorted(hist, key=lambda m: (m.timestamp, m.step))]


def _committed_checkpoint(run_dir: Path) -> str | None:
    """The latest checkpoint Ray Train's controller has registered (what a restart resumes from)."""
    try:
        snap = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())
    except (OSError, ValueError):
        return None
    latest = snap.get("latest_checkpoint_result") or {}
    return latest.get("checkpoint_dir_name")


def _scenario(work: Path, out: Path, ray_tmp: Path) -> None:
    import logging

    import ray
    from ray.cluster_utils import Cluster

    from support.local_head import actors, free_port, task_nodes
    from videomamba.data import make_synthetic_dataset
    from videomamba.train.config import validate_config
    from videomamba.train.launcher import run_training

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("scenario")
    t0 = time.time()
    # 48 clips: 6 steps per worker per epoch, epochs longer than the controller's poll (2 s by default)
    synth = make_synthetic_dataset(str(work / "synth"), classes=4, videos_per_class=12, frames=T, size=S, seed=0)

    (ray_tmp / "ray").mkdir(exist_ok=True)  # Ray's default temp dir under RAY_TMPDIR (ray_current_cluster)
    dash_port = free_port()
    store = 128 * 1024**2
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dash_port,
        "object_store_memory": store, "temp_dir": str(ray_tmp)})
    try:
        decode = [cluster.add_node(num_cpus=2, resources={"decode_node": 1}, object_store_memory=store)]
        train = [cluster.add_node(num_cpus=2, resources={"train_node": 1}, object_store_memory=store)
                 for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        api = f"http://127.0.0.1:{dash_port}"
        nodes = {"head": cluster.head_node.node_id, "decode": [n.node_id for n in decode],
                 "train": [n.node_id for n in train]}
        log.info("cluster up in %.0fs: %s", time.time() - t0, nodes)

        # one training run, placed by cluster.yaml's resources; a train node is lost mid-run
        name = "fault"
        cfg = validate_config(_config(
            synth, work, name,
            train={"epochs": FAULT_EPOCHS, "checkpoint_every": CHECKPOINT_EVERY, "keep_checkpoints": FAULT_EPOCHS},
            scaling={"max_failures": 1},
            debug={"max_steps_per_epoch": 6},
        ))
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(run=run_training(cfg)), daemon=True)
        thread.start()
        storage = work / "ray_results"
        tracking = f"sqlite:///{work}/mlflow.db"
        first_ckpt = f"epoch_{CHECKPOINT_EVERY - 1:04d}"
        removed, first_group, committed, kill_ms, ledgers = None, {}, None, 0, {}
        deadline = time.time() + 360
        while time.time() < deadline and thread.is_alive():
            # a checkpoint counts once Ray Train's controller has registered it (its snapshot):
            # that is what a restarted worker group gets from ray.train.get_checkpoint()
            if _committed_checkpoint(storage / name) == first_ckpt:
                first_group = actors("RayTrainWorker", address=api)
                ledgers = actors("_SkipLedger", address=api)
                victim = next(n for n in train if n.node_id in first_group.values())
                kill_ms = int(time.time() * 1000)
                cluster.remove_node(victim, allow_graceful=False)
                removed, committed = victim.node_id, _committed_checkpoint(storage / name)
                log.info("removed train node %s (workers %s); committed: %s", removed, first_group, committed)
                break
            time.sleep(0.1)
        assert removed, "the run ended (or stalled) before the node could be removed"
        thread.join(timeout=400)
        assert not thread.is_alive(), "the training run did not finish"
        run = result["run"]
        time.sleep(3)  # task/actor events reach the GCS asynchronously
        restarted = {a: n for a, n in actors("RayTrainWorker", address=api).items() if a not in first_group}
        hist = _epoch_history(tracking, run.mlflow_run_id)
        record = {"nodes": nodes, "run": {
            "status": "finished" if run.result.error is None else f"error: {run.result.error}",
            "tasks": {k: sorted(v) for k, v in task_nodes("MapBatches", address=api).items()},
            "removed_node": removed,
            "committed_at_kill": committed,
            "epochs_before_kill": [e for t, e in hist if t <= kill_ms],
            "epochs_after_kill": [e for t, e in hist if t > kill_ms],
            "ledger_nodes": sorted(set(ledgers.values())),
            "workers_before": sorted(set(first_group.values())),
            "workers_after": sorted(set(restarted.values())),
            "checkpoints": sorted(p.name for p in (storage / name).glob("epoch_*")),
        }}
        log.info("done at %.0fs: %s", time.time() - t0, record["run"])
        out.write_text(json.dumps(record, indent=2))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    _scenario(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
