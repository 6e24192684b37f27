"""``data check``: open and decode every manifest row in parallel on Ray, summarise what is there:
videos (:func:`check_manifest`) or images (:func:`check_images`: a class-per-folder directory, a
CSV/JSONL/list manifest of image paths, ImageNet's validation CSV)."""

from __future__ import annotations

import logging
import os
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from videomamba.data import sampling
from videomamba.data.decode import DecodeError, decode_clips, read_info
from videomamba.data.manifest import load_classes, read_manifest

logger = logging.getLogger(__name__)


@dataclass
class CheckReport:
    manifest: str
    rows: int
    ok: int
    bad: list[tuple[int, str, str, str]] = field(default_factory=list)  # (line, path, reason, detail)
    reasons: dict[str, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)  # seconds, readable rows
    frames: list[int] = field(default_factory=list)
    resolutions: dict[str, int] = field(default_factory=dict)  # "WxH" -> rows
    fps: dict[float, int] = field(default_factory=dict)
    rotations: dict[int, int] = field(default_factory=dict)  # display rotation (degrees clockwise) -> rows
    warnings: list[tuple[int, str, str]] = field(default_factory=list)  # (line, path, message): kept rows
    class_counts: dict[int, int] = field(default_factory=dict)  # label -> rows (all rows)
    class_names: list[str] | None = None
    kind: str = "video"  # or "image"
    modes: dict[str, int] = field(default_factory=dict)  # images: stored Pillow mode -> rows
    formats: dict[str, int] = field(default_factory=dict)  # images: file format -> rows

    def duration_stats(self) -> dict[str, float]:
        d = self.durations
        if not d:
            return {}
        return {"min": min(d), "median": statistics.median(d), "mean": statistics.fmean(d), "max": max(d),
                "total_hours": sum(d) / 3600}


def check_row(batch: dict[str, np.ndarray], *, full: bool, num_threads: int = 1) -> dict[str, np.ndarray]:
    """Per row: header info (frames, fps, display size and rotation), a decode of the first, middle
    and last frame (every frame with ``full``; a damaged file is found either way, see
    ``decode``), and the row's ``start_sec,end_sec`` window against the video's timestamps."""
    keys = ("line", "ok", "reason", "detail", "frames", "fps", "width", "height", "rotation", "duration", "warning")
    out: dict[str, list] = {k: [] for k in keys}
    starts = batch.get("start_sec", np.full(len(batch["line"]), np.nan))
    ends = batch.get("end_sec", np.full(len(batch["line"]), np.nan))
    for line, path, start, end in zip(batch["line"], batch["path"], starts, ends):
        path, warning = str(path), ""
        try:
            header = read_info(path, num_threads=num_threads)

            def pick(i):
                n = i.num_frames
                return np.arange(n) if full else np.unique([0, n // 2, n - 1])

            _, info = decode_clips(path, pick, num_threads=num_threads)
            if info.truncated:
                warning = (f"truncated: {info.num_frames} of {info.num_frames + info.truncated} frames decode "
                           "(training uses those and counts the row as truncated)")
            row = (True, "", "", info.num_frames, info.fps, info.width, info.height, header.rotation or 0,
                   info.duration)
            sampling.frame_window(info.num_frames, info.fps, float(start), float(end), info.timestamps)
        except sampling.EmptyWindowError as err:
            row = (False, "window", f"{err}; training skips this row", *row[3:])
        except DecodeError as err:
            row = (False, err.reason, err.detail, 0, 0.0, 0, 0, 0, 0.0)
        except Exception as err:  # report, never abort the check
            row = (False, "error", f"{type(err).__name__}: {err}", 0, 0.0, 0, 0, 0, 0.0)
        out["line"].append(int(line))
        for key, value in zip(keys[1:], (*row, warning)):
            out[key].append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def check_manifest(
    manifest: str,
    *,
    classes_file: str | None = None,
    path_prefix: str | None = None,
    fmt: str = "auto",
    full: bool = False,
    num_cpus: float = 1.0,
    rows_per_task: int = 8,
) -> CheckReport:
    """Decode every row of ``manifest`` in Ray tasks (``num_cpus`` each) and summarise."""
    records = read_manifest(manifest, classes_file=classes_file, path_prefix=path_prefix, fmt=fmt)
    nan = float("nan")
    items = [{"line": r.line, "path": r.path, "start_sec": nan if r.start_sec is None else r.start_sec,
              "end_sec": nan if r.end_sec is None else r.end_sec} for r in records]
    results = _run(items, partial(check_row, full=full), num_cpus, rows_per_task)
    report = CheckReport(manifest=manifest, rows=len(records), ok=0,
                         class_names=load_classes(classes_file) if classes_file else None)

    def kept(row):
        report.frames.append(int(row["frames"]))
        report.durations.append(float(row["duration"]))

    _collect(report, results, records, kept, resolutions=lambda r: f"{r['width']}x{r['height']}",
             fps=lambda r: round(float(r["fps"]), 2), rotations=lambda r: int(r["rotation"]))
    return report


def _collect(report: CheckReport, results: list[dict], records, on_ok: Callable | None = None,
             **tallies: Callable) -> None:
    """Fill ``report`` from the per-row ``results`` (any order): readable count, ``bad`` and
    ``reasons``, ``warnings``, class counts of ``records``, and per keyword a ``Counter`` of
    ``tally(row)`` over the readable rows (most common first) set as that field."""
    by_line = {r.line: r for r in records}
    reasons, counts = Counter(), {name: Counter() for name in tallies}
    for row in sorted(results, key=lambda r: r["line"]):
        rec = by_line[int(row["line"])]
        if row["ok"]:
            report.ok += 1
            for name, tally in tallies.items():
                counts[name][tally(row)] += 1
            if on_ok is not None:
                on_ok(row)
            if str(row["warning"]):
                report.warnings.append((rec.line, rec.path, str(row["warning"])))
        else:
            reasons[str(row["reason"])] += 1
            report.bad.append((rec.line, rec.path, str(row["reason"]), str(row["detail"])))
    report.reasons = dict(reasons.most_common())
    for name, counter in counts.items():
        setattr(report, name, dict(counter.most_common()))
    report.class_counts = dict(sorted(Counter(r.label for r in records).items()))


def _run(items: list[dict], check: Callable, num_cpus: float, rows_per_task: int) -> list[dict]:
    """``check`` over ``items`` on Ray Data (``rows_per_task`` rows per task), every result row."""
    import ray

    ds = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // rows_per_task)))
    ds = ds.map_batches(check, batch_format="numpy", batch_size=rows_per_task, num_cpus=num_cpus)
    return ds.take_all()


# ---- images ------------------------------------------------------------------------------------
_MODE_NOTES = {
    "CMYK": "CMYK, converted to RGB", "YCbCr": "YCbCr, converted to RGB", "LAB": "LAB, converted to RGB",
    "HSV": "HSV, converted to RGB", "L": "grayscale, replicated to RGB", "LA": "grayscale + alpha, alpha dropped",
    "1": "1-bit, replicated to RGB", "P": "palette, converted to RGB", "PA": "palette + alpha, alpha dropped",
    "RGBA": "alpha dropped", "RGBa": "alpha dropped", "RGBX": "padding byte dropped",
    "I": "32-bit integer grayscale, scaled by 1/257 to 8 bits", "F": "float grayscale, scaled to 8 bits",
}


def image_warnings(path: str, info, min_size: int = 0) -> list[str]:
    """What is odd about a readable image (kept for training, decoded as described): a mode other
    than 8-bit RGB, an EXIF rotation or mirroring, contents of another format than the extension
    says, a side shorter than ``min_size`` px."""
    notes = []
    if info.mode != "RGB":
        note = "16-bit grayscale, scaled by 1/257 to 8 bits" if info.mode.startswith("I;16") else _MODE_NOTES.get(
            info.mode, "converted to RGB")
        notes.append(f"mode {info.mode}: {note}")
    if info.orientation not in (0, 1):
        turn = f"rotated {info.rotation} degrees clockwise" if info.rotation else "not rotated"
        mirrored = " and mirrored" if info.orientation in (2, 4, 5, 7) else ""
        notes.append(f"EXIF orientation {info.orientation}: {turn}{mirrored} when decoded")
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    expected = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "gif": "GIF", "webp": "WEBP",
                "tif": "TIFF", "tiff": "TIFF", "ppm": "PPM", "pgm": "PPM"}.get(ext)
    if expected and info.format and info.format != expected:
        notes.append(f"{info.format} data in a .{ext} file")
    if min_size and min(info.width, info.height) < min_size:
        notes.append(f"{info.width}x{info.height}: a side shorter than {min_size} px")
    return notes


def check_image_row(batch: dict[str, np.ndarray], *, min_size: int = 0) -> dict[str, np.ndarray]:
    """Per row: a full decode as training does it (``images.read_image``), the stored format,
    mode, size and EXIF rotation, and :func:`image_warnings`."""
    from videomamba.data.images import read_image

    keys = ("line", "ok", "reason", "detail", "format", "mode", "width", "height", "rotation", "warning")
    out: dict[str, list] = {k: [] for k in keys}
    for line, path in zip(batch["line"], batch["path"]):
        path = str(path)
        try:
            image, info = read_image(path)
            h, w = image.shape[:2]  # upright, as decoded
            row = (True, "", "", info.format, info.mode, w, h, info.rotation, "; ".join(image_warnings(path, info, min_size)))
        except DecodeError as err:
            row = (False, err.reason, err.detail, "", "", 0, 0, 0, "")
        except Exception as err:  # report, never abort the check
            row = (False, "error", f"{type(err).__name__}: {err}", "", "", 0, 0, 0, "")
        out["line"].append(int(line))
        for key, value in zip(keys[1:], row):
            out[key].append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def check_images(
    source: str,
    *,
    classes_file: str | None = None,
    path_prefix: str | None = None,
    fmt: str = "auto",
    min_size: int = 0,
    num_cpus: float = 1.0,
    rows_per_task: int = 32,
) -> CheckReport:
    """Decode every image of ``source`` (class-per-folder directory, image manifest or ImageNet
    validation CSV, as ``data.kind: image`` reads it) in Ray tasks (``num_cpus`` each) and summarise:
    unreadable images (``missing``/``empty``/``unreadable``/``truncated``, with full paths), odd ones
    that training keeps (:func:`image_warnings`), modes, formats, sizes, EXIF rotations, classes.
    ``CheckReport.resolutions`` are the decoded (upright) sizes."""
    from videomamba.data.config import DataConfig
    from videomamba.data.images import class_names, read_records

    cfg = DataConfig(kind="image", train_manifest=source, classes_file=classes_file, path_prefix=path_prefix,
                     manifest_format=fmt)
    records = read_records(cfg, "train")
    results = _run([{"line": r.line, "path": r.path} for r in records], partial(check_image_row, min_size=min_size),
                   num_cpus, rows_per_task)
    report = CheckReport(manifest=source, rows=len(records), ok=0, kind="image", class_names=class_names(cfg))
    _collect(report, results, records, resolutions=lambda r: f"{r['width']}x{r['height']}",
             modes=lambda r: str(r["mode"]), formats=lambda r: str(r["format"]), rotations=lambda r: int(r["rotation"]))
    return report
