"""One trial of a search: a full training run (``run_training``) inside a Ray Tune function trainable.

Ray Train V2 (the default since Ray 2.5x) no longer accepts a ``TorchTrainer`` as a Tune
trainable; the documented pattern is a small driver function per trial that builds and fits the
``TorchTrainer`` itself, with ``ray.tune.integration.ray_train.TuneReportCallback`` forwarding
the workers' ``ray.train.report`` metrics to Tune. That is :func:`run_trial`; its Ray Train
workers take the resources of the trial's ``scaling:`` section (``num_workers``,
``cpus_per_worker``, ``gpus_per_worker``), the driver itself almost none.

The training run's own MLflow run is the trial's child run: the trial passes
``mlflow.parentRunId`` (and ``tune.*`` tags) to ``run_training``, so there is exactly one MLflow
run per trial with the whole config as params and per-epoch metrics.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback

from videomamba.train.config import TrainSection, set_dotted, validate_config
from videomamba.train.launcher import read_run_info, run_training
from videomamba.train.resources import RunStopped
from videomamba.tune.release import EPOCHS_DONE, RunLink, get_registry
from videomamba.tune.space import SearchSpace

logger = logging.getLogger(__name__)

#: MLflow tags on every child run
TAG_PARENT, TAG_SEARCH, TAG_TRIAL = "mlflow.parentRunId", "tune.search", "tune.trial_id"
TAG_PARAMS, TAG_STATUS, TAG_ERROR = "tune.params", "tune.status", "tune.error"
#: the trial's ``train.seed`` (with ``data.deterministic`` the same config and seed give the same run)
TAG_SEED = "tune.seed"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a search shares (passed with ``tune.with_parameters``)."""

    base: dict  # raw training config tree (YAML + --set), without run.name / mlflow.run_name
    space: SearchSpace
    search_name: str
    train_storage: str  # Ray Train storage path of the trials' training runs
    tracking_uri: str
    experiment: str
    parent_run_id: str
    metrics: tuple[str, ...]
    workdir: str = ""  # the driver's working directory (relative config paths are relative to it)


class ReportToTune(TuneReportCallback):
    """``TuneReportCallback`` that forwards only reports carrying every search metric (epochs
    without validation and the non-finite-loss stop report are skipped: Tune's searcher needs
    the metric in every result) and adds ``epochs_completed``."""

    def __init__(self, metrics: tuple[str, ...]):
        super().__init__()
        self.metrics = tuple(metrics)

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint):
        first = metrics[0] if metrics else {}
        if not all(k in first for k in self.metrics):
            return
        first = {**first, EPOCHS_DONE: int(first.get("epoch", -1)) + 1}
        super().after_report(run_context, [first, *metrics[1:]], checkpoint)


def train_run_name(search_name: str, trial_id: str) -> str:
    return f"{search_name}_{trial_id}"


def child_run_name(trial_id: str, overrides: dict[str, Any]) -> str:
    """``<trial id> key=value, ...`` (last path component as key) for the MLflow run list."""
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    text = ", ".join(f"{path.rsplit('.', 1)[-1]}={fmt(v)}" for path, v in overrides.items())
    return f"{trial_id} {text}"[:240]


def trial_config(ctx: TrialContext, sampled: dict[str, Any], trial_id: str) -> dict:
    """The trial's raw training config: the base, the sampled values, per-trial run/MLflow names."""
    raw = ctx.space.apply(ctx.base, sampled)
    overrides = ctx.space.overrides(sampled)
    for path, value in {
        "run.name": train_run_name(ctx.search_name, trial_id),
        "run.storage_path": ctx.train_storage,
        "mlflow.run_name": child_run_name(trial_id, overrides),
        "mlflow.experiment": ctx.experiment,
        "mlflow.tracking_uri": ctx.tracking_uri,
    }.items():
        set_dotted(raw, path, value)
    return raw


def trial_seed(ctx: TrialContext, sampled: dict[str, Any]) -> int:
    """The trial's ``train.seed``: sampled, else the base config's, else the schema default.
    Every trial of a search shares the base seed unless the space samples ``train.seed``."""
    train = ctx.space.apply(ctx.base, sampled).get("train") or {}
    return int(train.get("seed", TrainSection.model_fields["seed"].default))


def child_tags(ctx: TrialContext, trial_id: str, sampled: dict[str, Any]) -> dict[str, str]:
    return {
        TAG_PARENT: ctx.parent_run_id,
        TAG_SEARCH: ctx.search_name,
        TAG_TRIAL: trial_id,
        TAG_PARAMS: json.dumps(ctx.space.overrides(sampled), sort_keys=True, default=str),
        TAG_SEED: str(trial_seed(ctx, sampled)),
    }


class TrialEpochs:
    """``trial config -> train.epochs`` of that trial (picklable, for ``release.ReleaseTrials``)."""

    def __init__(self, base: dict, space: SearchSpace):
        self.base, self.space = base, space

    def __call__(self, sampled: dict[str, Any]) -> int:
        return validate_config(self.space.apply(self.base, sampled)).train.epochs


def _restore_workdir(ctx: TrialContext) -> None:
    """Tune runs a trial in its trial directory; relative paths of the config (manifests,
    checkpoints) mean the directory the search was started from: the driver's when it exists on
    this node, else the process's original one (a job's ``working_dir`` on another node)."""
    for candidate in (ctx.workdir, os.environ.get("TUNE_ORIG_WORKING_DIR")):
        if candidate and os.path.isdir(candidate):
            os.chdir(candidate)
            return


def run_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """The Tune trainable: train with the sampled ``config`` (``{parameter name: value}``).

    A trial restarted after an interrupted search resumes its training run (same MLflow run)
    from the last epoch checkpoint. Exceptions propagate: Tune records the trial as errored
    (and ``run_training`` marks its MLflow run FAILED with the error)."""
    trial_id = ray.tune.get_context().get_trial_id()
    _restore_workdir(ctx)
    cfg = validate_config(trial_config(ctx, config, trial_id))
    resume = read_run_info(ctx.train_storage, cfg.run.name) is not None
    if resume:
        logger.info("trial %s: resuming its training run %s", trial_id, cfg.run.name)
    callbacks: list = [ReportToTune(ctx.metrics)]
    registry = get_registry(ctx.search_name)
    if registry is not None:  # lets the search end this run when Tune ends the trial (tune/release.py)
        callbacks.append(RunLink(registry, trial_id))
    try:
        run = run_training(cfg, resume=resume, callbacks=callbacks, tags=child_tags(ctx, trial_id, config))
    except RunStopped:
        logger.info("trial %s: its training run was stopped by the search", trial_id)
        return
    finally:
        if registry is not None:
            registry.mark_finished.remote(trial_id)
    final = run.result.metrics or {}
    missing = [m for m in ctx.metrics if not isinstance(final.get(m), (int, float)) or not math.isfinite(final[m])]
    if missing:
        raise RuntimeError(f"the training run reported no finite {', '.join(missing)} (last report: {sorted(final)})")
