"""``train_loop_per_worker``: the Ray Train training function (one copy per worker).

It knows nothing about where it runs: it reads its config dict, takes its data shard with
``ray.train.get_dataset_shard``, resumes from ``ray.train.get_checkpoint()`` when there is one,
and reports metrics and checkpoints with ``ray.train.report``. ``config`` is
``{"cfg": TrainConfig as a dict, "context": RunContext}``; the context is resolved by the
launcher (the model spec, class names, MLflow run id, dataset sizes).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from videomamba.data.normalize import normalize_batch
from videomamba.metrics import scalar_metrics, sort_views
from videomamba.models.spec import ModelSpec
from videomamba.objectives import build_objective
from videomamba import checkpoints as ckpt
from videomamba.data.pipeline import TorchCollate
from videomamba.data.skips import skip_metrics
from videomamba.plots import plot_confusion
from videomamba.train.data_wait import data_wait_hint
from videomamba.train.determinism import check_scan_backend, seed_everything, use_deterministic_algorithms
from videomamba.train.config import TrainConfig
from videomamba.train.context import RunContext
from videomamba.train.optim import build_optimizer, build_scheduler
from videomamba.precision import resolve_precision
from videomamba.train.tracking import NoopTracker, RunTracker

logger = logging.getLogger(__name__)

STOP_NONFINITE = "nonfinite_loss"
STOP_DATA = "data_loss"  # too many skipped videos, or an epoch / validation pass without clips
STOP_METRIC = "missing_metric"  # train.checkpoint_metric not among the first validation's metrics


class NonFiniteLossError(RuntimeError):
    """Raised by the launcher when a worker stopped on a NaN/inf loss."""


class DataLossError(RuntimeError):
    """Raised by the launcher when the run stopped on its data: more skipped videos than
    ``data.max_skip_fraction`` in an epoch or validation pass, or a pass without any clip.
    The message gives the counts by reason, example paths and the last good checkpoint."""


def missing_metric_message(metric: str, metrics: dict[str, Any]) -> str | None:
    """None if ``metric`` is among ``metrics`` (the first validated epoch's report), else the
    error naming the metrics that exist."""
    if metric in metrics:
        return None
    have = ", ".join(sorted(k for k in metrics if isinstance(metrics[k], (int, float))))
    return f"train.checkpoint_metric {metric!r} is not produced by this run; its metrics are: {have}"


def _world() -> tuple[int, int]:
    import ray.train

    ctx = ray.train.get_context()
    return ctx.get_world_rank(), ctx.get_world_size()


def _all_reduce(values: list[float], device: torch.device, op=None) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t.tolist()


def _gather(obj: Any) -> list[Any]:
    if dist.is_available() and dist.is_initialized():
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def build_model(spec: ModelSpec | dict[str, Any], pretrained: str | None = None, inflate: str = "center",
                pos_grid: tuple[int, int] | None = None) -> torch.nn.Module:
    """``spec.build()`` (a ``ModelSpec``, or checkpoint metadata's ``{"name", "kwargs"}``),
    initialised from ``pretrained`` when given: published weights, a training checkpoint or a run
    directory (its best checkpoint's weights); ``pos_grid``: their patch grid when non-square and
    not in their metadata."""
    spec = spec if isinstance(spec, ModelSpec) else ModelSpec.from_meta(spec)
    if pretrained:
        from videomamba.checkpoints import pretrained_weights

        pretrained = pretrained_weights(pretrained)  # a training checkpoint or run directory -> its weights
    return spec.build(pretrained or None, inflate=inflate, pos_grid=pos_grid)


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from ray.experimental.tqdm_ray import tqdm
    except ImportError:  # pragma: no cover
        from tqdm import tqdm
    return tqdm(total=total, desc=desc)


class _Trainer:
    """State of one worker's training run; :meth:`run` is the whole loop."""

    def __init__(self, config: dict[str, Any]):
        import ray.train
        import ray.train.torch

        self.cfg = cfg = TrainConfig.model_validate(config["cfg"])
        self.ctx = ctx = config["context"]
        if not isinstance(ctx, RunContext):
            raise TypeError(f"train_loop_config['context'] must be a RunContext, got {type(ctx).__name__}")
        if ctx.quiet:
            from videomamba.console import quiet_train_worker

            quiet_train_worker()
        self.rank, self.world = _world()
        self.device = ray.train.torch.get_device()
        self.tracker = RunTracker(ctx.tracking_uri, ctx.mlflow_run_id) if self.rank == 0 and ctx.mlflow_run_id else NoopTracker()
        use_deterministic_algorithms(cfg.train.deterministic_algorithms)
        seed_everything(cfg.train.seed, 0, self.rank)

        model = build_model(ctx.model, cfg.model.pretrained, cfg.model.inflate, cfg.model.pretrained_grid)
        if cfg.train.deterministic_algorithms and hasattr(model, "backend"):
            check_scan_backend(model.backend, self.device)
        self.objective = build_objective(cfg.objective, model).to(self.device)
        self.precision = resolve_precision(cfg.train.precision, self.device)
        global_batch = cfg.train.batch_size * cfg.train.grad_accum * self.world
        ref = cfg.optim.reference_batch_size
        self.lr = cfg.optim.lr * (global_batch / ref if ref else 1.0)
        self.optimizer = build_optimizer(self.objective, cfg.optim, lr=self.lr, model_prefix="model.")
        per_worker = ctx.train_size // self.world
        steps = per_worker // cfg.train.batch_size
        if cfg.debug.max_steps_per_epoch:
            steps = min(steps, cfg.debug.max_steps_per_epoch)
        if steps < 1:
            raise ValueError(
                f"train split has {ctx.train_size} clips: fewer than one batch of {cfg.train.batch_size} per worker"
            )
        self.steps_per_epoch = steps
        self.updates_per_epoch = max(1, steps // cfg.train.grad_accum)
        self.scheduler = build_scheduler(
            self.optimizer, cfg.schedule, steps_per_epoch=self.updates_per_epoch, epochs=cfg.train.epochs
        )
        self.ema = self._make_ema()
        self.metric, self.mode, self.scope = ctx.checkpoint_metric, ctx.checkpoint_mode, ctx.data_scope
        self.start_epoch = 0
        self._train_iter = None  # kept across epochs with data.stream_epochs
        self._replay = None  # debug.replay_first_batch
        self.num_updates = 0
        self.best: float | None = None
        self._restore(ray.train.get_checkpoint())
        self.ddp = ray.train.torch.prepare_model(
            self.objective,
            parallel_strategy_kwargs={"find_unused_parameters": self.objective.find_unused_parameters},
        )

    def _make_ema(self):
        """timm ``ModelEmaV3`` of the student (``train.ema``), or None."""
        ema = self.cfg.train.ema
        if ema is None:
            return None
        from timm.utils import ModelEmaV3

        return ModelEmaV3(self.objective.model, decay=ema.decay, use_warmup=ema.warmup)

    # -- checkpoints ---------------------------------------------------------------------------
    def _restore(self, checkpoint) -> None:
        if checkpoint is None:
            return
        with checkpoint.as_directory() as d:
            restored = ckpt.load_resume_state(d)
        state = restored.train_state
        self.objective.model.load_state_dict(restored.model_state)
        self.objective.load_extra_state_dict(restored.heads_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            if state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            else:  # EMA switched on for the resumed part: start it from the restored weights
                self.ema = self._make_ema()
        self.start_epoch = state["epoch"] + 1
        self.num_updates = state["num_updates"]
        self.best = state.get("best")
        logger.info("rank %d: resumed after epoch %d (%d updates)", self.rank, state["epoch"], self.num_updates)

    def _eval_model(self) -> torch.nn.Module:
        if self.ema is not None and self.cfg.train.ema.evaluate:
            return self.ema.module
        return self.objective.model

    def _save(self, directory: Path, epoch: int, metrics: dict[str, float]) -> None:
        ema_weights = self.ema is not None and self.cfg.train.ema.evaluate
        train_state = {
            "epoch": epoch,
            "num_updates": self.num_updates,
            "best": self.best,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            # model.pt holds the weights that were evaluated; keep the raw ones to resume exactly
            "model": {k: v.cpu() for k, v in self.objective.model.state_dict().items()} if ema_weights else None,
            # resuming reseeds with seed_everything(train.seed, epoch, rank) at every epoch start
            "rng": {"scheme": "seed_everything(train.seed, epoch, rank)", "seed": self.cfg.train.seed},
        }
        meta = {
            "model": self.ctx.model.to_meta(),
            "class_names": list(self.ctx.class_names),
            "weights": "ema" if ema_weights else "model",
            "epoch": epoch,
            "num_updates": self.num_updates,
            "metrics": metrics,
            "mlflow": {"tracking_uri": self.ctx.tracking_uri, "run_id": self.ctx.mlflow_run_id},
            "config": self.cfg.model_dump(mode="json"),
        }
        ckpt.save_checkpoint(
            directory,
            model_state=self._eval_model().state_dict(),
            heads_state=self.objective.extra_state_dict(),
            train_state=train_state,
            meta=meta,
        )

    # -- one epoch -----------------------------------------------------------------------------
    def _batches(self, split: str, epoch: int, train: bool):
        import ray.train

        shard = ray.train.get_dataset_shard(split)
        kwargs: dict[str, Any] = {"batch_size": self.cfg.train.batch_size, "drop_last": train,
                                  "prefetch_batches": self.cfg.data.prefetch_batches}
        if self.cfg.data.captions:  # a string column: collated by hand
            kwargs["collate_fn"] = TorchCollate(self.device)
        elif self.cfg.data.pin_memory and self.device.type == "cuda":
            kwargs["pin_memory"] = True
        if train and self.cfg.train.shuffle_buffer:
            kwargs.update(local_shuffle_buffer_size=self.cfg.train.shuffle_buffer, local_shuffle_seed=self.cfg.train.seed + epoch)
        # uint8 clips (data.clip_dtype) are normalised here, on the worker's device after the copy
        mean, std = self.cfg.data.mean, self.cfg.data.std
        return (normalize_batch(batch, mean, std) for batch in shard.iter_torch_batches(**kwargs))

    def _train_batches(self, epoch: int):
        """The iterator this epoch's steps draw from. With ``data.stream_epochs`` it is one iterator
        over a dataset spanning all epochs, kept across epochs (no pipeline restart at an epoch
        boundary); with ``debug.replay_first_batch`` every step gets (a copy of) the first batch."""
        if self.cfg.data.stream_epochs:
            if self._train_iter is None:
                self._train_iter = iter(self._batches("train", epoch, train=True))
            it = self._train_iter
        else:
            it = iter(self._batches("train", epoch, train=True))
        if not self.cfg.debug.replay_first_batch:
            return it
        if self._replay is None:
            self._replay = next(it, None)
        if self._replay is None:
            return iter(())
        return ({k: v.clone() if torch.is_tensor(v) else v for k, v in self._replay.items()}
                for _ in range(self.steps_per_epoch))

    def _maybe_inject_failure(self, epoch: int, step: int) -> None:
        dbg = self.cfg.debug
        if dbg.fail_at_epoch != epoch or step != min(1, self.steps_per_epoch - 1) or self.rank != self.world - 1:
            return
        marker = Path(self.ctx.fail_marker)
        if marker.exists():
            return
        import ray.train

        # die only once the controller has registered the previous checkpoint (a report still
        # queued on a dying worker is lost), so the test of recovery is deterministic
        ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED, timeout_s=120)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"epoch {epoch} step {step}\n")
        logger.warning("debug.fail_at_epoch=%d: worker rank %d exits now", epoch, self.rank)
        os._exit(1)

    def train_epoch(self, epoch: int) -> dict[str, float] | str:
        """One epoch; returns its metrics, or an error message when the loss became non-finite."""
        cfg = self.cfg
        self.ddp.train()
        self.optimizer.zero_grad(set_to_none=True)  # no partial accumulation carried across epochs
        accum = cfg.train.grad_accum
        # per-clip sums of every metric the objective returns (loss, acc, align_loss, ...)
        sums: dict[str, float] = {}
        window: dict[str, float] = {}
        n_epoch = n_window = data_s = first_s = 0.0
        t_window = time.perf_counter()
        bar = _progress(self.steps_per_epoch, f"epoch {epoch}", self.rank == 0 and self.ctx.progress)
        t_epoch = t_fetch = time.perf_counter()
        batches = self._train_batches(epoch)
        for step in range(self.steps_per_epoch):
            batch = next(batches, None)
            if batch is None:  # the epoch lost rows to unusable videos
                break
            wait = time.perf_counter() - t_fetch
            data_s += wait
            if step == 0:
                first_s = wait
            self._maybe_inject_failure(epoch, step)
            self.objective.set_progress((epoch + step / self.steps_per_epoch) / cfg.train.epochs)
            update = (step + 1) % accum == 0
            sync = self.ddp.no_sync() if (not update and hasattr(self.ddp, "no_sync")) else nullcontext()
            with sync:
                with self.precision.autocast():
                    loss, metrics = self.ddp(batch)
                if cfg.debug.nan_at_epoch == epoch and step == 0:
                    loss = loss * float("nan")
                finite = _all_reduce([float(torch.isfinite(loss.detach()).all())], self.device, dist.ReduceOp.MIN)[0]
                if not finite:
                    return (
                        f"loss is {loss.item()} at epoch {epoch}, step {step} (update {self.num_updates}); "
                        "training stopped, the last good checkpoint is kept"
                    )
                self.precision.scaler.scale(loss / accum).backward()
            if update:
                self._optimizer_step()
            n = batch["label"].shape[0]
            for key, value in metrics.items():
                for d in (sums, window):
                    d[key] = d.get(key, 0.0) + float(value) * n
            n_epoch, n_window = n_epoch + n, n_window + n
            if update and self.num_updates % cfg.train.log_every == 0 and n_window:
                dt = time.perf_counter() - t_window
                self.tracker.log_metrics(
                    {
                        **{f"train/{k}": v / n_window for k, v in window.items()},
                        "train/lr": self.current_lr(),
                        "train/clips_per_s": n_window * self.world / max(dt, 1e-9),
                    },
                    step=self.num_updates,
                )
                window, n_window, t_window = {}, 0.0, time.perf_counter()
            if bar is not None:
                bar.update(1)
            t_fetch = time.perf_counter()
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - t_epoch
        keys = sorted(sums)  # the same metric names on every worker (one objective)
        *totals, n, data_s, first_s = _all_reduce([sums[k] for k in keys] + [n_epoch, data_s, first_s], self.device)
        return {
            "train/clips_epoch": n,
            **{f"train/{k}_epoch": v / max(n, 1) for k, v in zip(keys, totals)},
            "train/clips_per_s_epoch": n / max(elapsed, 1e-9),
            "train/data_wait_frac": data_s / self.world / max(elapsed, 1e-9),
            "train/first_batch_s": first_s / self.world,  # the epoch's start-up wait (pipeline (re)start)
            "train/epoch_s": elapsed,
        }

    def _optimizer_step(self) -> None:
        scaler, clip = self.precision.scaler, self.cfg.optim.clip_grad
        if clip is not None:
            scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.objective.parameters(), clip)
        scaler.step(self.optimizer)
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.num_updates += 1
        self.scheduler.step_update(self.num_updates)
        if self.ema is not None:
            self.ema.update(self.objective.model, step=self.num_updates)

    def current_lr(self) -> float:
        return max(g["lr"] for g in self.optimizer.param_groups)

    @torch.inference_mode()
    def validate(self, split: str) -> tuple[dict[str, float], dict[str, Any] | None]:
        """Every worker runs the objective's ``eval_outputs`` on its shard; rank 0 gathers them
        and computes the objective's ``eval_metrics`` (classification: views averaged per video)."""
        model = self._eval_model()
        was_training = model.training
        model.eval()
        parts: dict[str, list[np.ndarray]] = {"index": [], "view": [], "label": []}
        for batch in self._batches(split, 0, train=False):
            with self.precision.autocast():
                outputs = self.objective.eval_outputs(model, batch)
            for key, value in outputs.items():
                parts.setdefault(key, []).append(value.float().cpu().numpy())
            parts["label"].append(batch["label"].cpu().numpy())
            parts["index"].append(batch["index"].cpu().numpy())
            parts["view"].append(batch["view"].cpu().numpy())
        model.train(was_training)
        gathered = [g for g in _gather(parts) if g["index"]]  # workers whose shard was empty add nothing
        if self.rank != 0 or not gathered:  # no clips at all: the caller stops the run
            return {}, None
        # rows in (index, view) order: metrics do not depend on which worker saw which view
        cat = sort_views({k: np.concatenate([a for g in gathered for a in g[k]]) for k in gathered[0]})
        full = self.objective.eval_metrics(cat, num_classes=len(self.ctx.class_names),
                                           captions=self.ctx.val_captions)
        return scalar_metrics(full, "val"), full

    # -- data checks -------------------------------------------------------------------------
    def _skip_mark(self) -> int:
        from videomamba.data.skips import skip_mark

        return skip_mark(self.scope) if self.rank == 0 else 0

    def _skip_problem(self, split: str, since: int, total: int, what: str, metrics: dict[str, Any],
                      epoch: int | None = None) -> str | None:
        """Rank 0: the skips of ``split`` in one pass as metrics, and the error message when they
        exceed ``data.max_skip_fraction``. A training epoch's skips are those of its (effective)
        ``epoch``: with streamed epochs, rows of the next epoch are decoded (and skipped) before
        this one ends; a validation pass's are those recorded since the mark ``since``."""
        from videomamba.data.skips import SkipLimitError, check_skips, skip_report

        rep = (skip_report(split, scope=self.scope, epoch=epoch) if epoch is not None
               else skip_report(split, scope=self.scope, since=since))
        metrics[f"data/{split}/skipped_frac"] = rep.skipped / total if total else 0.0
        try:
            check_skips(rep, total, self.cfg.data.max_skip_fraction, what)
        except SkipLimitError as err:
            return str(err)
        return None

    def _stop_together(self, problem: str | None) -> bool:
        """Rank 0 decides (``problem``), every rank learns it (one all-reduce), so all stop together."""
        self._problem = problem if self.rank == 0 else self._problem
        return _all_reduce([1.0 if (self.rank == 0 and problem) else 0.0], self.device)[0] > 0

    def _stop(self, epoch: int, message: str, status: str = STOP_DATA) -> dict[str, Any]:
        import ray.train

        if self.rank == 0:
            logger.error("%s", message)
            self.tracker.set_tags({"stop_reason": status})
            for split in {"train", self.ctx.val_split or "train"}:
                self.tracker.log_metrics(skip_metrics(split, self.scope), step=self.num_updates)
        ray.train.report({"epoch": epoch, "stopped": status})
        return {"status": status, "message": message}

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        import ray.train

        cfg = self.cfg
        epochs = cfg.train.epochs
        has_val = self.ctx.has_val
        train_size, val_size = self.ctx.train_size, self.ctx.val_size
        self._problem: str | None = None
        metric_checked = False
        for epoch in range(self.start_epoch, epochs):
            seed_everything(cfg.train.seed, epoch, self.rank)
            result = self.train_epoch(epoch)
            if isinstance(result, str):
                logger.error("rank %d: %s", self.rank, result)
                self.tracker.set_tags({"stop_reason": STOP_NONFINITE})
                ray.train.report({"epoch": epoch, "stopped": STOP_NONFINITE})
                return {"status": STOP_NONFINITE, "message": result}
            last = epoch == epochs - 1
            save = last or (epoch + 1) % cfg.train.checkpoint_every == 0
            metrics: dict[str, Any] = {"epoch": epoch, "step": self.num_updates, "train/lr": self.current_lr(), **result}
            problem = None
            if self.rank == 0:
                problem = self._skip_problem("train", 0, train_size, f"train split, epoch {epoch}", metrics, epoch=epoch)
                if result["train/clips_epoch"] == 0:
                    problem = f"epoch {epoch} yielded no training clips. " + (problem or "No video was counted as skipped.")
            if self._stop_together(problem):
                return self._stop(epoch, self._problem or "stopped by rank 0")
            full = None
            validated = False
            if has_val and (save or last or (epoch + 1) % cfg.train.eval_every == 0):
                mark = self._skip_mark()
                val, full = self.validate(self.ctx.val_split)
                metrics.update(val)
                validated = True
                if self.rank == 0:
                    split = self.ctx.val_split
                    problem = self._skip_problem(split, mark, val_size, f"{split} split, validation after epoch {epoch}", metrics)
                    if full is None:
                        problem = f"validation on the {split!r} split after epoch {epoch} yielded no clips. " + (
                            problem or "No video was counted as skipped.")
                if self._stop_together(problem):
                    return self._stop(epoch, self._problem or "stopped by rank 0")
            if not metric_checked and (validated or not has_val):
                metric_checked = True
                if self._stop_together(missing_metric_message(self.metric, metrics) if self.rank == 0 else None):
                    return self._stop(epoch, self._problem or "stopped by rank 0", STOP_METRIC)
            improved = False
            if self.rank == 0:
                score = metrics.get(self.metric)
                if score is not None and math.isfinite(score):
                    better = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
                    if better:
                        self.best, improved = score, True
                        metrics["best_epoch"] = epoch
                self.tracker.log_metrics({k: v for k, v in metrics.items() if k != "step"}, step=self.num_updates)
                for split in ("train", self.ctx.val_split) if has_val else ("train",):
                    self.tracker.log_metrics(skip_metrics(split, self.scope), step=self.num_updates)
                if improved and full is not None and "confusion" in full:
                    self._log_confusion(full, epoch)
                logger.info(
                    "epoch %d/%d: %s", epoch, epochs - 1,
                    ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)),
                )
                steady = metrics["train/data_wait_frac"] - metrics["train/first_batch_s"] / max(metrics["train/epoch_s"], 1e-9)
                hint = data_wait_hint(  # steady state: the first batch's wait is start-up
                    steady, epoch=epoch, epoch_s=metrics["train/epoch_s"],
                    clips_per_s=metrics["train/clips_per_s_epoch"], decode_cpus=self.ctx.decode_cpus,
                    prepared=self.ctx.data_prepared, clips_per_video=cfg.data.clips_per_video,
                )
                if hint:
                    logger.warning("%s", hint)
                    self.tracker.set_tags({"data_wait_hint": hint})
            if save:
                with tempfile.TemporaryDirectory() as tmp:
                    checkpoint = None
                    if self.rank == 0:
                        self._save(Path(tmp), epoch, metrics)
                        checkpoint = ray.train.Checkpoint.from_directory(tmp)
                    ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=ckpt.checkpoint_dir_name(epoch))
            else:
                ray.train.report(metrics)
        return {"status": "finished", "best": self.best, "epochs": epochs}

    def _log_confusion(self, full: dict[str, Any], epoch: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = plot_confusion(
                full["confusion"], list(self.ctx.class_names), Path(tmp) / "val_confusion_matrix.png",
                title=f"val, epoch {epoch}: top-1 {full['top1']:.3f}",
            )
            self.tracker.log_artifact(path, "plots")
        self.tracker.set_tags({"best_epoch": epoch})


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Ray Train training function (see the module docstring). Returns (rank 0) a status dict."""
    return _Trainer(config).run()
