"""``videomamba demo``: synthetic motion dataset -> train a tiny VideoMamba on a local Ray
(2 CPU workers, or one per GPU) -> multi-view evaluation -> everything in MLflow."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from videomamba.commands.train import print_summary

logger = logging.getLogger(__name__)

DEMO_CONFIG = "configs/demo.yaml"


def find_demo_config() -> Path | None:
    """``configs/demo.yaml`` in the working directory, else in the source checkout."""
    for base in (Path.cwd(), *Path(__file__).resolve().parents):
        candidate = base / DEMO_CONFIG
        if candidate.is_file():
            return candidate
    return None


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="end-to-end demo: synthetic data, training, evaluation, MLflow",
                              description=__doc__)
    p.add_argument("--config", "-c", help=f"demo config (default: {DEMO_CONFIG})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2; repeatable")
    p.add_argument("--num-workers", type=int, help="training workers (default: GPUs found, else 2)")
    p.add_argument("--videos-per-class", type=int, default=512, help="synthetic train videos per class")
    p.add_argument("--val-videos-per-class", type=int, default=32)
    p.add_argument("--classes", type=int, default=2, help="synthetic classes (2..16; more need more training)")
    p.add_argument("--frames", type=int, default=16, help="frames per synthetic video")
    p.set_defaults(func=run_command)


def prepare_data(cfg, args) -> None:
    """Write the synthetic dataset where the config's manifests point (again only if its
    parameters changed)."""
    import json

    from videomamba.data import make_synthetic_dataset

    data = cfg.data
    out = Path(data.train_manifest).parent
    params = {
        "classes": args.classes, "videos_per_class": args.videos_per_class,
        "val_videos_per_class": args.val_videos_per_class, "frames": args.frames,
        "size": max(16, data.img_size + data.img_size % 2), "seed": cfg.train.seed,
    }
    stamp = out / "demo_params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params and Path(data.val_manifest).is_file():
        logger.info("synthetic data already in %s", out)
        return
    print(f"writing the synthetic dataset to {out} ...", flush=True)
    make_synthetic_dataset(str(out), progress=sys.stderr.isatty(), **params)
    stamp.write_text(json.dumps(params))


def run_command(args) -> int:
    from videomamba.train.config import ConfigError, absolute_paths, load_config

    t0 = time.perf_counter()
    path = args.config or find_demo_config()
    if path is None:
        print(f"error: {DEMO_CONFIG} not found; pass --config", file=sys.stderr)
        return 2
    overrides = list(args.overrides)
    if args.num_workers is None:
        import torch

        if torch.cuda.is_available():
            overrides += [f"scaling.num_workers={torch.cuda.device_count()}", "scaling.gpus_per_worker=1"]
    else:
        overrides.append(f"scaling.num_workers={args.num_workers}")
    try:
        cfg = absolute_paths(load_config(path, overrides))  # checkpoints then work from anywhere
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from videomamba.cluster.connect import init_ray
    from videomamba.data.splits import Splits
    from videomamba.train.launcher import run_training, train_cpus

    prepare_data(cfg, args)
    init_ray(train_cpus(cfg))
    device = "GPU" if cfg.scaling.gpus_per_worker else "CPU"
    print(f"training on {cfg.scaling.num_workers} {device} worker(s), {cfg.train.epochs} epochs ...", flush=True)
    run = run_training(cfg)
    elapsed = time.perf_counter() - t0
    print_summary(run)
    chance = 1.0 / len(Splits(cfg.data).class_names())
    top1 = (run.evaluation or {}).get(f"{cfg.eval.split}/top1", run.best_metrics.get("val/top1"))
    print(f"\nDEMO RESULT: top-1 {top1:.3f} on the held-out synthetic videos (chance {chance:.3f}), "
          f"wall time {elapsed / 60:.1f} min")
    print(f"  predict: videomamba predict --checkpoint {run.best_checkpoint} {Path(cfg.data.val_manifest).parent / 'val' / '00000.mp4'}")
    return 0
