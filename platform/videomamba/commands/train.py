"""``videomamba train``: train on Ray Train with MLflow tracking (see ``videomamba.train``)."""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)


def add_config_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", "-c", required=required, help="training config YAML")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value (dotted key, YAML value), e.g. --set train.epochs=5; repeatable",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a VideoMamba model on Ray Train", description=__doc__)
    add_config_arguments(p)
    p.add_argument("--num-workers", type=int, help="training workers (scaling.num_workers)")
    p.add_argument("--gpus-per-worker", type=float, help="GPUs per worker (scaling.gpus_per_worker; 0: CPU)")
    p.add_argument(
        "--resume", nargs="?", const=True, default=False, metavar="RUN_NAME",
        help="continue an interrupted run (default: the latest run of this experiment) in the same MLflow run",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and print the resolved config, then exit")
    p.set_defaults(func=run_command)


def resolve_config(args):
    """Config from ``--config`` + ``--set`` + the CLI shortcuts (validated; raises ConfigError)."""
    from videomamba.train.config import load_config

    overrides = list(args.overrides)
    if getattr(args, "num_workers", None) is not None:
        overrides.append(f"scaling.num_workers={args.num_workers}")
    if getattr(args, "gpus_per_worker", None) is not None:
        overrides.append(f"scaling.gpus_per_worker={args.gpus_per_worker}")
    if isinstance(getattr(args, "resume", False), str):
        overrides.append(f"run.name={args.resume}")
    return load_config(args.config, overrides)


def print_summary(run) -> None:
    print(f"\nrun {run.name}: {run.path}")
    if run.best_checkpoint:
        print(f"best checkpoint: {run.best_checkpoint}")
        shown = {k: v for k, v in run.best_metrics.items() if k.startswith("val/") and isinstance(v, float)}
        if shown:
            print("  " + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()))
    if run.evaluation:
        print("evaluation: " + ", ".join(f"{k}={v:.4f}" for k, v in run.evaluation.items() if k.endswith(("top1", "top5", "mean_class_acc"))))
    print(f"MLflow run {run.mlflow_run_id} in {run.tracking_uri}")
    print(f"  browse: videomamba ui --tracking-uri '{run.tracking_uri}'")


def run_command(args) -> int:
    from videomamba.train.config import ConfigError, to_yaml

    try:
        cfg = resolve_config(args)
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(to_yaml(cfg), end="")
        return 0
    from videomamba.train.launcher import RunExistsError, init_ray, run_training
    from videomamba.train.checkpointing import UnsafeCheckpointError
    from videomamba.train.loop import NonFiniteLossError
    from videomamba.train.resources import PlacementTimeoutError

    init_ray(cfg)
    try:
        run = run_training(cfg, resume=bool(args.resume))
    except (ConfigError, RunExistsError, NonFiniteLossError, UnsafeCheckpointError, PlacementTimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_summary(run)
    return 0
