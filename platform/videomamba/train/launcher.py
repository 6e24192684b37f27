"""Driver side of training: resolve the config into a Ray ``TorchTrainer`` run with MLflow tracking.

``run_training(cfg, resume=False)`` validates everything it can before any worker starts (model
kwargs, data config, run directory), creates (or reopens) the MLflow run, builds the Ray Data
datasets, runs ``TorchTrainer(train_loop_per_worker)`` and finally logs the best model, its URI,
curves and (``eval.at_end``) a multi-view evaluation of the best checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videomamba.train.config import MOVED_KEYS, ConfigError, TrainConfig, absolute_paths, flatten, to_yaml
from videomamba.train.loop import (
    STOP_DATA,
    STOP_METRIC,
    STOP_NONFINITE,
    DataLossError,
    NonFiniteLossError,
    build_model,
    train_loop_per_worker,
)
from videomamba import checkpoints, console, env, storage
from videomamba.cluster.connect import init_ray
from videomamba.data.pipeline import ingest_config
from videomamba.data.skips import release_ledger, skip_report
from videomamba.data.splits import Splits
from videomamba.inference.evaluate import evaluate_checkpoint
from videomamba.metrics import scalar_metrics
from videomamba.models.spec import ModelSpec
from videomamba.plots import plot_confusion
from videomamba.train import resources, tracking
from videomamba.train.context import RunContext

logger = logging.getLogger(__name__)

RUN_INFO_FILE = "videomamba_run.json"


class RunExistsError(RuntimeError):
    """The Ray Train run directory exists and ``resume`` was not requested."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the MLflow run is marked KILLED; checkpoints written so far are kept.
    ``epoch`` is the last checkpointed epoch (None: none yet), ``checkpoint`` its directory."""

    def __init__(self, name: str, storage_path: str, epoch: int | None, checkpoint: str | None):
        super().__init__(f"run {name!r} interrupted")
        self.name, self.storage_path, self.epoch, self.checkpoint = name, storage_path, epoch, checkpoint


@dataclass
class ResumeState:
    """Where a run to be resumed stands (:func:`resume_state`)."""

    name: str
    next_epoch: int  # the epoch a resume would train next
    epochs: int  # train.epochs of the config now
    finished: bool  # the run ended normally (and did not stop early)

    @property
    def complete(self) -> bool:
        return self.finished and self.next_epoch >= self.epochs


@dataclass
class TrainRun:
    """What :func:`run_training` returns."""

    result: Any  # ray.train.Result
    name: str
    path: str  # Ray Train run directory (local path or URI)
    tracking_uri: str
    mlflow_run_id: str
    best_checkpoint: str | None = None  # path or URI of the best checkpoint directory
    best_metrics: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None  # eval.at_end metrics (scalars)
    skips: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> skip summary (all epochs)


# ------------------------------------------------------------------------------------------------
# the run directory (local path or URI) and its run info
def resolve_storage_path(cfg: TrainConfig) -> str:
    return storage.normalize(cfg.run.storage_path or str(Path(cfg.run.root) / "ray"))


def read_run_info(storage_path: str, name: str) -> dict[str, Any] | None:
    return storage.read_json_or_none(storage.join(storage_path, name, RUN_INFO_FILE))


def _write_run_info(storage_path: str, name: str, info: dict[str, Any]) -> None:
    storage.write_json(storage.join(storage_path, name, RUN_INFO_FILE), info)


def latest_run_name(storage_path: str, prefix: str) -> str | None:
    """The most recently started run under ``storage_path`` whose name starts with ``prefix``."""
    return storage.latest_child(storage_path, RUN_INFO_FILE, lambda name, info: name.startswith(prefix))


def resume_state(cfg: TrainConfig, name: str | None = None) -> ResumeState | None:
    """The run ``--resume`` would continue (``name``, else ``run.name``, else the experiment's
    latest), without starting Ray; None when there is no such run."""
    storage_path = resolve_storage_path(absolute_paths(cfg))
    name = name or cfg.run.name or latest_run_name(storage_path, f"{cfg.mlflow.experiment}-")
    info = read_run_info(storage_path, name) if name else None
    if info is None:
        return None
    latest = checkpoints.latest_checkpoint(storage.join(storage_path, name))
    next_epoch = latest[0] + 1 if latest else 0
    finished = bool(info.get("finished"))
    if not finished and info.get("mlflow_run_id"):
        try:  # runs written before run info recorded "finished"
            run = tracking.RunTracker(info["tracking_uri"], info["mlflow_run_id"])
            finished = run.client.get_run(run.run_id).info.status == "FINISHED"
        except Exception as err:  # noqa: BLE001 - unknown: treat as not finished
            logger.debug("cannot read the MLflow run: %s", err)
    return ResumeState(name, next_epoch, cfg.train.epochs, finished)


def _resources(cfg: TrainConfig) -> tuple[float, dict[str, float]]:
    import ray

    gpus = cfg.scaling.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    res = {"CPU": cfg.scaling.cpus_per_worker}
    if gpus:
        res["GPU"] = gpus
    res.update(cfg.scaling.resources_per_worker)  # custom resources pin workers to node types
    return gpus, res


def _check_resources(cfg: TrainConfig, gpus: float) -> "resources.ResourceRequest":
    """Refuse a run whose workers and decode task can never fit the cluster (InsufficientResourcesError)."""
    request = resources.request_for(cfg, gpus)
    resources.check_fits(request, resources.cluster_capacity(), what=f"the run ({cfg.scaling.num_workers} workers)")
    return request


def _tags(cfg: TrainConfig, gpus: float, name: str, storage_path: str) -> dict[str, Any]:
    import ray
    import torch

    device = "cpu"
    if gpus:
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda"
    return {
        "git_commit": env.git_commit(),
        "scan_order": cfg.model.scan_order,
        "backend": cfg.model.backend,
        "device": device,
        "num_workers": cfg.scaling.num_workers,
        "objective": cfg.objective.name,
        "ray_version": ray.__version__,
        "torch_version": torch.__version__,
        "ray_run_name": name,
        "ray_storage_path": storage_path,
        "mlflow.source.name": "videomamba train",
    }


def _preflight(section: str, fn):
    """Run ``fn``; turn its failure into a ConfigError naming the config ``section``."""
    try:
        return fn()
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as err:
        raise ConfigError(f"invalid config:\n  {section}: {type(err).__name__}: {err}") from err


def preflight_tracking(cfg: TrainConfig) -> str:
    """The run's tracking URI, checked (``tracking.check_tracking_uri``): call before Ray starts."""
    uri = _preflight("mlflow", lambda: tracking.resolve_tracking_uri(cfg.mlflow.tracking_uri, cfg.run.root))
    tracking.check_tracking_uri(uri)
    return uri


def resume_changes(old: dict[str, str], new: dict[str, Any]) -> dict[str, tuple[str | None, str]]:
    """Config values (flattened params) that differ from the ones the MLflow run was started with:
    ``{key: (old or None, new)}``."""
    changes = {}
    old_spelling = {new_key: old_key for old_key, new_key in MOVED_KEYS.items()}
    for key, value in new.items():
        text = tracking._param_value(value)
        if key == "run.name":  # --resume NAME sets it; not a change of what is trained
            continue
        if key not in old and old.get(old_spelling.get(key, "")) == text:
            continue  # a run started before the typed model keys logged model.overrides.<key>
        if key in old and old[key] != text:
            changes[key] = (old[key], text)
        elif key not in old and not key.startswith(("resume", "derived.")) and key != "run.name":
            changes[key] = (None, text)
    return changes


def log_resume_changes(tracker: tracking.RunTracker, params: dict[str, Any], resume_index: int) -> dict:
    """On ``--resume``: MLflow params are immutable, so values that changed since the run started are
    logged as ``resume<k>.<key>`` params (k = 1 for the first resume), listed in the
    ``resume<k>.changed`` tag, and warned about. Returns the changes."""
    changes = resume_changes(tracker.client.get_run(tracker.run_id).data.params, params)
    if not changes:
        return changes
    prefix = f"resume{resume_index}"
    tracker.log_params({f"{prefix}.{k}": new for k, (_, new) in changes.items()})
    text = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changes.items())
    tracker.set_tags({f"{prefix}.changed": text})
    logger.warning("resuming with changed config values (the MLflow run logs them as %s.*): %s", prefix, text)
    return changes


def train_cpus(cfg: TrainConfig) -> float:
    """Logical CPUs a local Ray needs for the run: its workers plus room for the data tasks."""
    return math.ceil(cfg.scaling.num_workers * cfg.scaling.cpus_per_worker) + 2


@dataclass(frozen=True)
class _RunPlan:
    """A run resolved on the driver before any worker starts (:func:`_plan`)."""

    name: str
    storage_path: str
    resume_info: dict[str, Any] | None  # the run being resumed (None: a new run)
    model: ModelSpec
    class_names: tuple[str, ...]
    num_params: int
    gpus: float
    worker_resources: dict[str, float]
    request: Any  # resources.ResourceRequest: what the run asks of the cluster
    splits: Splits  # the data as read once by the preflight: records, counts, captions
    start_epoch: int
    val_split: str | None
    datasets: dict[str, Any]
    train_size: int  # clips per epoch
    metric: str  # what ranks checkpoints
    mode: str


def run_training(cfg: TrainConfig, resume: bool = False, *, callbacks=(), tags=None) -> TrainRun:
    """Train with Ray Train; see the module docstring. ``resume`` continues the run named
    ``run.name`` (default: the latest run of this experiment) in the same MLflow run.
    ``callbacks`` are extra ``RunConfig`` callbacks and ``tags`` extra MLflow run tags (used by
    ``videomamba.tune``: ``TuneReportCallback`` and ``mlflow.parentRunId``)."""
    cfg = absolute_paths(cfg)  # workers and the checkpoints' recorded config: independent of this cwd
    tracking_uri = preflight_tracking(cfg)  # an unreachable tracking server fails before Ray starts
    storage_path = resolve_storage_path(cfg)
    name, info = _run_name(cfg, storage_path, resume)
    plan = _plan(cfg, storage_path, name, info)  # everything that can fail does so here, before any worker starts
    tracker = _open_tracking(cfg, plan, tracking_uri, tags)
    context = _run_context(cfg, plan, tracker)
    result = _fit(cfg, plan, context, tracker, callbacks)
    return _finish(cfg, plan, result, tracker)


def _run_name(cfg: TrainConfig, storage_path: str, resume: bool) -> tuple[str, dict[str, Any] | None]:
    """``(run name, run info of the run being resumed or None)``; RunExistsError when ``resume``
    finds no run, or a new run's name is taken."""
    name = cfg.run.name
    if resume:
        name = name or latest_run_name(storage_path, f"{cfg.mlflow.experiment}-")
        info = read_run_info(storage_path, name) if name else None
        if info is None:
            raise RunExistsError(f"--resume: no run {name or cfg.mlflow.experiment + '-*'!r} under {storage_path}")
        return name, info
    name = name or f"{cfg.mlflow.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
    if storage.exists(storage.join(storage_path, name)):
        raise RunExistsError(
            f"run {name!r} already exists under {storage_path}; pass --resume to continue it or set run.name"
        )
    return name, None


def _plan(cfg: TrainConfig, storage_path: str, name: str, info: dict[str, Any] | None) -> _RunPlan:
    """The preflight checks (as ``--dry-run``), Ray started, the model built once (pretrained
    weights load), resources checked against the cluster, the resume epoch and the datasets."""
    from videomamba.train.preflight import preflight

    checked = preflight(cfg)  # the same checks as `videomamba train --dry-run`, before Ray starts
    init_ray(train_cpus(cfg))  # the driver starts or joins Ray (nothing below does)
    splits = checked.splits  # every manifest read once, by the checks
    probe = _preflight("model", lambda: build_model(checked.model_spec, cfg.model.pretrained, cfg.model.inflate,
                                                    cfg.model.pretrained_grid))
    num_params = sum(p.numel() for p in probe.parameters())
    del probe
    gpus, worker_res = _resources(cfg)
    request = _check_resources(cfg, gpus)
    start_epoch = checkpoints.resume_epoch(storage.join(storage_path, name)) if info is not None else 0
    val_split = cfg.train.val_split if splits.has(cfg.train.val_split) else None

    def _datasets():
        span = max(1, cfg.train.epochs - start_epoch) if cfg.data.stream_epochs else 1
        out = {"train": splits.dataset("train", seed=cfg.train.seed, epoch=start_epoch, scope=name, epochs=span)}
        if val_split:
            out[val_split] = splits.dataset(val_split, seed=cfg.train.seed, scope=name)
        return out

    datasets = _preflight("data", _datasets)
    metric, mode = cfg.train.checkpoint_metric, cfg.train.checkpoint_mode
    if val_split is None and metric.startswith("val/"):
        logger.warning("no %r split: checkpoints ranked by train/loss_epoch instead of %s", cfg.train.val_split, metric)
        metric, mode = "train/loss_epoch", "min"
    return _RunPlan(
        name=name, storage_path=storage_path, resume_info=info, model=checked.model_spec,
        class_names=tuple(checked.class_names), num_params=num_params, gpus=gpus, worker_resources=worker_res,
        request=request, splits=splits, start_epoch=start_epoch, val_split=val_split, datasets=datasets,
        train_size=splits.num_train_rows(), metric=metric, mode=mode,
    )


def _open_tracking(cfg: TrainConfig, plan: _RunPlan, tracking_uri: str, tags: dict | None) -> tracking.RunTracker:
    """A new MLflow run (its id recorded in the run directory), or the resumed run reopened with
    its changed config values logged; then the params and the resolved config."""
    info = plan.resume_info
    resumed = 0
    if info is not None:
        tracker = tracking.RunTracker(info.get("tracking_uri", tracking_uri), info["mlflow_run_id"])
        tracker.set_status("RUNNING")
        stale = tracker.client.get_run(tracker.run_id).data.tags
        for key in ("error", "interrupted_at_epoch"):  # from the interruption being resumed
            if key in stale:
                tracker.client.delete_tag(tracker.run_id, key)
        resumed = int(stale.get("resumed", 0)) + 1
        tracker.set_tags({"resumed": resumed, **(tags or {})})
        logger.info("resuming run %r into MLflow run %s", plan.name, tracker.run_id)
    else:
        tracker = tracking.start_run(
            tracking_uri, cfg.mlflow.experiment, run_name=cfg.mlflow.run_name or plan.name,
            tags={**_tags(cfg, plan.gpus, plan.name, plan.storage_path), **(tags or {})},
        )
        _write_run_info(plan.storage_path, plan.name, {"mlflow_run_id": tracker.run_id, "tracking_uri": tracking_uri,
                                                       "experiment": cfg.mlflow.experiment, "created": time.time()})
    params = {
        **flatten(cfg),
        "derived.num_params": plan.num_params,
        "derived.global_batch": cfg.train.batch_size * cfg.train.grad_accum * cfg.scaling.num_workers,
        "derived.num_classes": len(plan.class_names),
        "derived.train_clips": plan.train_size,
        "derived.model_kwargs": json.dumps(plan.model.kwargs, sort_keys=True),
    }
    if resumed:
        log_resume_changes(tracker, params, resumed)
    tracker.log_params(params)
    tracker.log_text(to_yaml(cfg), "config/resolved.yaml" if info is None else f"config/resolved-resume-{int(time.time())}.yaml")
    return tracker


def _run_context(cfg: TrainConfig, plan: _RunPlan, tracker: tracking.RunTracker) -> RunContext:
    """What every worker needs besides the config, resolved here (workers do not share the
    driver's cwd, files or console)."""
    import ray

    val_split, name, splits = plan.val_split, plan.name, plan.splits
    return RunContext(
        model=plan.model,
        class_names=plan.class_names,
        train_size=plan.train_size,
        checkpoint_metric=plan.metric,
        checkpoint_mode=plan.mode,
        data_scope=name,
        fail_marker=str(Path(plan.storage_path) / name / ".debug_fail_fired") if "://" not in plan.storage_path
        else str(Path(tempfile.gettempdir()) / f"videomamba-{name}.debug_fail_fired"),
        tracking_uri=tracker.tracking_uri,
        mlflow_run_id=tracker.run_id,
        val_split=val_split,
        val_size=splits.num_videos(val_split) if val_split else 0,
        val_captions=tuple(tuple(c) for c in splits.captions(val_split)) if cfg.data.captions and val_split else None,
        progress=console.progress_bars(),
        quiet=console.quiet(),
        data_prepared=splits.is_prepared("train"),
        decode_cpus=max(0.0, float(ray.cluster_resources().get("CPU", 0))
                        - cfg.scaling.num_workers * cfg.scaling.cpus_per_worker),
    )


def _fit(cfg: TrainConfig, plan: _RunPlan, context: RunContext, tracker: tracking.RunTracker, callbacks) -> Any:
    """``TorchTrainer.fit()``; an interruption, a stop from outside, a placement timeout or a
    failure is recorded in the MLflow run (status, tags) and raised."""
    import ray.train
    from ray.train.torch import TorchTrainer

    name, storage_path = plan.name, plan.storage_path
    attempt_s, retries = resources.placement_attempts(cfg.scaling.placement_timeout_s)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.model_dump(mode="json"), "context": context},
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.scaling.num_workers, use_gpu=bool(plan.gpus), resources_per_worker=plan.worker_resources
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.train.keep_checkpoints,
                checkpoint_score_attribute=plan.metric,
                checkpoint_score_order=plan.mode,
            ),
            failure_config=ray.train.FailureConfig(max_failures=cfg.scaling.max_failures,
                                                   controller_failure_limit=retries),
            logging_config=console.train_logging_config(),
            callbacks=list(callbacks),
        ),
        datasets=plan.datasets,
        dataset_config=ingest_config(plan.datasets),
    )
    try:
        with resources.start_timeout(attempt_s):
            return trainer.fit()
    except KeyboardInterrupt:
        latest = checkpoints.latest_checkpoint(storage.join(storage_path, name))
        tracker.set_tags({"interrupted_at_epoch": latest[0] + 1 if latest else 0})
        tracker.set_status("KILLED")
        raise RunInterrupted(name, storage_path, *(latest or (None, None))) from None
    except BaseException as err:
        if any(getattr(cb, "stop_requested", lambda: False)() for cb in callbacks):
            tracker.set_status("KILLED")  # ended from outside (a Tune trial stopped by its scheduler)
            raise resources.RunStopped(f"run {name!r} was stopped from outside") from err
        if resources.is_placement_timeout(err):
            err = resources.placement_timeout_error(plan.request, cfg.scaling.placement_timeout_s, f"run {name!r}")
        tracker.set_tags({"error": f"{type(err).__name__}: {err}"[:5000]})
        tracker.set_status("FAILED")
        if isinstance(err, resources.PlacementTimeoutError):
            raise err from None
        raise


def _finish(cfg: TrainConfig, plan: _RunPlan, result: Any, tracker: tracking.RunTracker) -> TrainRun:
    """Skip summaries, a stop by the workers raised as its error, the best checkpoint logged (and
    evaluated with ``eval.at_end``), curves; the MLflow run and run info marked finished."""
    name = plan.name
    run = TrainRun(result=result, name=name, path=result.path, tracking_uri=tracker.tracking_uri,
                   mlflow_run_id=tracker.run_id)
    run.skips = {s: skip_report(s, scope=name).summary() for s in ("train", plan.val_split) if s}
    release_ledger(name)
    status = result.return_value or {}
    last = result.checkpoint.path if result.checkpoint else None
    errors = {STOP_NONFINITE: NonFiniteLossError, STOP_DATA: DataLossError, STOP_METRIC: ConfigError}
    if status.get("status") in errors:
        tracker.set_tags({"stop_reason": status["status"], "last_good_checkpoint": str(last),
                          "error": status["message"][:5000]})
        tracker.set_status("FAILED")
        raise errors[status["status"]](f"{status['message']}. Last good checkpoint: {last or 'none'}")

    best = _best(result, plan.metric, plan.mode)
    if best is not None:
        run.best_checkpoint, run.best_metrics = best
        _log_best(tracker, cfg, run)
        if cfg.eval.at_end and plan.splits.has(cfg.eval.split):
            try:
                full = evaluate(cfg, run.best_checkpoint, scope=f"{name}-eval", splits=plan.splits)
            except BaseException as err:
                tracker.set_tags({"error": f"evaluation: {type(err).__name__}: {err}"[:5000]})
                tracker.set_status("FAILED")
                raise
            run.evaluation = log_evaluation(tracker, full)
            run.skips[f"{cfg.eval.split} (evaluation)"] = full.get("skip_report", {})
    _log_curves(tracker)
    tracker.set_status("FINISHED")
    _write_run_info(plan.storage_path, name, {**(read_run_info(plan.storage_path, name) or {}), "finished": time.time(),
                                              "best_checkpoint": run.best_checkpoint})
    return run


def _best(result, metric: str, mode: str) -> tuple[str, dict[str, Any]] | None:
    candidates = [(c, m) for c, m in (result.best_checkpoints or []) if m.get(metric) is not None]
    if not candidates:
        return (checkpoints.checkpoint_uri(result.checkpoint), {}) if result.checkpoint else None
    pick = max if mode == "max" else min
    checkpoint, metrics = pick(candidates, key=lambda cm: cm[1][metric])
    return checkpoints.checkpoint_uri(checkpoint), metrics


def _log_best(tracker: tracking.RunTracker, cfg: TrainConfig, run: TrainRun) -> None:
    """Best checkpoint URI + meta as artifacts/tags; the model as an MLflow model (registered on request)."""
    # summary values as tags + a table, not metrics: one-point metrics would each get a chart
    best = {k: v for k, v in run.best_metrics.items() if isinstance(v, (int, float))}
    tracker.set_tags({"best_checkpoint": run.best_checkpoint, **{f"best/{k}": f"{v:.6g}" for k, v in best.items()}})
    tracker.log_dict(best, "best_checkpoint/metrics.json")
    with checkpoints.local_checkpoint_dir(run.best_checkpoint) as d:
        tracker.log_artifact(str(d / checkpoints.META_FILE), "best_checkpoint")
        tracker.log_text(run.best_checkpoint + "\n", "best_checkpoint/URI.txt")
        if cfg.mlflow.log_model:
            log_model(tracker, d, registered_name=cfg.mlflow.register_model)


def log_model(tracker: tracking.RunTracker, checkpoint_dir: Path, registered_name: str | None = None):
    """Log the checkpoint's model into the run as an MLflow pyfunc model of code plus weights
    (``videomamba.train.mlflow_model``: safetensors + metadata, rebuilt with ``create_model`` on
    load, no pickle) with the input signature ``float32 (-1, 3, T, H, W)``; registered as
    ``registered_name`` when given."""
    import mlflow

    from videomamba.train.mlflow_model import log_pyfunc_model

    with tracking.mlflow_uri(tracker.tracking_uri), mlflow.start_run(run_id=tracker.run_id):
        info = log_pyfunc_model(checkpoint_dir, registered_name=registered_name)
    logger.info("logged MLflow model %s%s", info.model_uri, f" (registered as {registered_name!r})" if registered_name else "")
    return info


def evaluate(cfg: TrainConfig, checkpoint: str, *, scope: str | None = None, manifest: str | None = None,
             splits: Splits | None = None) -> dict[str, Any]:
    """``evaluate_checkpoint`` of ``checkpoint`` on ``cfg.eval.split`` with the config's settings
    (raises ``SkipLimitError`` beyond ``data.max_skip_fraction`` or without clips). ``splits``:
    the run's data as already read."""
    return evaluate_checkpoint(
        checkpoint, data_cfg=cfg.data, split=cfg.eval.split, manifest=manifest, batch_size=cfg.eval.batch_size,
        num_actors=cfg.eval.num_actors, seed=cfg.train.seed, scope=scope,
        max_skip_fraction=cfg.data.max_skip_fraction, splits=splits,
    )


def log_evaluation(tracker, full: dict[str, Any]) -> dict[str, float]:
    """Log an ``evaluate_checkpoint`` result into an MLflow run; returns the logged scalars
    (retrieval results: ``<split>/t2v_r1`` ... and ``eval/<split>_metrics.json``)."""
    split = full["split"]
    scalars = {**scalar_metrics(full, split), **full.get("skips", {})}
    tracker.log_metrics(scalars)
    if full.get("task") == "retrieval":
        tracker.log_dict(scalars, f"eval/{split}_metrics.json")
        return scalars
    names = full["class_names"]
    tracker.log_dict(
        {"class_names": names, "per_class_acc": full["per_class_acc"], "confusion": full["confusion"].tolist(), **scalars},
        f"eval/{split}_metrics.json",
    )
    with tempfile.TemporaryDirectory() as tmp:
        title = f"{split}: top-1 {full['top1']:.3f} ({full['num_videos']} videos, {full['num_views']} views)"
        png = plot_confusion(full["confusion"], names, Path(tmp) / f"{split}_confusion_matrix.png", title=title)
        tracker.log_artifact(png, "plots")
    return scalars


def _log_curves(tracker) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        png = tracking.plot_curves(tracker.tracking_uri, tracker.run_id, Path(tmp) / "curves.png")
        if png:
            tracker.log_artifact(png, "plots")
