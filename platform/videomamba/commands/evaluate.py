"""``videomamba evaluate``: multi-view evaluation of a checkpoint on Ray (Ray Data batch inference
on an actor pool, logits averaged over clips x crops per video)."""

from __future__ import annotations

import json
import math

from videomamba.commands.train import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a checkpoint (multi-view) on Ray", description=__doc__)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint directory or URI (with model.pt, meta.json), or an MLflow model URI "
                        "(models:/NAME/VERSION, runs:/RUN_ID/model)")
    p.add_argument("--tracking-uri", help="MLflow store for models:/ and runs:/ URIs "
                                          "(default: $MLFLOW_TRACKING_URI, else sqlite:///runs/mlflow.db)")
    p.add_argument("--manifest", help="manifest to evaluate (default: the split's manifest in the config)")
    p.add_argument("--split", default=None, help="views and manifest of this split (default: eval.split, 'test')")
    add_config_arguments(p, required=False)
    p.add_argument("--batch-size", type=int, help="clips per inference batch (eval.batch_size)")
    p.add_argument("--num-actors", type=int, help="predictor actors (eval.num_actors)")
    p.add_argument("--log-mlflow", action="store_true", help="log the metrics into the checkpoint's MLflow run")
    p.add_argument("--output", help="write the metrics as JSON here")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    from videomamba.commands._common import checkpoint_arg, manifest_arg
    from videomamba.errors import UsageError
    from videomamba.checkpoints import portable_data_config
    from videomamba.checkpoints import local_checkpoint_dir, read_meta
    from videomamba.train.config import load_config

    checkpoint = checkpoint_arg(args.checkpoint)
    with local_checkpoint_dir(checkpoint, args.tracking_uri) as d:
        meta = read_meta(d)
    overrides = list(args.overrides)
    if args.batch_size:
        overrides.append(f"eval.batch_size={args.batch_size}")
    if args.num_actors:
        overrides.append(f"eval.num_actors={args.num_actors}")
    if args.split:
        overrides.append(f"eval.split={args.split}")
    # the checkpoint's own config, unless another one is given (ConfigError: exit 2)
    cfg = load_config(args.config, overrides, base=None if args.config else meta["config"])
    data_cfg = portable_data_config(cfg.data, meta)
    split = cfg.eval.split
    manifest = args.manifest
    if manifest is None:
        manifest = getattr(data_cfg, f"{split}_manifest", None)
        if not manifest:
            raise UsageError(f"no --manifest and data.{split}_manifest is not set",
                             "pass --manifest FILE (or --split val|train)")
        option = f"data.{split}_manifest (from the {'config' if args.config else 'checkpoint'})"
    else:
        option = "--manifest"
    manifest_arg(manifest, option, classes_file=data_cfg.classes_file, path_prefix=data_cfg.path_prefix,
                 fmt=data_cfg.manifest_format)

    from videomamba.cluster.connect import init_ray
    from videomamba.inference.evaluate import evaluate_checkpoint
    from videomamba.train.launcher import log_evaluation

    if args.log_mlflow and not (meta.get("mlflow") or {}).get("run_id"):
        raise UsageError(f"--log-mlflow: the checkpoint {checkpoint} records no MLflow run")
    init_ray(cfg.eval.num_actors + 2)  # predictor actors and decode tasks
    full = evaluate_checkpoint(
        checkpoint, data_cfg=data_cfg, split=split, manifest=manifest,
        batch_size=cfg.eval.batch_size, num_actors=cfg.eval.num_actors, seed=cfg.train.seed,
        tracking_uri=args.tracking_uri,
    )
    if full.get("task") == "retrieval":
        print_retrieval(full)
    else:
        print_classification(full)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(json_safe(full), f, indent=2, allow_nan=False)
    if args.log_mlflow:
        from videomamba.train.tracking import RunTracker

        run = meta["mlflow"]
        log_evaluation(RunTracker(run["tracking_uri"], run["run_id"]), full)
        print(f"logged into MLflow run {run['run_id']}")
    return 0


def json_safe(value):
    """Arrays to lists and non-finite floats (an absent class's accuracy) to ``None`` (JSON null):
    strict JSON readers reject ``NaN``."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_retrieval(full: dict) -> None:
    print(f"{full['split']}: zero-shot retrieval, {full['num_videos']} videos, {full['num_captions']} captions")
    for d, name in (("t2v", "text->video"), ("v2t", "video->text")):
        print(f"  {name}: R@1 {full[d + '_r1']:.4f}  R@5 {full[d + '_r5']:.4f}  R@10 {full[d + '_r10']:.4f}  "
              f"median rank {full[d + '_medr']:g}")
    _print_skipped(full)


def print_classification(full: dict) -> None:
    names = full["class_names"]
    print(f"{full['split']}: {full['num_videos']} videos, {full['num_views']} views")
    print(f"  top-1 {full['top1']:.4f}  top-5 {full['top5']:.4f}  mean class acc {full['mean_class_acc']:.4f}")
    for name, acc in zip(names, full["per_class_acc"]):
        print(f"  {name:>24s}  {acc:.3f}" if acc == acc else f"  {name:>24s}  (absent)")
    _print_skipped(full)


def _print_skipped(full: dict) -> None:
    rep = full.get("skip_report") or {}
    if not rep.get("skipped"):
        print("  skipped videos: none")
        return
    reasons = ", ".join(f"{r} {n}" for r, n in rep.get("by_reason", {}).items())
    print(f"  skipped videos: {rep['skipped']} ({reasons})")
    for path, reason in rep.get("examples", [])[:5]:
        print(f"    {path} ({reason})")
