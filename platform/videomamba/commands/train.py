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
    p.add_argument("--force", action="store_true", help="with --resume: run again even if the run is complete")
    p.add_argument("--dry-run", action="store_true", help="run the real run's checks (config, data files, model on the meta device, "
                   "placeholders) without starting Ray, print the resolved config, exit")
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


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"


# what the end-of-run summary shows of an evaluation (classification; retrieval both ways)
SUMMARY_KEYS = ("top1", "top5", "mean_class_acc", "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr",
                "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr")


def print_summary(run) -> None:
    print(f"\nrun {run.name}: {run.path}")
    if run.best_checkpoint:
        print(f"best checkpoint: {run.best_checkpoint}")
        shown = {k: v for k, v in run.best_metrics.items() if k.startswith("val/") and isinstance(v, float)}
        if shown:
            print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()))
    if run.evaluation:
        keys = [k for k in run.evaluation if k.rsplit("/", 1)[-1] in SUMMARY_KEYS]
        keys.sort(key=lambda k: SUMMARY_KEYS.index(k.rsplit("/", 1)[-1]))
        print("evaluation: " + ", ".join(f"{k}={_fmt(run.evaluation[k])}" for k in keys))
    print_skips(getattr(run, "skips", {}))
    print(f"MLflow run {run.mlflow_run_id} in {run.tracking_uri}")
    print(f"  browse: videomamba ui --tracking-uri '{run.tracking_uri}'")


def print_skips(skips: dict) -> None:
    """``skipped videos`` lines of a run summary: per split, counts by reason (all epochs summed)."""
    lines = []
    for split, rep in skips.items():
        if rep.get("skipped") or rep.get("padded"):
            reasons = ", ".join(f"{r} {n}" for r, n in rep.get("by_reason", {}).items())
            line = f"  {split}: {rep['skipped']} skipped" + (f" ({reasons})" if reasons else "")
            if rep.get("padded"):
                line += f", {rep['padded']} padded (short)"
            lines.append(line)
            lines += [f"      e.g. {path} ({reason})" for path, reason in rep.get("examples", [])[:3]]
    print("skipped videos (all epochs):" if lines else "skipped videos: none")
    for line in lines:
        print(line)


def resume_command(args, name: str) -> str:
    """The exact command line that resumes run ``name`` (this invocation's options + ``--resume``)."""
    import shlex

    parts = ["videomamba", "train", "--config", args.config]
    for item in args.overrides:
        parts += ["--set", item]
    if args.num_workers is not None:
        parts += ["--num-workers", str(args.num_workers)]
    if args.gpus_per_worker is not None:
        parts += ["--gpus-per-worker", f"{args.gpus_per_worker:g}"]
    parts += ["--resume", name]
    return " ".join(shlex.quote(p) for p in parts)


def run_command(args) -> int:
    """Errors (a bad config: exit 2; a failed run: 1) are reported by the CLI's error layer."""
    from videomamba.train.config import to_yaml

    cfg = resolve_config(args)
    if args.dry_run:
        from videomamba.train.config import absolute_paths
        from videomamba.train.preflight import preflight

        report = preflight(cfg)  # what the real run checks before Ray starts (ConfigError: exit 2)
        print(to_yaml(absolute_paths(cfg)), end="")
        print("# preflight passed (no Ray started):")
        for line in report.lines():
            print(f"#   {line}")
        return 0
    from videomamba.train.launcher import RunInterrupted, resume_state, run_training

    if args.resume and not args.force:
        state = resume_state(cfg)
        if state is not None and state.complete:
            print(f"run {state.name} is complete ({state.epochs} epochs); nothing to do. "
                  f"Raise train.epochs to train on (--set train.epochs=N), or pass --force to re-run "
                  "its final evaluation and model logging.")
            return 0
    try:
        run = run_training(cfg, resume=bool(args.resume))
    except RunInterrupted as stop:
        where = (f"after epoch {stop.epoch}; its checkpoint is kept: {stop.checkpoint}" if stop.epoch is not None
                 else "before its first checkpoint (nothing to resume from yet)")
        print(f"\ninterrupted: run {stop.name} stopped {where}", file=sys.stderr)
        print("MLflow run marked KILLED. Resume with:", file=sys.stderr)
        print(f"  {resume_command(args, stop.name)}", file=sys.stderr)
        return 130
    print_summary(run)
    return 0
