"""Nothing outlives its trial: a trial's Ray Train run is ended, and its resources are back, before
Tune schedules the next trial.

Why: with Ray Train V2 a trial's driver function (a Tune actor) starts a Train controller actor,
which reserves the workers' placement group and starts the datasets' split coordinators and decode
tasks. When Tune stops the trial (ASHA, the end of the search) it terminates the trial actor; the
controller dies with it (fate sharing) without its shutdown, and its placement group (scoped to the
job, not to the controller) stays reserved: Ray Train's own ``PlacementGroupCleaner`` asks the
dashboard's state API whether the controller is alive and, with no dashboard (our local Ray) or
several Ray instances on the machine, cannot, so the CPUs stay taken and the next trial waits for
its workers forever ("worker group startup timed out ... waiting for 2 workers", repeated).

What this does:
- :class:`RunRegistry` (one actor per search, owned by the search driver, 0 CPUs): each trial's
  Train controller registers itself and its worker groups' placement groups under the trial id
  through :class:`RunLink` (a Ray Train controller / worker-group callback).
- :class:`ReleaseTrials` (a Tune callback, in the driver): when a trial completes, is stopped or
  errors, and before Tune goes on, it aborts the trial's Train run through the controller's own
  abort (what Ctrl-C does: worker group shut down, datasets' executors shut down, placement
  group removed), removes any of the run's placement groups still reserved, and waits (at most
  :data:`RELEASE_TIMEOUT_S`) until the cluster's free resources are back to what they were before
  the search (less what the running trials hold). At the end of the search (also after Ctrl-C)
  every registered run is released the same way.
- The trial's training run sees the abort as :class:`RunStopped` (its MLflow run is KILLED, not
  FAILED), which ends the trial function normally.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray
import ray.tune
from ray.train.v2._internal.execution.callback import ControllerCallback, WorkerGroupCallback

# RunStopped: what a stopped trial's run raises
from videomamba.train.resources import RunStopped, counted, held_by_placement_groups  # noqa: F401

logger = logging.getLogger(__name__)

#: Tune result key counting epochs done (ASHA's time attribute; survives a trial's resume): the
#: trial's reports carry it (``trial.ReportToTune``), a stopped trial that reached all is complete
EPOCHS_DONE = "epochs_completed"
#: longest wait (seconds) for a stopped trial's resources to come back before the search goes on
#: (with a warning naming what is still held)
RELEASE_TIMEOUT_S = 60.0
#: how long the controller's own abort may take before its placement groups are removed directly
ABORT_TIMEOUT_S = 20.0
_POLL_S = 0.2


@ray.remote(num_cpus=0, max_concurrency=8)
class RunRegistry:
    """Which Train controller and placement groups belong to which trial (one per search)."""

    def __init__(self):
        self._runs: dict[str, dict[str, Any]] = {}

    def _run(self, trial_id: str) -> dict[str, Any]:
        return self._runs.setdefault(trial_id, {"controller": None, "pgs": [], "stopping": False, "finished": False})

    def mark_finished(self, trial_id: str) -> None:
        """The trial's function returned (or raised): its run ended by itself."""
        self._run(trial_id)["finished"] = True

    def finished(self, trial_id: str) -> bool:
        return bool(self._runs.get(trial_id, {}).get("finished"))

    def set_controller(self, trial_id: str, controller) -> None:
        self._run(trial_id)["controller"] = controller

    def add_placement_group(self, trial_id: str, pg) -> None:
        self._run(trial_id)["pgs"].append(pg)

    def mark_stopping(self, trial_id: str) -> tuple[Any, list]:
        """Mark the run as being stopped; returns its controller (or None) and placement groups."""
        run = self._run(trial_id)
        run["stopping"] = True
        return run["controller"], list(run["pgs"])

    def stopping(self, trial_id: str) -> bool:
        return bool(self._runs.get(trial_id, {}).get("stopping"))

    def trial_ids(self) -> list[str]:
        return list(self._runs)


def registry_name(search_name: str) -> str:
    return f"videomamba-runs/{search_name}"


def start_registry(search_name: str):
    """The search's :class:`RunRegistry` (a named actor of this job, owned by the caller)."""
    return RunRegistry.options(name=registry_name(search_name)).remote()


def stop_registry(registry, search_name: str, timeout_s: float = 10.0) -> None:
    """Kill the registry and wait until its name is free (a resumed search reuses it)."""
    ray.kill(registry)
    deadline = time.monotonic() + timeout_s
    while get_registry(search_name) is not None and time.monotonic() < deadline:
        time.sleep(_POLL_S)


def get_registry(search_name: str):
    """The running search's registry, or None (a trial started outside :func:`run_search`)."""
    try:
        return ray.get_actor(registry_name(search_name))
    except ValueError:
        return None


class RunLink(ControllerCallback, WorkerGroupCallback):
    """Ray Train callback (runs in the controller) registering the controller and its worker
    groups' placement groups with the search's :class:`RunRegistry` under ``trial_id``."""

    def __init__(self, registry, trial_id: str):
        self.registry, self.trial_id = registry, trial_id

    def after_controller_start(self, train_run_context) -> None:
        try:
            ray.get(self.registry.set_controller.remote(self.trial_id, ray.get_runtime_context().current_actor))
        except Exception:  # noqa: BLE001 - never fail training for bookkeeping
            logger.warning("trial %s: could not register its training controller", self.trial_id, exc_info=True)

    def after_worker_group_start(self, worker_group) -> None:
        try:
            pg = worker_group.get_worker_group_state().placement_group_handle.placement_group
            ray.get(self.registry.add_placement_group.remote(self.trial_id, pg))
        except Exception:  # noqa: BLE001
            logger.warning("trial %s: could not register its placement group", self.trial_id, exc_info=True)

    def stop_requested(self) -> bool:
        """Whether the search asked this run to stop (called in the trial, after ``fit`` raised)."""
        try:
            return bool(ray.get(self.registry.stopping.remote(self.trial_id), timeout=10))
        except Exception:  # noqa: BLE001 - no registry: not stopped by the search
            return False


# ------------------------------------------------------------------------------------------------
def _pg_removed(pg) -> bool:
    try:
        return ray.util.placement_group_table(pg).get("state", "REMOVED") == "REMOVED"
    except Exception:  # noqa: BLE001
        return False


def _actor_dead(handle) -> bool:
    try:
        ray.get(handle.__ray_ready__.remote(), timeout=1)
        return False
    except ray.exceptions.GetTimeoutError:
        return False
    except Exception:  # noqa: BLE001 - RayActorError and friends: it is gone
        return True


def release_run(registry, trial_id: str, timeout_s: float = ABORT_TIMEOUT_S) -> None:
    """Abort ``trial_id``'s Train run (if it still runs) and make sure its placement groups are gone."""
    controller, pgs = ray.get(registry.mark_stopping.remote(trial_id))
    deadline = time.monotonic() + timeout_s
    if controller is not None and not _actor_dead(controller):
        logger.info("trial %s ended: aborting its training run", trial_id)
        try:  # the controller shuts its worker group and datasets down, then exits
            ray.get(controller.abort.remote(), timeout=timeout_s)
        except Exception:  # noqa: BLE001 - it exits inside abort: RayActorError is the normal outcome
            pass
        while not _actor_dead(controller) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        if not _actor_dead(controller):
            logger.warning("trial %s: its training controller did not exit within %.0f s; killing it", trial_id, timeout_s)
            ray.kill(controller, no_restart=True)
    pgs = ray.get(registry.mark_stopping.remote(trial_id))[1]  # groups registered during the abort too
    while not all(_pg_removed(pg) for pg in pgs) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    for pg in pgs:
        if not _pg_removed(pg):
            logger.warning("trial %s: removing its leftover placement group %s", trial_id, pg.id.hex())
            ray.util.remove_placement_group(pg)


def missing(baseline: dict[str, float], allowance: dict[str, float]) -> dict[str, float]:
    """What is still taken compared with ``baseline`` beyond ``allowance`` (empty: all back)."""
    free = counted(ray.available_resources())
    gap = {}
    for k, v in counted(baseline).items():
        short = v - allowance.get(k, 0.0) - free.get(k, 0.0)
        if short > 1e-4:
            gap[k] = short
    return gap


class ReleaseTrials(ray.tune.Callback):
    """Tune callback: see the module docstring. ``driver`` is one trial driver's own resources
    (held by Tune until the trial actor is gone); ``per_trial`` what one trial's run holds at
    most (workers + decode), allowed for each trial still running. ``epochs(trial_config)`` is
    the number of epochs a trial trains: a trial Tune ends after its last epoch (ASHA stops
    trials at ``max_t`` too) is given up to ``timeout_s`` to finish by itself (its best
    checkpoint, MLflow model and evaluation) instead of being aborted."""

    def __init__(self, search_name: str, per_trial: dict[str, float], driver: dict[str, float],
                 epochs=None, timeout_s: float = RELEASE_TIMEOUT_S):
        self.search_name, self.per_trial, self.driver, self.timeout_s = search_name, per_trial, driver, timeout_s
        self.epochs = epochs
        self.baseline: dict[str, float] = {}
        self.waits: list[float] = []  # seconds each release took (tests, logs)

    def __getstate__(self):  # Tune pickles its callbacks with the experiment (for --resume)
        return {**self.__dict__, "baseline": {}, "waits": []}

    @property
    def registry(self):
        return get_registry(self.search_name)

    def setup(self, **info):
        self.baseline = counted(ray.available_resources())

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._release(trial, trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._release(trial, trials)

    def on_experiment_end(self, trials, **info):
        self.release_all()

    def _trained_all_epochs(self, trial) -> bool:
        done = (trial.last_result or {}).get(EPOCHS_DONE)
        try:
            return done is not None and self.epochs is not None and done >= self.epochs(trial.config)
        except Exception:  # noqa: BLE001 - unknown: treat as stopped
            return False

    def release_all(self) -> None:
        registry = self.registry
        try:
            ids = ray.get(registry.trial_ids.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - no registry, nothing registered
            return
        for trial_id in ids:
            try:
                release_run(registry, trial_id)
            except Exception:  # noqa: BLE001 - best effort at the end
                logger.exception("could not release the training run of trial %s", trial_id)

    def _release(self, trial, trials) -> None:
        start = time.monotonic()
        try:
            registry = self.registry
            if registry is not None:
                if self._trained_all_epochs(trial):
                    while (not ray.get(registry.finished.remote(trial.trial_id))
                           and time.monotonic() - start < self.timeout_s):
                        time.sleep(_POLL_S)
                release_run(registry, trial.trial_id)
        except Exception:  # noqa: BLE001 - never end the search for bookkeeping
            logger.exception("could not release the training run of trial %s", trial.trial_id)
        # other trials may hold a run's worth; Tune holds each live or staged trial's driver reservation
        running = sum(1 for t in trials if t is not trial and t.status == "RUNNING")
        staged = sum(1 for t in trials if t is not trial and t.status == "PENDING")
        allowance = {k: self.driver.get(k, 0.0) * (running + staged + 1) + self.per_trial.get(k, 0.0) * running
                     for k in set(self.driver) | set(self.per_trial)}
        if not self.baseline:
            return
        gap = missing(self.baseline, allowance)
        while gap and time.monotonic() - start < self.timeout_s:
            time.sleep(_POLL_S)
            gap = missing(self.baseline, allowance)
        self.waits.append(time.monotonic() - start)
        if gap:
            logger.warning("trial %s ended but %s of the cluster's resources are still taken after %.0f s "
                           "(RELEASE_TIMEOUT_S);%s the search goes on", trial.trial_id, gap, self.timeout_s,
                           held_by_placement_groups() or " no placement group holds them;")
        else:
            logger.debug("trial %s: resources back after %.1f s", trial.trial_id, self.waits[-1])
