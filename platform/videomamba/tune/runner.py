"""``run_search``: a Ray Tune ``Tuner`` over full training runs, searched with Optuna, in MLflow.

- Trials: :func:`videomamba.tune.trial.run_trial` (a function trainable that runs
  ``run_training``; each trial may be a multi-worker Ray Train run sized by its ``scaling:``).
- Search: Ray's ``OptunaSearch`` with the space's define-by-run function (conditionals), TPE by
  default (multivariate, seeded; multi-objective when several metrics are given), or random /
  grid. ``max_concurrent`` trials at a time.
- Early stopping: ASHA (``ray.tune.schedulers.ASHAScheduler``) on the first metric, with
  ``epochs_completed`` as its clock (one rung step per epoch). Optuna's own pruners are not
  used: ``OptunaSearch`` only ``tell``s Optuna a trial's final value, so they never see the
  per-epoch values. ASHA is off with ``scheduler: {type: fifo}`` (used for ablations where every
  configuration must train for the same budget).
- MLflow: one parent run per search (space YAML, base config, algorithm and settings as params,
  trials table, parallel-coordinates PNG, best trial / Pareto front, best config YAML) and one
  nested child run per trial, which IS the trial's training run (``run_training`` creates it with
  ``mlflow.parentRunId``). Ray's ``MLflowLoggerCallback`` / ``setup_mlflow`` are not used: they
  create their own run per trial, which would duplicate the training run's. :class:`ChildRuns`
  (a Tune callback) settles the children Tune ends from outside: errored (error tag, FAILED;
  created if training never started), stopped early by ASHA (KILLED, ``tune.status``).
- Resume: ``resume=True`` restores the experiment with ``Tuner.restore``; finished and errored
  trials are kept, unfinished ones continue (their training run resumes from its last epoch
  checkpoint, in the same MLflow run), and the searcher (Optuna study) continues where it was.
- Seeds: a trial trains with its config's ``train.seed`` (the base's, unless the space samples
  ``train.seed``), recorded as the child run's ``tune.seed`` tag (and ``train.seed`` param) and in
  the trials table; with ``data.deterministic`` (default) two trials of the same sampled config and
  seed give the same run (on CPU to the last digit), so differences between trials are the
  parameters' (sample ``train.seed`` too to see the seed-to-seed spread).
- Output: ``<storage>/<name>/best_config.yaml``, a ready training config (checked with
  ``load_config``), plus ``trials.md`` / ``trials.json`` / ``trials.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray.tune

from videomamba import storage
from videomamba.cluster.connect import init_ray
from videomamba.env import git_commit
from videomamba.tune import release, report
from videomamba.tune.release import EPOCHS_DONE
from videomamba.tune.space import LogUniformParam, SearchSpace
from videomamba.tune.trial import (
    TAG_ERROR,
    TAG_PARAMS,
    TAG_PARENT,
    TAG_SEARCH,
    TAG_STATUS,
    TAG_TRIAL,
    TrialContext,
    TrialEpochs,
    child_run_name,
    run_trial,
    trial_seed,
)

logger = logging.getLogger(__name__)

SEARCH_INFO = "videomamba_search.json"
BEST_CONFIG = "best_config.yaml"
#: what a trial's driver function reserves (Tune needs a non-empty request); its Ray Train
#: workers reserve what the trial config's ``scaling:`` asks for, and ``max_concurrent`` bounds
#: how many trials run at once
TRIAL_DRIVER_CPUS = 0.01


class SearchError(RuntimeError):
    """A search that cannot start (bad metric, nothing to resume, existing name...)."""


@dataclass
class SearchResult:
    """What :func:`run_search` returns."""

    name: str
    path: str  # the Tune experiment directory
    tracking_uri: str
    parent_run_id: str
    metrics: list[str]
    modes: list[str]
    trials: list[dict[str, Any]]  # see report.py (trial_id, status, params, metrics, epochs, error, run_id)
    best: dict[str, Any] | None = None
    pareto: list[dict[str, Any]] = field(default_factory=list)
    best_config_path: str | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class Plan:
    """The resolved search settings: the space's ``search:`` section overridden by arguments."""

    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    num_samples: int
    max_concurrent: int
    seed: int
    algorithm: str

    @property
    def single(self) -> bool:
        return len(self.metrics) == 1


def make_plan(space: SearchSpace, *, metrics=None, modes=None, num_samples=None, max_concurrent=None, seed=None) -> Plan:
    s = space.settings
    metrics = [metrics] if isinstance(metrics, str) else list(metrics or s.metrics)
    modes = [modes] if isinstance(modes, str) else list(modes or ())
    if not modes:
        modes = s.modes if list(metrics) == s.metrics else [s.modes[0]] * len(metrics)
    if len(modes) == 1 and len(metrics) > 1:
        modes = modes * len(metrics)
    if len(modes) != len(metrics) or any(m not in ("max", "min") for m in modes):
        raise SearchError(f"need one mode (max/min) per metric: metrics {metrics}, modes {modes}")
    return Plan(tuple(metrics), tuple(modes), int(num_samples or space.default_num_samples()),
                int(max_concurrent or s.max_concurrent), int(s.seed if seed is None else seed), s.algorithm)


def base_tree(cfg: Any) -> dict:
    """The raw config tree trials start from: only the fields the user set (YAML + ``--set``),
    without the per-run names a search assigns."""
    from videomamba.train.config import TrainConfig

    tree = cfg.model_dump(mode="json", exclude_unset=True) if isinstance(cfg, TrainConfig) else json.loads(json.dumps(cfg))
    tree.get("run", {}).pop("name", None)
    tree.get("mlflow", {}).pop("run_name", None)
    return tree


def check_metrics(cfg: Any, plan: Plan) -> None:
    """Fail early on metrics a training run cannot report."""
    from videomamba.data.splits import Splits

    for metric in plan.metrics:
        if "/" not in metric:
            raise SearchError(f"metric {metric!r}: expected a training metric like val/top1 or train/clips_per_s_epoch")
        if metric.startswith("val/") and not Splits(cfg.data).has(cfg.train.val_split):
            raise SearchError(f"metric {metric!r} needs a validation split (data.{cfg.train.val_split}_manifest)")


# ------------------------------------------------------------------------------------------------
class ChildRuns(ray.tune.Callback):
    """Settles the MLflow child run of trials that Tune ends from outside the training run."""

    def __init__(self, tracking_uri: str, experiment: str, parent_run_id: str, search_name: str, space: SearchSpace):
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.parent_run_id, self.search_name, self.space = parent_run_id, search_name, space

    def on_trial_error(self, iteration, trials, trial, **info):
        error = _trial_error(trial)
        try:
            self._settle(trial, "ERROR", error)
        except Exception:  # noqa: BLE001 - bookkeeping must never end the search
            logger.exception("could not record the error of trial %s in MLflow", trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        try:
            self._settle(trial, None, None)
        except Exception:  # noqa: BLE001
            logger.exception("could not settle the MLflow run of trial %s", trial.trial_id)

    def _settle(self, trial, status: str | None, error: str | None) -> None:
        from videomamba.train import tracking

        run = find_child(self.tracking_uri, self.experiment, self.parent_run_id, trial.trial_id)
        if run is None and status == "ERROR":
            tracker = tracking.start_run(
                self.tracking_uri, self.experiment, run_name=child_run_name(trial.trial_id, self.space.overrides(trial.config)),
                tags={TAG_PARENT: self.parent_run_id, TAG_SEARCH: self.search_name, TAG_TRIAL: trial.trial_id,
                      TAG_PARAMS: json.dumps(self.space.overrides(trial.config), sort_keys=True, default=str)},
            )
            tracker.log_params(self.space.overrides(trial.config))
            run_id = tracker.run_id
        elif run is None:
            return
        else:
            run_id = run.info.run_id
        tracker = tracking.RunTracker(self.tracking_uri, run_id)
        if status == "ERROR":
            tracker.set_tags({TAG_STATUS: "ERROR", TAG_ERROR: (error or "unknown error")[-5000:]})
            if run is None or run.info.status == "RUNNING":
                tracker.set_status("FAILED")
        elif run.info.status in ("RUNNING", "KILLED"):  # ended by the scheduler while training
            epochs = (trial.last_result or {}).get(EPOCHS_DONE)
            tracker.set_tags({TAG_STATUS: report.STOPPED, "tune.epochs_completed": epochs})
            tracker.set_status("KILLED")
        else:
            tracker.set_tags({TAG_STATUS: report.COMPLETED})


def _trial_error(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        return Path(path).read_text()
    return str(getattr(trial, "error_msg", "") or "trial failed")


def error_summary(err: BaseException, limit: int = 300) -> str:
    """``Type: first lines`` of a trial's error, unwrapping Ray's task-error wrapper."""
    cause = getattr(err, "cause", None) or err
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {' / '.join(lines[:3])}"[:limit]


def find_child(tracking_uri: str, experiment: str, parent_run_id: str, trial_id: str):
    """The MLflow child run of ``trial_id`` in the search ``parent_run_id`` (None if none yet)."""
    from videomamba.train import tracking

    client = tracking.client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_TRIAL}` = '{trial_id}'",
        max_results=5,
    )
    return runs[0] if runs else None


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


# ------------------------------------------------------------------------------------------------
def _storage(cfg, storage_path: str | None) -> str:
    return storage.normalize(storage_path or str(Path(cfg.run.root) / "tune"))


def _read_info(exp_path: str) -> dict | None:
    return storage.read_json_or_none(storage.join(exp_path, SEARCH_INFO))


def _write_file(exp_path: str, name: str, data: bytes) -> str:
    return storage.write_bytes(storage.join(exp_path, name), data)


def latest_search(storage_root: str, space_name: str) -> str | None:
    """The most recent search of ``space_name`` under ``storage_root`` (by its creation time)."""
    return storage.latest_child(storage_root, SEARCH_INFO, lambda name, info: info.get("space") == space_name)


# ------------------------------------------------------------------------------------------------
def trial_cpus(cfg) -> float:
    """CPUs one trial keeps busy: its Ray Train workers plus one data (read/decode) task."""
    return cfg.scaling.num_workers * cfg.scaling.cpus_per_worker + max(1.0, cfg.data.decode_num_cpus) + TRIAL_DRIVER_CPUS


def trial_request(cfg, driver: dict[str, float] | None = None):
    """One trial's :class:`~videomamba.train.resources.ResourceRequest` on the connected cluster."""
    from videomamba.train import resources

    gpus = resources.resolve_gpus(cfg, ray.cluster_resources())
    return resources.request_for(cfg, gpus, driver or {"CPU": TRIAL_DRIVER_CPUS})


def check_resources(cfg, plan: Plan, driver: dict[str, float] | None = None, capacity=None) -> None:
    """Refuse a search whose trials can never fit the cluster (``InsufficientResourcesError``, with
    the numbers); ``capacity`` defaults to the connected cluster's."""
    from videomamba.train import resources

    capacity = capacity or resources.cluster_capacity()
    gpus = resources.resolve_gpus(cfg, capacity.maximum)
    request = resources.request_for(cfg, gpus, driver or {"CPU": TRIAL_DRIVER_CPUS})
    resources.check_fits(request, capacity, what="one trial of this search")


def local_capacity(cfg, plan: Plan):
    """The capacity of the local Ray that ``init_ray(search_cpus(...))`` would start (``--check``
    without a cluster)."""
    from videomamba.train.resources import Capacity

    res = {"CPU": float(max(os.cpu_count() or 1, math.ceil(search_cpus(cfg, plan))))}
    try:
        import torch

        if torch.cuda.is_available():
            res["GPU"] = float(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no torch CUDA: no GPUs
        pass
    return Capacity(total=res, free=dict(res), node=dict(res), maximum=dict(res))


def search_cpus(cfg, plan: Plan) -> float:
    """The logical CPUs a local Ray needs for ``max_concurrent`` trials (a small machine is
    oversubscribed: the trials share its cores)."""
    return plan.max_concurrent * trial_cpus(cfg)


def fit_concurrency(cfg, plan: Plan) -> Plan:
    """Lower ``max_concurrent`` to what the cluster's CPUs/GPUs hold now. Ray Train V2 places a
    trial's workers outside Tune's reservation, so too many concurrent trials would each hold some
    workers or data tasks and wait forever for the rest."""
    total = ray.cluster_resources()
    fits = int((total.get("CPU", 0) + 1e-9) // trial_cpus(cfg))
    per_worker = cfg.scaling.gpus_per_worker
    if per_worker is None:  # the training config's default: one GPU per worker when there are GPUs
        per_worker = 1.0 if total.get("GPU", 0) >= 1 else 0.0
    gpus = cfg.scaling.num_workers * per_worker
    if gpus:
        fits = min(fits, int((total.get("GPU", 0) + 1e-9) // gpus))
    if fits < plan.max_concurrent:
        logger.warning("max_concurrent %d -> %d: one trial needs %.2f CPUs%s and the cluster has %s",
                       plan.max_concurrent, max(fits, 1), trial_cpus(cfg), f" and {gpus:g} GPUs" if gpus else "",
                       {k: total.get(k, 0) for k in ("CPU", "GPU")})
        return dataclasses.replace(plan, max_concurrent=max(fits, 1))
    return plan


def run_search(
    base_cfg: Any,
    space: SearchSpace,
    *,
    num_samples: int | None = None,
    max_concurrent: int | None = None,
    metrics: str | list[str] | None = None,
    modes: str | list[str] | None = None,
    seed: int | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    name: str | None = None,
    storage_path: str | None = None,
    trial_resources: dict[str, float] | None = None,
    best_config_out: str | None = None,
    callbacks: list | None = None,
    verbose: int = 1,
) -> SearchResult:
    """Run (or with ``resume`` continue) a search of ``space`` around ``base_cfg`` (a
    ``TrainConfig``); arguments left None come from the space's ``search:`` section. The space is
    validated against the base config before Ray starts. ``trial_resources`` are the trial driver
    function's own (default ``{"CPU": TRIAL_DRIVER_CPUS}``); ``callbacks`` are extra Tune callbacks.
    With ``resume``, ``retry_failed`` also re-runs errored trials (their training runs resume from
    their last checkpoint, in the same MLflow run); finished trials are never re-run."""
    from videomamba.train import tracking
    from videomamba.train.config import validate_config

    cfg = validate_config(base_tree(base_cfg))
    plan = make_plan(space, metrics=metrics, modes=modes, num_samples=num_samples, max_concurrent=max_concurrent, seed=seed)
    base = base_tree(cfg)
    space.check_base(base)
    check_metrics(cfg, plan)
    root = _storage(cfg, storage_path)
    # the base config's data and tracking store, before Ray Tune starts or any MLflow run exists
    from videomamba.train.launcher import preflight_tracking
    from videomamba.train.preflight import check_data

    check_data(cfg)
    if not resume:
        preflight_tracking(cfg)

    from ray.train.v2._internal.constants import is_v2_enabled

    if not is_v2_enabled():
        raise SearchError("videomamba tune needs Ray Train V2 (unset RAY_TRAIN_V2_ENABLED=0)")

    if resume:
        name = name or latest_search(root, space.name)
        exp_path = storage.join(root, name) if name else None
        info = _read_info(exp_path) if exp_path else None
        if info is None or not ray.tune.Tuner.can_restore(exp_path):
            raise SearchError(f"--resume: no search {name or space.name + '-*'!r} to resume under {root}")
        tracking_uri, parent_id = info["tracking_uri"], info["parent_run_id"]
        stored = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in info["plan"].items()})
        if stored != plan and any(a is not None for a in (num_samples, max_concurrent, metrics, modes, seed)):
            logger.warning("--resume continues the search as it was started (%s); other settings are ignored", stored)
        plan = stored
        init_ray(search_cpus(cfg, plan))
        check_resources(cfg, plan, trial_resources)
        if info.get("fingerprint") not in (None, _fingerprint(space, base)):
            logger.warning("--resume: the space or the base config differ from the ones the search started with; "
                           "trials still to run use the new ones, the searcher keeps its original space")
        parent = tracking.RunTracker(tracking_uri, parent_id)
        parent.set_status("RUNNING")
        resumed = int(parent.client.get_run(parent_id).data.tags.get("resumed", 0)) + 1
        parent.set_tags({"resumed": resumed})
        logger.info("resuming search %s (MLflow parent run %s)", exp_path, parent_id)
    else:
        init_ray(search_cpus(cfg, plan))
        check_resources(cfg, plan, trial_resources)
        plan = fit_concurrency(cfg, plan)
        name = name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        exp_path = storage.join(root, name)
        if _read_info(exp_path) is not None:
            raise SearchError(f"search {name!r} exists under {root}; pass --resume to continue it or another --name")
        tracking_uri = tracking.resolve_tracking_uri(cfg.mlflow.tracking_uri, cfg.run.root)
        parent = _start_parent(tracking_uri, cfg, space, plan, name, exp_path)
        parent_id = parent.run_id
        _write_file(exp_path, SEARCH_INFO, json.dumps({
            "parent_run_id": parent_id, "tracking_uri": tracking_uri, "experiment": cfg.mlflow.experiment,
            "space": space.name, "space_file": space.source, "created": time.time(), "plan": dataclasses.asdict(plan),
            "fingerprint": _fingerprint(space, base),
        }, indent=2).encode())

    ctx = TrialContext(base=base, space=space, search_name=name, train_storage=storage.join(exp_path, "train"),
                       tracking_uri=tracking_uri, experiment=cfg.mlflow.experiment, parent_run_id=parent_id,
                       metrics=plan.metrics, workdir=os.getcwd())
    driver = trial_resources or {"CPU": TRIAL_DRIVER_CPUS}
    registry = release.start_registry(name)  # trials' Train runs register here; ReleaseTrials ends them
    request = trial_request(cfg, driver)
    releaser = release.ReleaseTrials(name, per_trial=request.run, driver=driver, epochs=TrialEpochs(base, space))
    try:
        trainable = ray.tune.with_resources(ray.tune.with_parameters(run_trial, ctx=ctx), driver)
        if resume:
            tuner = ray.tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True,
                                           resume_errored=retry_failed, restart_errored=False)
        else:
            tuner = _new_tuner(trainable, cfg, space, plan, ctx, root, name, callbacks or [], verbose, releaser)
        grid = tuner.fit()
    except BaseException as err:
        parent.set_tags({"error": f"{type(err).__name__}: {err}"[:5000]})
        parent.set_status("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        releaser.release_all()  # runs of trials Tune ended without a callback (Ctrl-C, driver errors)
        release.stop_registry(registry, name)
    return _finish(grid, cfg, space, plan, ctx, parent, exp_path, best_config_out)


def _fingerprint(space: SearchSpace, base: dict) -> str:
    import hashlib

    return hashlib.sha256((space.text + json.dumps(base, sort_keys=True)).encode()).hexdigest()[:16]


def _start_parent(tracking_uri: str, cfg, space: SearchSpace, plan: Plan, name: str, exp_path: str):
    from videomamba.train import tracking
    from videomamba.train.config import to_yaml

    parent = tracking.start_run(tracking_uri, cfg.mlflow.experiment, run_name=name, tags={
        "videomamba.kind": "search", TAG_SEARCH: name, "tune.path": exp_path, "git_commit": git_commit(),
        "ray_version": ray.__version__, "mlflow.source.name": "videomamba tune",
    })
    scheduler = space.settings.scheduler
    parent.log_params({
        "search.algorithm": f"optuna.{plan.algorithm}" + ("" if plan.single else " (multi-objective)"),
        "search.metrics": ",".join(plan.metrics), "search.modes": ",".join(plan.modes),
        "search.num_samples": plan.num_samples, "search.max_concurrent": plan.max_concurrent, "search.seed": plan.seed,
        "search.scheduler": scheduler.model_dump_json(), "search.space_file": space.source,
        **{f"space.{k}": v for k, v in space.describe().items()},
    })
    parent.log_text(space.text, "search/space.yaml")
    parent.log_text(to_yaml(cfg), "search/base_config.yaml")
    return parent


def _new_tuner(trainable, cfg, space: SearchSpace, plan: Plan, ctx: TrialContext, root: str, name: str,
               callbacks: list, verbose: int, releaser=None):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(
        space=space.define_by_run(ctx.base),
        metric=plan.metrics[0] if plan.single else list(plan.metrics),
        mode=plan.modes[0] if plan.single else list(plan.modes),
        sampler=space.sampler(plan.seed),
        points_to_evaluate=[dict(p) for p in space.settings.points_to_evaluate] or None,
    )
    sched = space.settings.scheduler
    if sched.type == "asha":
        scheduler = ASHAScheduler(time_attr=EPOCHS_DONE, metric=plan.metrics[0], mode=plan.modes[0],
                                  max_t=sched.max_t or cfg.train.epochs, grace_period=sched.grace_period,
                                  reduction_factor=sched.reduction_factor, stop_last_trials=False)
    else:
        scheduler = FIFOScheduler()
    return ray.tune.Tuner(
        trainable,
        tune_config=ray.tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=plan.num_samples,
                                        max_concurrent_trials=plan.max_concurrent, trial_dirname_creator=_trial_dirname),
        run_config=ray.tune.RunConfig(
            name=name, storage_path=root, verbose=verbose,
            failure_config=ray.tune.FailureConfig(max_failures=0),
            # the releaser first: the child runs are settled once a stopped trial's run has ended
            callbacks=[*([releaser] if releaser else []),
                       ChildRuns(ctx.tracking_uri, ctx.experiment, ctx.parent_run_id, name, space), *callbacks],
        ),
    )


# ------------------------------------------------------------------------------------------------
def collect_trials(grid, space: SearchSpace, plan: Plan, ctx: TrialContext) -> list[dict[str, Any]]:
    """One row per trial of a ``ResultGrid`` (see report.py). The status comes from the trial's
    MLflow child run: FINISHED -> COMPLETED, KILLED by the scheduler -> STOPPED_EARLY, an error
    -> ERROR, anything else (never started, interrupted) -> UNFINISHED."""
    names = {p.name for p in space.params}
    rows = []
    for result in grid:
        trial_id = Path(result.path).name.removeprefix("trial_") if result.path else "?"
        metrics = result.metrics or {}
        sampled = {k: v for k, v in _trial_config(result).items() if k in names}
        child = find_child(ctx.tracking_uri, ctx.experiment, ctx.parent_run_id, trial_id)
        error = None
        if result.error is not None:
            status, error = report.ERROR, error_summary(result.error)
        elif child is not None and child.info.status == "FINISHED":
            status = report.COMPLETED
        elif child is not None and child.data.tags.get(TAG_STATUS) == report.STOPPED:
            status = report.STOPPED
        else:
            status = report.UNFINISHED
        rows.append({
            "trial_id": trial_id, "status": status, "params": sampled, "overrides": space.overrides(sampled),
            "seed": trial_seed(ctx, sampled),
            "metrics": {m: metrics.get(m) for m in plan.metrics}, "epochs": metrics.get(EPOCHS_DONE), "error": error,
            "run_id": child.info.run_id if child else None,
        })
    return sorted(rows, key=lambda r: r["trial_id"])


def _trial_config(result) -> dict[str, Any]:
    """A trial's sampled config: ``Result.config`` comes from its last reported result, so a trial
    that failed before reporting has none; its ``params.json`` has it."""
    if result.config:
        return result.config
    try:
        with result.filesystem.open_input_stream(storage.join(result.path, "params.json")) as f:
            return json.loads(f.read().decode())
    except (OSError, ValueError, AttributeError):
        return {}


def _finish(grid, cfg, space: SearchSpace, plan: Plan, ctx: TrialContext, parent, exp_path: str,
            best_config_out: str | None) -> SearchResult:
    from videomamba.train.config import load_config, to_yaml, validate_config

    rows = collect_trials(grid, space, plan, ctx)
    ended = sum(r["status"] != report.UNFINISHED for r in rows)
    interrupted = ended < plan.num_samples
    best = report.best_row(rows, plan.metrics, plan.modes)
    pareto = report.pareto_front(rows, plan.metrics, plan.modes)
    result = SearchResult(name=ctx.search_name, path=exp_path, tracking_uri=ctx.tracking_uri, parent_run_id=parent.run_id,
                          metrics=list(plan.metrics), modes=list(plan.modes), trials=rows, best=best, pareto=pareto,
                          interrupted=interrupted)

    params = [p.name for p in space.params]
    table = report.markdown_table(rows, params, plan.metrics)
    _write_file(exp_path, "trials.md", table.encode())
    _write_file(exp_path, "trials.json", json.dumps(rows, indent=2, default=str).encode())
    parent.log_text(table, "search/trials.md")
    parent.log_dict({"trials": rows, "pareto": [r["trial_id"] for r in pareto]}, "search/trials.json")
    with tempfile.TemporaryDirectory() as tmp:
        png = report.plot_trials(rows, params, plan.metrics, Path(tmp) / "trials.png",
                                 log_params=[p.name for p in space.params if isinstance(p.dist, LogUniformParam)],
                                 title=f"{ctx.search_name}: {len(rows)} trials")
        if png:
            parent.log_artifact(png, "plots")
            _write_file(exp_path, "trials.png", Path(png).read_bytes())
    parent.log_metrics({"trials/total": len(rows), "trials/ended": ended,
                        "trials/failed": sum(r["status"] == report.ERROR for r in rows),
                        "trials/stopped_early": sum(r["status"] == report.STOPPED for r in rows)})

    if best is not None:
        tree = space.apply(ctx.base, best["params"])
        best_cfg = validate_config(tree)
        scores = ", ".join(f"{m}={best['metrics'][m]:.4g}" for m in plan.metrics)
        text = f"# best trial {best['trial_id']} of search {ctx.search_name} ({scores})\n"
        text += to_yaml(validate_config(base_tree(best_cfg)))
        result.best_config_path = _write_file(exp_path, BEST_CONFIG, text.encode())
        if best_config_out:
            Path(best_config_out).parent.mkdir(parents=True, exist_ok=True)
            Path(best_config_out).write_text(text)
            result.best_config_path = best_config_out
        if "://" not in result.best_config_path:
            load_config(result.best_config_path)  # ready to run: it loads like any training config
        parent.log_text(text, f"search/{BEST_CONFIG}")
        parent.log_metrics({f"best/{m}": best["metrics"][m] for m in plan.metrics})
        parent.set_tags({"best_trial_id": best["trial_id"], "best_run_id": best["run_id"] or "",
                         "best_params": json.dumps(best["overrides"], sort_keys=True, default=str),
                         "pareto_trials": ",".join(r["trial_id"] for r in pareto)})
    parent.set_tags({"interrupted": int(interrupted)})
    if interrupted:
        parent.set_status("KILLED")
        logger.warning("search %s was interrupted (%d of %d trials ended); continue it with --resume",
                       ctx.search_name, ended, plan.num_samples)
    elif rows and all(r["status"] == report.ERROR for r in rows):
        parent.set_tags({"error": f"all {len(rows)} trials failed; first: {rows[0]['error']}"[:5000]})
        parent.set_status("FAILED")
    else:
        parent.set_status("FINISHED")
    return result
