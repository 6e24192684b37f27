"""``videomamba data synth|check|bench``: synthetic data, manifest health check, pipeline benchmark."""

from __future__ import annotations

import argparse
import json
import logging
import os

from videomamba.cluster.connect import init_ray

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="video and image data: synth | synth-images | check | prepare | bench")
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

    p = sub.add_parser("synth-images", help="write synthetic class-per-folder images (label: bar orientation or shape)")
    p.add_argument("out_dir")
    p.add_argument("--classes", type=int, default=4, help="orientation: 2-8, shape: 2-6 (default 4)")
    p.add_argument("--property", choices=["orientation", "shape"], default="orientation")
    p.add_argument("--images-per-class", type=int, default=64, help="train images per class")
    p.add_argument("--val-per-class", type=int, default=None, help="default max(2, N/4)")
    p.add_argument("--test-per-class", type=int, default=0, help="also write a held-out test split")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_synth_images)

    p = sub.add_parser("check", help="decode every video or image of a manifest (or image class folders) on Ray "
                       "and summarise; list unreadable and odd files")
    _manifest_args(p)
    _kind_arg(p)
    p.add_argument("--full", action="store_true", help="videos: decode every frame (default: first/middle/last)")
    p.add_argument("--min-size", type=int, default=0,
                   help="images: list those with a side shorter than this (px; e.g. the training img_size)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per decode task")
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.set_defaults(func=_check)

    p = sub.add_parser(
        "prepare", help="rewrite a dataset for fast training decode (resize, short GOPs, H.264), on Ray Data",
        description="Transcode every video of SRC_MANIFEST into OUT_DIR (short side scaled down, a keyframe "
        "every --keyint frames, optional fps cap and time-window trim, audio dropped, H.264 yuv420p) as a Ray "
        "Data job; write OUT_DIR/<manifest>.csv with the same labels and captions and a report. Resumable: "
        "finished outputs with the same settings are kept. Unreadable sources are skipped and listed.",
    )
    p.add_argument("manifest", metavar="SRC_MANIFEST")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--classes-file", default=None)
    p.add_argument("--path-prefix", default=None)
    p.add_argument("--format", default="auto", choices=["auto", "csv", "jsonl", "list", "ssv2_json"])
    p.add_argument("--short-side", type=int, default=None, help="px, never upscaled; 0 keeps the size (default 256)")
    p.add_argument("--keyint", type=int, default=None, help="frames between keyframes (default 8)")
    p.add_argument("--max-fps", type=float, default=None, help="frame-rate cap (default: keep)")
    p.add_argument("--no-trim", dest="trim", action="store_false", default=None,
                   help="keep whole videos (rows keep start_sec/end_sec) instead of cutting to each row's window")
    p.add_argument("--crf", type=int, default=None, help="x264 CRF (default 23)")
    p.add_argument("--preset", default=None, help="x264 preset (default veryfast)")
    p.add_argument("--tune", default=None, help="x264 tune (default fastdecode; 'none' for x264's default)")
    p.add_argument("--bframes", type=int, default=None, help="x264 B-frames (default 0; -1 for the preset's)")
    p.add_argument("--threads", type=int, default=None, help="CPUs per video (default 1)")
    p.add_argument("--resources", default=None, help='extra Ray resources per task as JSON, e.g. \'{"decode_node": 0.001}\'')
    p.add_argument("--max-failed", type=float, default=0.5, help="fail (exit 1) when more than this fraction failed")
    p.set_defaults(func=_prepare)

    p = sub.add_parser("bench", help="clips/s (images/s): Ray Data pipeline vs bare decode loops on the same cores; "
                       "raw vs prepared footage")
    _manifest_args(p)
    _kind_arg(p)
    p.add_argument("--config", default=None, help="YAML with a data: section (or a bare DataConfig)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--num-frames", type=int, default=None)
    p.add_argument("--img-size", type=int, default=None)
    p.add_argument("--sampling", choices=["segment", "dense"], default=None)
    p.add_argument("--randaugment", default=None, help="timm spec, or 'none' (images: data.image.auto_augment)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4,
                   help="epochs of the pipeline and the bare loop (streamed: the first and the last are start-up "
                   "and drain, the steady state is the ones between)")
    p.add_argument("--no-stream", dest="stream", action="store_false",
                   help="one Ray Data execution per epoch (old training behaviour) instead of one spanning the epochs")
    p.add_argument("--plain-rows", type=int, default=None, help="rows for the single-process plain loops (default all)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray started here (and bare-loop processes)")
    p.add_argument("--decode-concurrency", type=int, default=None, help="max concurrent decode tasks")
    p.add_argument("--compare-order", action="store_true",
                   help="instead: ordered (data.deterministic) vs unordered delivery, alternating warm epochs")
    p.add_argument("--rounds", type=int, default=3, help="--compare-order: warm epochs of each")
    p.add_argument("--prepared", default=None, metavar="PREPARED_MANIFEST",
                   help="the `data prepare` output of the same videos: also time the plain loop on it (x raw)")
    p.add_argument("--clip-dtype", choices=["uint8", "float32"], default=None,
                   help="data.clip_dtype of the pipeline (default uint8: normalised by the consumer)")
    p.add_argument("--compare-dtype", action="store_true",
                   help="also run the pipeline with the other clip dtype (uint8 vs float32), same Ray instance")
    p.add_argument("--no-bare", dest="bare", action="store_false",
                   help="skip the bare multi-process loop (the pipeline's ideal on the same cores)")
    p.add_argument("--record", default=None, help="append a row to this markdown file")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench)


def _manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="video/image manifest (CSV/JSONL/list), an image class-per-folder "
                   "directory, or ImageNet's LOC_val_solution.csv")
    p.add_argument("--classes-file", default=None)
    p.add_argument("--path-prefix", default=None)
    p.add_argument("--format", default="auto", choices=["auto", "csv", "jsonl", "list", "ssv2_json"])


def _kind_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["auto", "video", "image"], default="auto",
                   help="auto: image for a directory, ImageNet's validation CSV or a manifest of image files")


def _is_image(args) -> bool:
    """``--kind``, or (auto) whether the manifest argument holds images; a missing source is an error."""
    from videomamba import storage
    from videomamba.data.images import is_image_source
    from videomamba.errors import UsageError

    kind = getattr(args, "kind", "auto")
    if kind != "auto":
        return kind == "image"
    if not storage.is_uri(args.manifest) and not os.path.exists(args.manifest):
        raise UsageError(f"manifest {args.manifest}: no such manifest file or image directory")
    return is_image_source(args.manifest, classes_file=args.classes_file, path_prefix=args.path_prefix, fmt=args.format)


def _image_source_arg(args) -> None:
    """The image source is readable (class folders, manifest rows), else UsageError naming it."""
    from videomamba.data.config import DataConfig
    from videomamba.data.images import read_records
    from videomamba.data.manifest import ManifestError
    from videomamba.errors import UsageError

    try:
        read_records(DataConfig(kind="image", train_manifest=args.manifest, classes_file=args.classes_file,
                                path_prefix=args.path_prefix, manifest_format=args.format), "train")
    except FileNotFoundError as err:
        raise UsageError(f"manifest {args.manifest}: {err}") from None
    except (ManifestError, ValueError) as err:
        raise UsageError(f"manifest: {err}") from None


def _check_synth_args(args) -> None:
    """The generator's limits, as option errors (before any video is written)."""
    from videomamba.data.synth import _PHRASINGS, _num_windows
    from videomamba.errors import UsageError

    if not 2 <= args.classes <= 16:
        raise UsageError(f"--classes {args.classes}: the synthetic generator makes 2 to 16 classes "
                         "(one motion direction bit per time window)")
    need = 2 * _num_windows(args.classes)
    if args.frames < need:
        raise UsageError(f"--frames {args.frames}: {args.classes} classes need at least {need} frames")
    if args.size % 2 or args.size < 16:
        raise UsageError(f"--size {args.size}: must be even and >= 16")
    if not 1 <= args.captions <= len(_PHRASINGS):
        raise UsageError(f"--captions {args.captions}: must be 1 to {len(_PHRASINGS)}")
    for name in ("videos_per_class", "val_videos_per_class", "test_videos_per_class", "fps"):
        value = getattr(args, name)
        if value is not None and value < (1 if name in ("videos_per_class", "fps") else 0):
            raise UsageError(f"--{name.replace('_', '-')} {value}: must be >= {1 if name in ('videos_per_class', 'fps') else 0}")


def _synth(args) -> int:
    from videomamba.data.synth import make_synthetic_dataset

    _check_synth_args(args)
    out = make_synthetic_dataset(
        args.out_dir, args.classes, args.videos_per_class, val_videos_per_class=args.val_videos_per_class,
        frames=args.frames, size=args.size, fps=args.fps, seed=args.seed, codec=args.codec, progress=True,
        captions_per_video=args.captions, test_videos_per_class=args.test_videos_per_class,
    )
    print(f"train manifest: {out.train_manifest}\nval manifest:   {out.val_manifest}\nclasses:        {out.classes_file}")
    if out.test_manifest:
        print(f"test manifest:  {out.test_manifest}")
    return 0


def _synth_images(args) -> int:
    from videomamba.data.synth_images import make_synthetic_images

    out = make_synthetic_images(args.out_dir, args.classes, args.images_per_class, property=args.property,
                                val_per_class=args.val_per_class, test_per_class=args.test_per_class,
                                size=args.size, seed=args.seed)
    print(f"train folder: {out.train_dir}\nval folder:   {out.val_dir}\nclasses:      {out.classes_file}")
    if out.test_dir:
        print(f"test folder:  {out.test_dir}")
    return 0


def _check(args) -> int:
    from rich.console import Console

    from videomamba.commands._common import manifest_arg
    from videomamba.data.check import check_manifest

    if _is_image(args):
        return _check_images(args)
    manifest_arg(args.manifest, "manifest", classes_file=args.classes_file, path_prefix=args.path_prefix, fmt=args.format)
    init_ray(configure_logging=False)
    rep = check_manifest(args.manifest, classes_file=args.classes_file, path_prefix=args.path_prefix,
                         fmt=args.format, full=args.full, num_cpus=args.num_cpus)
    console = Console()
    summary = _summary_table(rep, f"{args.manifest}: {rep.rows} rows")
    for name, value in rep.duration_stats().items():
        summary.add_row(f"duration {name}" + (" (h)" if name == "total_hours" else " (s)"), f"{value:.2f}")
    if rep.frames:
        summary.add_row("frames min / max", f"{min(rep.frames)} / {max(rep.frames)}")
    console.print(summary)
    tables = [("resolution (WxH)", rep.resolutions), ("fps", rep.fps)]
    if any(rep.rotations):  # display matrix: frames are decoded rotated, as players show them
        tables.append(("rotation (degrees clockwise)", rep.rotations))
    for title, counts in tables:
        console.print(_counts_table(title, title, counts, "videos"))
    console.print(_balance_table(rep, "videos"))
    _print_files(rep, f"unreadable videos: {len(rep.bad)} of {rep.rows}", f"damaged videos (kept): {len(rep.warnings)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep.__dict__ | {"fps": {str(k): v for k, v in rep.fps.items()}}, f, indent=1)
    return 1 if rep.bad else 0


def _summary_table(rep, title: str):
    """Readable rows and unreadable ones per reason; callers add rows."""
    from rich.table import Table

    summary = Table(title=title)
    summary.add_column("")
    summary.add_column("value", justify="right")
    summary.add_row("readable", f"{rep.ok}")
    for reason, n in rep.reasons.items():
        summary.add_row(f"[red]unreadable: {reason}", f"{n}")
    return summary


def _counts_table(title: str, column: str, counts: dict, unit: str, limit: int = 10):
    from rich.table import Table

    table = Table(title=title)
    table.add_column(column)
    table.add_column(unit, justify="right")
    for key, n in list(counts.items())[:limit]:
        table.add_row(str(key), str(n))
    if len(counts) > limit:
        table.add_row(f"... {len(counts) - limit} more", "")
    return table


def _balance_table(rep, unit: str):
    from rich.table import Table

    balance = Table(title="class balance")
    for col in ("label", "name", unit):
        balance.add_column(col, justify="right" if col != "name" else "left")
    for label in (range(len(rep.class_names)) if rep.class_names else rep.class_counts):
        n = rep.class_counts.get(label, 0)
        balance.add_row(str(label), rep.class_names[label] if rep.class_names else "", f"[red]{n}" if n == 0 else str(n))
    return balance


def _print_files(rep, bad_header: str, warnings_header: str) -> None:
    """Unreadable rows (with the count per reason) and kept-but-noted rows as plain lines, never a
    table: every full path, whatever the terminal width (or none). Rows of a class-per-folder
    directory have no manifest line: their path says where they are."""
    where = (lambda line: "") if os.path.isdir(rep.manifest) else (lambda line: f"line {line}: ")
    if rep.bad:
        counts = ", ".join(f"{reason} {n}" for reason, n in rep.reasons.items())
        print(f"\n{bad_header} ({counts})")
        for line, path, reason, detail in rep.bad:
            print(f"  {where(line)}{path}\n      {reason}" + (f": {detail}" if detail else ""))
    if rep.warnings:
        print(f"\n{warnings_header}")
        for line, path, message in rep.warnings:
            print(f"  {where(line)}{path}\n      {message}")


def _check_images(args) -> int:
    from rich.console import Console

    from videomamba.data.check import check_images

    _image_source_arg(args)
    init_ray(configure_logging=False)
    rep = check_images(args.manifest, classes_file=args.classes_file, path_prefix=args.path_prefix, fmt=args.format,
                       min_size=args.min_size, num_cpus=args.num_cpus)
    console = Console()
    summary = _summary_table(rep, f"{args.manifest}: {rep.rows} images")
    summary.add_row("readable but odd (kept, see below)", f"{len(rep.warnings)}")
    console.print(summary)
    console.print(_counts_table("format", "format", rep.formats, "images"))
    console.print(_counts_table("mode (as stored; decoded to 8-bit RGB)", "mode", rep.modes, "images"))
    console.print(_counts_table("size (WxH, upright)", "size", rep.resolutions, "images"))
    if any(rep.rotations):
        console.print(_counts_table("EXIF rotation (degrees clockwise, applied)", "rotation", rep.rotations, "images"))
    console.print(_balance_table(rep, "images"))
    _print_files(rep, f"unreadable images (training skips and counts them): {len(rep.bad)} of {rep.rows}",
                 f"odd images (kept, decoded as described): {len(rep.warnings)} of {rep.rows}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep.__dict__, f, indent=1)
    return 1 if rep.bad else 0


def _prepare(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from videomamba.data.prepare import PrepareSettings, prepare_dataset

    fields = {"short_side": args.short_side, "keyint": args.keyint, "max_fps": args.max_fps, "trim": args.trim,
              "crf": args.crf, "preset": args.preset, "threads": args.threads}
    fields = {k: v for k, v in fields.items() if v is not None}
    if args.tune is not None:
        fields["tune"] = None if args.tune.lower() == "none" else args.tune
    if args.bframes is not None:
        fields["bframes"] = None if args.bframes < 0 else args.bframes
    settings = PrepareSettings(**fields)
    init_ray(configure_logging=False)
    try:
        rep = prepare_dataset(args.manifest, args.out_dir, settings, classes_file=args.classes_file,
                              path_prefix=args.path_prefix, fmt=args.format,
                              resources=json.loads(args.resources) if args.resources else None,
                              max_failed_frac=args.max_failed)
    except RuntimeError as err:
        logger.error("%s", err)
        return 1
    table = Table(title=f"data prepare: {rep.videos} videos in {rep.wall_s:.0f} s")
    table.add_column("")
    table.add_column("value", justify="right")
    mb = 1024 * 1024
    for name, value in (("written", rep.written), ("kept (earlier run, same settings)", rep.kept),
                        ("[red]failed (skipped)", rep.failed), ("rows in new manifest", f"{rep.rows_kept} / {rep.rows}"),
                        ("size MiB (sources -> prepared)", f"{rep.src_bytes / mb:.1f} -> {rep.out_bytes / mb:.1f}"),
                        ("hours (sources -> prepared)", f"{rep.src_hours:.3f} -> {rep.out_hours:.3f}")):
        table.add_row(name, str(value))
    for reason, n in rep.by_reason.items():
        table.add_row(f"[red]  {reason}", str(n))
    Console().print(table)
    for f in rep.failures[:20]:
        print(f"failed: {f['source']} (manifest lines {f['lines']}): {f['reason']}: {f['detail'][:160]}")
    print(f"manifest: {rep.manifest}\nreport:   {os.path.join(rep.out_dir, 'prepare_report.md')}")
    return 0


def _bench_config(args, image: bool = False):
    import yaml

    from videomamba.data.config import DataConfig

    raw = {}
    if args.config:
        with open(args.config) as f:
            raw = yaml.safe_load(f) or {}
        raw = raw.get("data", raw)
    overrides = {"num_frames": args.num_frames, "img_size": args.img_size, "sampling": args.sampling,
                 "classes_file": args.classes_file, "path_prefix": args.path_prefix,
                 "decode_concurrency": args.decode_concurrency, "clip_dtype": getattr(args, "clip_dtype", None)}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if args.randaugment is not None:
        spec = None if args.randaugment.lower() == "none" else args.randaugment
        if image:
            raw["image"] = {**(raw.get("image") or {}), "auto_augment": spec}
        else:
            raw["randaugment"] = spec
    raw["manifest_format"] = args.format
    if image:  # class names (indices only) from the benchmarked source, not the config's train split
        raw["kind"] = "image"
        raw["train_manifest"] = args.manifest
    return DataConfig(**raw)


def _bench(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from videomamba.commands._common import manifest_arg
    from videomamba.data.bench import record, run_bench
    from videomamba.errors import UsageError

    image = _is_image(args)
    try:
        cfg = _bench_config(args, image)
    except ValueError as err:  # pydantic: names the field
        raise UsageError(f"data bench: {err}") from None
    if image:
        if args.prepared:
            raise UsageError("--prepared: applies to videos only (data prepare transcodes videos)")
        _image_source_arg(args)
    else:
        manifest_arg(args.manifest, "manifest", classes_file=cfg.classes_file, path_prefix=cfg.path_prefix,
                     fmt=cfg.manifest_format)
    init_ray(num_cpus=args.cpus, configure_logging=False)
    if args.compare_order:
        return _bench_order(cfg, args)
    res = run_bench(cfg, args.manifest, split=args.split, batch_size=args.batch_size, epochs=args.epochs,
                    prepared=args.prepared, bare=args.bare, stream=args.stream, plain_rows=args.plain_rows,
                    compare_dtype=args.compare_dtype)
    unit, lib = ("images", "PIL") if image else ("clips", "decord")
    what = f"{res.videos} images" if image else f"{res.videos} videos, T={res.num_frames}"
    table = Table(title=f"data pipeline: {what}, {res.img_size}px ({res.machine}, load avg {res.load_avg:.0f})")
    table.add_column("loader")
    table.add_column(f"{unit}/s", justify="right")
    table.add_column("CPUs", justify="right")
    table.add_column(f"{unit}/s per CPU", justify="right")
    table.add_row(f"plain {lib} loop (1 process)", f"{res.plain_clips_per_s:.1f}", "1",
                  f"{res.plain_clips_per_s:.1f} ({res.plain_clips_per_cpu_s:.1f} per CPU-s)")
    if res.bare_procs:
        table.add_row(f"bare {lib} loop ({res.bare_procs} processes, no Ray)", f"{res.bare_clips_per_s:.1f}",
                      str(res.bare_procs), f"{res.bare_clips_per_s / res.bare_procs:.1f}")
    first = "first epoch (start-up)" if res.stream else "cold epoch"
    table.add_row(f"Ray Data, {first}", f"{res.ray_cold_clips_per_s:.1f}", f"{res.ray_cpus:g}",
                  f"{res.ray_cold_clips_per_s / res.ray_cpus:.1f}")
    steady = f"steady state ({res.ray_steady_clips} clips)" if res.stream else "warm epochs"
    table.add_row(f"Ray Data, {steady}", f"{res.ray_clips_per_s:.1f}", f"{res.ray_cpus:g}",
                  f"{res.ray_clips_per_s_per_cpu:.1f}")
    Console().print(table)
    if res.stream:
        print(f"streamed epochs ({res.epochs}, one execution, {res.blocks} blocks): first batch after "
              f"{res.ray_startup_s:.1f}s; epoch seconds " + ", ".join(f"{s:.1f}" for s in res.ray_epoch_s)
              + " (first: start-up, last: drain; steady state: the ones between)")
        if res.ray_driver_cpu_per_clip is not None:
            print(f"consumer (this process: Arrow -> torch batches) {1000 * res.ray_driver_cpu_per_clip:.1f} ms CPU per clip "
                  f"of the Ray side's {1000 / max(res.ray_clips_per_cpu_s, 1e-9):.1f}")
    if res.bare_procs:
        print(f"Ray Data overhead vs the bare loop on the same cores: {res.ray_overhead:.1%} in {unit}/s, "
              f"{res.ray_cpu_overhead:.1%} in {unit} per CPU-second ({res.ray_clips_per_cpu_s:.1f} vs "
              f"{res.bare_clips_per_cpu_s:.1f}; target <= 10%; two windows a minute apart: moves with the machine's load)")
    if res.ray_cpu_overhead_same_window is not None:
        print(f"inside the decode tasks (same processes, same seconds): decode function "
              f"{1000 * res.ray_decode_fn_cpu_per_clip:.1f} ms CPU per clip, Ray Data around it "
              f"{1000 * res.ray_task_extra_cpu_per_clip:.1f} ms; Ray's share of the Ray side's CPU "
              f"(consumer's normalisation left out, on {res.consumer_device}): "
              f"{res.ray_cpu_overhead_same_window:.1%} (robust to machine load; target <= 10%)")
    if res.alt:
        for r in (res.as_dict(), res.alt):
            consumer = r["ray_driver_cpu_per_clip"]
            rest = 1000 / max(r["ray_clips_per_cpu_s"], 1e-9) - 1000 * (consumer or 0.0)
            ms = {k: 1000 * (r.get(k) or 0.0) for k in ("ray_worker_cpu_per_clip", "ray_normalize_cpu_per_clip")}
            print(f"clip_dtype {r['clip_dtype']}: {r['ray_clips_per_cpu_s']:.2f} clips per CPU-s "
                  f"({r['ray_cpu_overhead']:.1%} vs bare), per clip: decode tasks {ms['ray_worker_cpu_per_clip']:.1f} ms CPU, "
                  f"consumer {1000 * (consumer or 0.0):.1f} ms (of which normalisation "
                  f"{ms['ray_normalize_cpu_per_clip']:.1f}, on the GPU in training), Ray's other processes "
                  f"{rest - ms['ray_worker_cpu_per_clip']:.1f} ms (net of idle), steady {r['ray_steady_clips']} clips")
    if res.prepared_manifest:
        print(f"prepared footage: {res.prepared_plain_clips_per_cpu_s:.1f} clips per CPU-second, "
              f"{res.prepared_speedup:.1f}x the raw footage's {res.plain_clips_per_cpu_s:.1f}")
    if args.record:
        record(res, args.record)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.as_dict(), f, indent=1)
    return 0


def _bench_order(cfg, args) -> int:
    from rich.console import Console
    from rich.table import Table

    from videomamba.data.bench import record_order, run_order_bench

    res = run_order_bench(cfg, args.manifest, split=args.split, batch_size=args.batch_size, rounds=args.rounds)
    table = Table(title=f"ordered vs unordered delivery: {res.videos} videos, T={res.num_frames}, {res.img_size}px "
                        f"({res.machine}, load avg {res.load_avg[0]:.0f}-{res.load_avg[1]:.0f})")
    for col in ("delivery", "clips/s (median)", "clips/s (best epoch)", "epoch seconds"):
        table.add_column(col)
    table.add_row("ordered (data.deterministic: true)", f"{res.ordered_clips_per_s:.1f}",
                  f"{res.ordered_best_clips_per_s:.1f}", " ".join(f"{s:.2f}" for s in res.ordered_epochs_s))
    table.add_row("unordered", f"{res.unordered_clips_per_s:.1f}", f"{res.unordered_best_clips_per_s:.1f}",
                  " ".join(f"{s:.2f}" for s in res.unordered_epochs_s))
    Console().print(table)
    Console().print(f"ordered / unordered: {res.ratio:.2f}")
    if args.record:
        record_order(res, args.record)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.as_dict(), f, indent=1)
    return 0
