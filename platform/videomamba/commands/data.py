"""``videomamba data synth|check|bench``: synthetic data, manifest health check, pipeline benchmark."""

from __future__ import annotations

import argparse
import json
import logging
import os

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="video data: synth | check | bench")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = sub.add_parser("synth", help="write a synthetic dataset whose label is in the temporal order")
    p.add_argument("out_dir")
    p.add_argument("--classes", type=int, default=4, help="K in [2, 16] (default 4)")
    p.add_argument("--videos-per-class", type=int, default=16, help="train videos per class")
    p.add_argument("--val-videos-per-class", type=int, default=None, help="default max(2, N/4)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--codec", default=None, help="libx264 (default when available) or mpeg4")
    p.add_argument("--captions", type=int, default=1, help="captions of the motion per video (1-3 phrasings)")
    p.add_argument("--test-videos-per-class", type=int, default=0, help="also write a held-out test split")
    p.set_defaults(func=_synth)

    p = sub.add_parser("check", help="decode every row of a manifest on Ray and summarise")
    _manifest_args(p)
    p.add_argument("--full", action="store_true", help="decode every frame (default: first/middle/last)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per decode task")
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.set_defaults(func=_check)

    p = sub.add_parser("bench", help="clips/s: Ray Data pipeline vs a plain single-process decord loop")
    _manifest_args(p)
    p.add_argument("--config", default=None, help="YAML with a data: section (or a bare DataConfig)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--num-frames", type=int, default=None)
    p.add_argument("--img-size", type=int, default=None)
    p.add_argument("--sampling", choices=["segment", "dense"], default=None)
    p.add_argument("--randaugment", default=None, help="timm spec, or 'none'")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2, help="pipeline epochs (first one cold)")
    p.add_argument("--record", default=None, help="append a row to this markdown file")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench)


def _manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest")
    p.add_argument("--classes-file", default=None)
    p.add_argument("--path-prefix", default=None)
    p.add_argument("--format", default="auto", choices=["auto", "csv", "jsonl", "list", "ssv2_json"])


def _init_ray() -> None:
    """Join ``RAY_ADDRESS`` if set, else start a local Ray."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), configure_logging=False)


def _synth(args) -> int:
    from videomamba.data.synth import make_synthetic_dataset

    out = make_synthetic_dataset(
        args.out_dir, args.classes, args.videos_per_class, val_videos_per_class=args.val_videos_per_class,
        frames=args.frames, size=args.size, fps=args.fps, seed=args.seed, codec=args.codec, progress=True,
        captions_per_video=args.captions, test_videos_per_class=args.test_videos_per_class,
    )
    print(f"train manifest: {out.train_manifest}\nval manifest:   {out.val_manifest}\nclasses:        {out.classes_file}")
    if out.test_manifest:
        print(f"test manifest:  {out.test_manifest}")
    return 0


def _check(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from videomamba.data.check import check_manifest

    _init_ray()
    rep = check_manifest(args.manifest, classes_file=args.classes_file, path_prefix=args.path_prefix,
                         fmt=args.format, full=args.full, num_cpus=args.num_cpus)
    console = Console()
    summary = Table(title=f"{args.manifest}: {rep.rows} rows")
    summary.add_column("")
    summary.add_column("value", justify="right")
    summary.add_row("readable", f"{rep.ok}")
    for reason, n in rep.reasons.items():
        summary.add_row(f"[red]unreadable: {reason}", f"{n}")
    for name, value in rep.duration_stats().items():
        summary.add_row(f"duration {name}" + (" (h)" if name == "total_hours" else " (s)"), f"{value:.2f}")
    if rep.frames:
        summary.add_row("frames min / max", f"{min(rep.frames)} / {max(rep.frames)}")
    console.print(summary)
    rotated = {k: v for k, v in rep.rotations.items() if k}
    tables = [("resolution (WxH)", rep.resolutions), ("fps", rep.fps)]
    if rotated:  # display matrix: frames are decoded rotated, as players show them
        tables.append(("rotation (degrees clockwise)", rep.rotations))
    for title, counts in tables:
        table = Table(title=title)
        table.add_column(title)
        table.add_column("videos", justify="right")
        for key, n in list(counts.items())[:10]:
            table.add_row(str(key), str(n))
        if len(counts) > 10:
            table.add_row(f"... {len(counts) - 10} more", "")
        console.print(table)
    balance = Table(title="class balance")
    for col in ("label", "name", "videos"):
        balance.add_column(col, justify="right" if col != "name" else "left")
    labels = range(len(rep.class_names)) if rep.class_names else rep.class_counts
    for label in labels:
        name = rep.class_names[label] if rep.class_names else ""
        n = rep.class_counts.get(label, 0)
        balance.add_row(str(label), name, f"[red]{n}" if n == 0 else str(n))
    console.print(balance)
    if rep.bad:
        bad = Table(title="unreadable videos")
        for col in ("line", "path", "reason", "detail"):
            bad.add_column(col)
        for line, path, reason, detail in rep.bad[:50]:
            bad.add_row(str(line), path, reason, detail[:80])
        console.print(bad)
    if rep.warnings:
        warn = Table(title="damaged videos (kept)")
        for col in ("line", "path", "warning"):
            warn.add_column(col, overflow="fold")
        for line, path, message in rep.warnings[:50]:
            warn.add_row(str(line), path, message)
        console.print(warn)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep.__dict__ | {"fps": {str(k): v for k, v in rep.fps.items()}}, f, indent=1)
    return 1 if rep.bad else 0


def _bench_config(args):
    import yaml

    from videomamba.data.config import DataConfig

    raw = {}
    if args.config:
        with open(args.config) as f:
            raw = yaml.safe_load(f) or {}
        raw = raw.get("data", raw)
    overrides = {"num_frames": args.num_frames, "img_size": args.img_size, "sampling": args.sampling,
                 "classes_file": args.classes_file, "path_prefix": args.path_prefix}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if args.randaugment is not None:
        raw["randaugment"] = None if args.randaugment.lower() == "none" else args.randaugment
    raw["manifest_format"] = args.format
    return DataConfig(**raw)


def _bench(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from videomamba.data.bench import record, run_bench

    cfg = _bench_config(args)
    _init_ray()
    res = run_bench(cfg, args.manifest, split=args.split, batch_size=args.batch_size, epochs=args.epochs)
    table = Table(title=f"data pipeline: {res.videos} videos, T={res.num_frames}, {res.img_size}px "
                        f"({res.machine}, load avg {res.load_avg:.0f})")
    table.add_column("loader")
    table.add_column("clips/s", justify="right")
    table.add_column("CPUs", justify="right")
    table.add_column("clips/s per CPU", justify="right")
    table.add_row("plain decord loop (1 process)", f"{res.plain_clips_per_s:.1f}", "1",
                  f"{res.plain_clips_per_s:.1f} ({res.plain_clips_per_cpu_s:.1f} per CPU-s)")
    table.add_row("Ray Data, cold epoch", f"{res.ray_cold_clips_per_s:.1f}", f"{res.ray_cpus:g}",
                  f"{res.ray_cold_clips_per_s / res.ray_cpus:.1f}")
    table.add_row("Ray Data, warm epochs", f"{res.ray_clips_per_s:.1f}", f"{res.ray_cpus:g}",
                  f"{res.ray_clips_per_s_per_cpu:.1f}")
    Console().print(table)
    if args.record:
        record(res, args.record)
    if rep.warnings:
        warn = Table(title="damaged videos (kept)")
        for col in ("line", "path", "warning"):
            warn.add_column(col, overflow="fold")
        for line, path, message in rep.warnings[:50]:
            warn.add_row(str(line), path, message)
        console.print(warn)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.as_dict(), f, indent=1)
    return 0
