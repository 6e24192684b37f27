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
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videomamba.train.config import ConfigError, TrainConfig, flatten, to_yaml
from videomamba.train.loop import STOP_NONFINITE, NonFiniteLossError, build_model, train_loop_per_worker
from videomamba import objectives
from videomamba.train import resources, tracking

logger = logging.getLogger(__name__)

RUN_INFO_FILE = "videomamba_run.json"


class RunExistsError(RuntimeError):
    """The Ray Train run directory exists and ``resume`` was not requested."""


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


# ------------------------------------------------------------------------------------------------
# storage (local path or URI) helpers
def _fs(storage_path: str):
    import pyarrow.fs

    if "://" in storage_path and not storage_path.startswith("file://"):
        return pyarrow.fs.FileSystem.from_uri(storage_path)
    local = Path(storage_path.removeprefix("file://")).expanduser().resolve()
    return pyarrow.fs.LocalFileSystem(), local.as_posix()


def resolve_storage_path(cfg: TrainConfig) -> str:
    path = cfg.run.storage_path or str(Path(cfg.run.root) / "ray")
    if "://" in path and not path.startswith("file://"):
        return path
    return Path(path.removeprefix("file://")).expanduser().resolve().as_posix()


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def read_run_info(storage_path: str, name: str) -> dict[str, Any] | None:
    fs, base = _fs(storage_path)
    path = _join(base, name, RUN_INFO_FILE)
    import pyarrow.fs

    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def _write_run_info(storage_path: str, name: str, info: dict[str, Any]) -> None:
    fs, base = _fs(storage_path)
    fs.create_dir(_join(base, name), recursive=True)
    with fs.open_output_stream(_join(base, name, RUN_INFO_FILE)) as f:
        f.write(json.dumps(info, indent=2).encode())


def _run_exists(storage_path: str, name: str) -> bool:
    import pyarrow.fs

    fs, base = _fs(storage_path)
    return fs.get_file_info(_join(base, name)).type != pyarrow.fs.FileType.NotFound


def latest_run_name(storage_path: str, prefix: str) -> str | None:
    """The most recently started run under ``storage_path`` whose name starts with ``prefix``."""
    import pyarrow.fs

    fs, base = _fs(storage_path)
    try:
        entries = fs.get_file_info(pyarrow.fs.FileSelector(base, allow_not_found=True))
    except OSError:
        return None
    runs = []
    for e in entries:
        if e.type == pyarrow.fs.FileType.Directory and e.base_name.startswith(prefix):
            info = read_run_info(storage_path, e.base_name)
            if info:
                runs.append((info.get("created", 0), e.base_name))
    return max(runs)[1] if runs else None


# ------------------------------------------------------------------------------------------------
def resume_epoch(storage_path: str, name: str) -> int:
    """The epoch after the run's latest checkpoint (0 when it has none). Raises UnsafeCheckpointError
    when its training state is not in the data-only format (an old pickle, a planted file)."""
    import ray.train

    from videomamba.train.checkpointing import check_train_state, local_checkpoint_dir, read_meta

    try:
        latest = ray.train.Result.from_path(_join(storage_path, name)).checkpoint
    except RuntimeError:
        return 0
    if latest is None:
        return 0
    with local_checkpoint_dir(latest) as d:
        check_train_state(d)  # data-only format, parsed before any worker starts (UnsafeCheckpointError)
        return int(read_meta(d)["epoch"]) + 1


def model_spec(cfg: TrainConfig, num_classes: int) -> dict[str, Any]:
    """``{"name", "kwargs"}`` for ``create_model``: frames and size from the data, then overrides."""
    kwargs: dict[str, Any] = {"num_classes": cfg.model.num_classes or num_classes}
    for key in ("num_frames", "img_size"):
        value = getattr(cfg.data, key, None)
        if value is not None:
            kwargs[key] = value
    kwargs["drop_path_rate"] = cfg.model.drop_path_rate
    kwargs.update(cfg.model.overrides)
    return {"name": cfg.model.name, "kwargs": kwargs}


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


def _tags(cfg: TrainConfig, model, gpus: float, name: str, storage_path: str) -> dict[str, Any]:
    import ray
    import torch

    device = "cpu"
    if gpus:
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda"
    return {
        "git_commit": tracking.git_commit(),
        "scan_order": getattr(model, "scan_order", "unknown"),
        "backend": getattr(model, "backend", "unknown"),
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


def init_ray(cfg: TrainConfig | None = None) -> None:
    """Connect to the cluster (``RAY_ADDRESS``) or start a local Ray whose logical CPUs leave room
    for the data tasks next to the training workers (small machines are oversubscribed)."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
        return
    workers = cfg.scaling.num_workers * cfg.scaling.cpus_per_worker if cfg else 1
    ray.init(num_cpus=max(os.cpu_count() or 1, int(math.ceil(workers)) + 2), include_dashboard=False)


def run_training(cfg: TrainConfig, resume: bool = False, *, callbacks=(), tags=None) -> TrainRun:
    """Train with Ray Train; see the module docstring. ``resume`` continues the run named
    ``run.name`` (default: the latest run of this experiment) in the same MLflow run.
    ``callbacks`` are extra ``RunConfig`` callbacks and ``tags`` extra MLflow run tags (used by
    ``videomamba.tune``: ``TuneReportCallback`` and ``mlflow.parentRunId``)."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from videomamba.train import data_api

    if not ray.is_initialized():
        ray.init()
    storage_path = resolve_storage_path(cfg)
    name = cfg.run.name
    info = None
    if resume:
        name = name or latest_run_name(storage_path, f"{cfg.mlflow.experiment}-")
        info = read_run_info(storage_path, name) if name else None
        if info is None:
            raise RunExistsError(f"--resume: no run {name or cfg.mlflow.experiment + '-*'!r} under {storage_path}")
    else:
        name = name or f"{cfg.mlflow.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
        if _run_exists(storage_path, name):
            raise RunExistsError(
                f"run {name!r} already exists under {storage_path}; pass --resume to continue it or set run.name"
            )

    # everything that can fail does so here, before any worker starts
    class_names = _preflight("data", lambda: data_api.class_names(cfg.data))
    spec = model_spec(cfg, len(class_names))
    probe = _preflight(
        "model", lambda: build_model(spec, cfg.model.pretrained, cfg.model.inflate, cfg.model.pretrained_grid)
    )
    _preflight("objective", lambda: objectives.preflight(cfg.objective))
    num_params = sum(p.numel() for p in probe.parameters())
    gpus, worker_res = _resources(cfg)
    request = _check_resources(cfg, gpus)
    start_epoch = resume_epoch(storage_path, name) if resume else 0
    val_split = cfg.train.val_split if data_api.has_split(cfg.data, cfg.train.val_split) else None

    def _datasets():
        span = max(1, cfg.train.epochs - start_epoch) if cfg.data.stream_epochs else 1
        out = {"train": data_api.build(cfg.data, "train", seed=cfg.train.seed, epoch=start_epoch, scope=name,
                                       epochs=span)}
        if val_split:
            out[val_split] = data_api.build(cfg.data, val_split, seed=cfg.train.seed, scope=name)
        return out

    datasets = _preflight("data", _datasets)
    train_size = data_api.num_train_rows(cfg.data)  # clips per epoch (videos x clips_per_video)
    metric, mode = cfg.train.checkpoint_metric, cfg.train.checkpoint_mode
    if val_split is None and metric.startswith("val/"):
        logger.warning("no %r split: checkpoints ranked by train/loss_epoch instead of %s", cfg.train.val_split, metric)
        metric, mode = "train/loss_epoch", "min"

    tracking_uri = _preflight("mlflow", lambda: tracking.resolve_tracking_uri(cfg.mlflow.tracking_uri, cfg.run.root))
    if info is not None:
        tracker = tracking.RunTracker(info.get("tracking_uri", tracking_uri), info["mlflow_run_id"])
        tracking_uri = tracker.tracking_uri
        tracker.set_status("RUNNING")
        tracker.set_tags({"resumed": int(tracker.client.get_run(tracker.run_id).data.tags.get("resumed", 0)) + 1, **(tags or {})})
        logger.info("resuming run %r into MLflow run %s", name, tracker.run_id)
    else:
        tracker = tracking.start_run(
            tracking_uri,
            cfg.mlflow.experiment,
            run_name=cfg.mlflow.run_name or name,
            tags={**_tags(cfg, probe, gpus, name, storage_path), **(tags or {})},
        )
        _write_run_info(
            storage_path,
            name,
            {"mlflow_run_id": tracker.run_id, "tracking_uri": tracking_uri, "experiment": cfg.mlflow.experiment, "created": time.time()},
        )
    del probe
    global_batch = cfg.train.batch_size * cfg.train.grad_accum * cfg.scaling.num_workers
    tracker.log_params(
        {
            **flatten(cfg),
            "derived.num_params": num_params,
            "derived.global_batch": global_batch,
            "derived.num_classes": len(class_names),
            "derived.train_clips": train_size,
            "derived.model_kwargs": json.dumps(spec["kwargs"], sort_keys=True),
        }
    )
    tracker.log_text(to_yaml(cfg), "config/resolved.yaml" if info is None else f"config/resolved-resume-{int(time.time())}.yaml")

    local_storage = "://" not in storage_path
    runtime = {
        "model": spec,
        "class_names": class_names,
        "tracking_uri": tracking_uri,
        "mlflow_run_id": tracker.run_id,
        "train_size": train_size,
        "has_val": val_split is not None,
        "progress": sys.stderr.isatty(),
        "val_split": val_split,
        # the val captions per manifest row, read here: workers do not share the driver's cwd
        "val_captions": [list(r.captions) for r in data_api.records(cfg.data, val_split)]
        if cfg.data.captions and val_split else None,
        "data_scope": name,
        "data_prepared": data_api.is_prepared(cfg.data.train_manifest),
        "decode_cpus": max(0.0, float(ray.cluster_resources().get("CPU", 0))
                           - cfg.scaling.num_workers * cfg.scaling.cpus_per_worker),
        "fail_marker": str(Path(storage_path) / name / ".debug_fail_fired")
        if local_storage
        else str(Path(tempfile.gettempdir()) / f"videomamba-{name}.debug_fail_fired"),
    }
    attempt_s, retries = resources.placement_attempts(cfg.scaling.placement_timeout_s)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.model_dump(mode="json"), "runtime": runtime},
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.scaling.num_workers, use_gpu=bool(gpus), resources_per_worker=worker_res
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.train.keep_checkpoints,
                checkpoint_score_attribute=metric,
                checkpoint_score_order=mode,
            ),
            failure_config=ray.train.FailureConfig(max_failures=cfg.scaling.max_failures, controller_failure_limit=retries),
            callbacks=list(callbacks),
        ),
        datasets=datasets,
    )
    try:
        with resources.start_timeout(attempt_s):
            result = trainer.fit()
    except BaseException as err:
        if any(getattr(cb, "stop_requested", lambda: False)() for cb in callbacks):
            tracker.set_status("KILLED")  # ended from outside (a Tune trial stopped by its scheduler)
            raise resources.RunStopped(f"run {name!r} was stopped from outside") from err
        if resources.is_placement_timeout(err):
            err = resources.placement_timeout_error(request, cfg.scaling.placement_timeout_s, f"run {name!r}")
        tracker.set_tags({"error": f"{type(err).__name__}: {err}"[:5000]})
        tracker.set_status("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        if isinstance(err, resources.PlacementTimeoutError):
            raise err from None
        raise
    run = TrainRun(result=result, name=name, path=result.path, tracking_uri=tracking_uri, mlflow_run_id=tracker.run_id)
    status = result.return_value or {}
    last = result.checkpoint.path if result.checkpoint else None
    if status.get("status") == STOP_NONFINITE:
        tracker.set_tags({"stop_reason": STOP_NONFINITE, "last_good_checkpoint": str(last)})
        tracker.set_status("FAILED")
        raise NonFiniteLossError(f"{status['message']}. Last good checkpoint: {last}")

    best = _best(result, metric, mode)
    if best is not None:
        run.best_checkpoint, run.best_metrics = best
        _log_best(tracker, cfg, run)
        if cfg.eval.at_end and data_api.has_split(cfg.data, cfg.eval.split):
            run.evaluation = evaluate_and_log(tracker, cfg, run.best_checkpoint, scope=name)
    _log_curves(tracker)
    tracker.set_status("FINISHED")
    return run


def _best(result, metric: str, mode: str) -> tuple[str, dict[str, Any]] | None:
    candidates = [(c, m) for c, m in (result.best_checkpoints or []) if m.get(metric) is not None]
    if not candidates:
        return (_uri(result.checkpoint), {}) if result.checkpoint else None
    pick = max if mode == "max" else min
    checkpoint, metrics = pick(candidates, key=lambda cm: cm[1][metric])
    return _uri(checkpoint), metrics


def _uri(checkpoint) -> str:
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"


def _log_best(tracker: tracking.RunTracker, cfg: TrainConfig, run: TrainRun) -> None:
    """Best checkpoint URI + meta as artifacts/tags; the model as an MLflow model (registered on request)."""
    from videomamba.train.checkpointing import local_checkpoint_dir

    tracker.set_tags({"best_checkpoint": run.best_checkpoint})
    tracker.log_metrics({f"best/{k}": v for k, v in run.best_metrics.items() if isinstance(v, (int, float))})
    with local_checkpoint_dir(run.best_checkpoint) as d:
        tracker.log_artifact(str(d / "meta.json"), "best_checkpoint")
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


def evaluate_and_log(tracker, cfg: TrainConfig, checkpoint: str, *, scope: str = "eval", manifest: str | None = None):
    """Multi-view evaluation of ``checkpoint`` on ``cfg.eval.split`` (see ``evaluate_checkpoint``),
    logged as ``<split>/*`` metrics, a confusion-matrix PNG and a per-class JSON. Returns the scalars."""
    from videomamba.train.evaluate import evaluate_checkpoint

    full = evaluate_checkpoint(
        checkpoint, data_cfg=cfg.data, split=cfg.eval.split, manifest=manifest, batch_size=cfg.eval.batch_size,
        num_actors=cfg.eval.num_actors, seed=cfg.train.seed, scope=scope,
    )
    return log_evaluation(tracker, full)


def log_evaluation(tracker, full: dict[str, Any]) -> dict[str, float]:
    """Log an ``evaluate_checkpoint`` result into an MLflow run; returns the logged scalars
    (retrieval results: ``<split>/t2v_r1`` ... and ``eval/<split>_metrics.json``)."""
    from videomamba.train.evaluate import plot_confusion, scalar_metrics

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
