"""``data prepare``: rewrite a dataset into a training-friendly form, as a Ray Data job.

Every distinct source video (one per manifest row's time window with ``trim``) is transcoded once
with PyAV (FFmpeg's libx264) in a Ray Data CPU task:

- short side scaled down to ``short_side`` (never up; both sides even, as ``yuv420p`` needs),
  area interpolation;
- a keyframe every ``keyint`` frames (closed GOPs, no scene-cut keyframes): a sparse clip then
  decodes at most ``keyint - 1`` frames beyond each sampled one instead of the whole video;
- optional frame-rate cap (``max_fps``: frames kept on a ``1/max_fps`` grid) and time-window trim
  (``trim``: only the row's ``[start_sec, end_sec)`` is written, the new row has no window);
- audio dropped, H.264 ``yuv420p`` in MP4, constant frame rate.

Outputs are written to a temporary name, checked (re-opened, packets counted) and renamed; a
JSON sidecar written last marks an output finished and records the settings and the source's
size. A rerun keeps every finished output whose sidecar matches the current settings and source
(resumable), so an interrupted job loses at most the videos in flight. Sources that are missing,
empty or do not decode are skipped, counted and listed in the report; the new manifest holds the
other rows with the same labels and captions (``classes.txt`` copied when given).

``OUT_DIR`` must be a local (or, on a cluster, shared) directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from videomamba import storage
from videomamba.data.decode import DecodeError, load_source, scaled_size
from videomamba.data.manifest import VideoRecord, load_classes, read_manifest, write_manifest

logger = logging.getLogger(__name__)

SIDECAR_VERSION = 1
VIDEO_DIR = "videos"


class PrepareSettings(BaseModel):
    """How every video is rewritten. Defaults: the measured sweeps in ``benchmarks/prepare_sweep.md`` (short
    side x keyframe interval) and ``benchmarks/prepare_per_core.md`` (x264 tune and B-frames)."""

    model_config = ConfigDict(extra="forbid")

    short_side: int = Field(256, ge=0, description="scale the short side down to this (px; 0 = keep); never upscales")
    keyint: int = Field(8, ge=1, description="frames between keyframes (GOP length)")
    max_fps: float | None = Field(None, gt=0, description="frame-rate cap (frames/s); None = keep the source's")
    trim: bool = Field(True, description="write only each row's [start_sec, end_sec) window")
    crf: int = Field(23, ge=0, le=51, description="x264 constant rate factor (lower = larger, better)")
    preset: str = Field("veryfast", description="x264 preset")
    tune: str | None = Field(
        "fastdecode", description="x264 tune; fastdecode (CAVLC instead of CABAC, no deblocking filter) decodes "
        "about twice as fast at the same PSNR against the source (33.8-34.0 dB at 256 px, CRF 23) for ~5% more bytes "
        "(benchmarks/prepare_per_core.md); None = x264's default")
    bframes: int | None = Field(
        0, ge=0, description="x264 B-frames between reference frames: 0 = none, so a sampled frame never needs a "
        "later one decoded first (+5-10% clips/s, ~13% more bytes); None = the preset's (3 for veryfast)")
    codec: str = Field("libx264", description="FFmpeg encoder (H.264)")
    threads: int = Field(1, ge=1, description="CPUs per video (Ray task num_cpus and codec threads)")

    def fingerprint(self) -> str:
        """What decides the output's content (``threads`` does not; ``tune``/``bframes`` only when set:
        an output written before they existed matches ``tune=None, bframes=None``)."""
        unset = {k for k in ("tune", "bframes") if getattr(self, k) is None}
        return json.dumps(self.model_dump(exclude={"threads", *unset}), sort_keys=True)


@dataclass
class Job:
    """One output video: a source (and, with ``trim``, a window)."""

    source: str
    out: str  # path relative to OUT_DIR
    start_sec: float | None
    end_sec: float | None
    lines: list[int] = field(default_factory=list)  # manifest lines that use it


@dataclass
class JobResult:
    source: str
    out: str
    status: str  # "written" | "kept" | "failed"
    reason: str = ""  # DecodeError reason for failures
    detail: str = ""
    src_bytes: int = 0
    out_bytes: int = 0
    src_size: str = ""  # "WxH"
    out_size: str = ""
    src_fps: float = 0.0
    out_fps: float = 0.0
    src_duration: float = 0.0  # seconds of the source (container)
    out_duration: float = 0.0  # seconds written
    out_frames: int = 0
    seconds: float = 0.0  # wall time of the transcode


@dataclass
class PrepareReport:
    manifest: str  # the new manifest
    source_manifest: str
    out_dir: str
    settings: dict[str, Any]
    rows: int
    rows_kept: int
    videos: int
    written: int
    kept: int
    failed: int
    failures: list[dict[str, Any]]  # {source, lines, reason, detail}
    by_reason: dict[str, int]
    src_bytes: int
    out_bytes: int
    src_hours: float
    out_hours: float
    wall_s: float
    encoder: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        mb = 1024 * 1024
        lines = [
            f"# data prepare: {self.source_manifest}",
            "",
            f"- new manifest: `{self.manifest}` ({self.rows_kept} of {self.rows} rows)",
            f"- settings: `{json.dumps(self.settings, sort_keys=True)}` (encoder {self.encoder})",
            f"- videos: {self.videos} = {self.written} written + {self.kept} kept from an earlier run + {self.failed} failed",
            f"- size: {self.src_bytes / mb:.1f} MiB -> {self.out_bytes / mb:.1f} MiB"
            + (f" ({self.out_bytes / self.src_bytes:.2f}x)" if self.src_bytes else ""),
            f"- duration: {self.src_hours * 3600:.1f} s of sources -> {self.out_hours * 3600:.1f} s written",
            f"- wall time: {self.wall_s:.1f} s",
        ]
        if self.failures:
            lines += ["", "## Failed (skipped; not in the new manifest)", "", "| source | manifest lines | reason | detail |",
                      "|---|---|---|---|"]
            lines += [f"| `{f['source']}` | {', '.join(map(str, f['lines']))} | {f['reason']} | {f['detail'][:120]} |"
                      for f in self.failures]
        return "\n".join(lines) + "\n"


# ---- planning ----------------------------------------------------------------------------------
def _window(record: VideoRecord, settings: PrepareSettings) -> tuple[float | None, float | None]:
    return (record.start_sec, record.end_sec) if settings.trim else (None, None)


def output_name(source: str, start: float | None, end: float | None, base: str | None) -> str:
    """``videos/<dir relative to base>/<stem>[_<start>-<end>].<hash>.mp4`` (hash of source + window,
    so names never collide); sources outside ``base`` or behind URIs go flat under ``videos/``."""
    key = f"{source}|{start}|{end}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    stem = Path(source.split("://", 1)[-1]).stem or "video"
    if start is not None or end is not None:
        stem += f"_{start or 0:g}-{'end' if end is None else f'{end:g}'}"
    rel_dir = ""
    if base and not storage.is_uri(source) and not storage.is_uri(base):
        rel = os.path.relpath(os.path.dirname(os.path.abspath(source)), base)
        rel_dir = "" if rel == "." or rel.startswith("..") else rel
    return os.path.join(VIDEO_DIR, rel_dir, f"{stem}.{digest}.mp4")


def plan(records: list[VideoRecord], settings: PrepareSettings, base: str | None) -> tuple[list[Job], dict[int, str]]:
    """Distinct output videos, and for every manifest line the output it maps to."""
    jobs: dict[str, Job] = {}
    by_line: dict[int, str] = {}
    for r in records:
        start, end = _window(r, settings)
        out = output_name(r.path, start, end, base)
        job = jobs.setdefault(out, Job(r.path, out, start, end))
        job.lines.append(r.line)
        by_line[r.line] = out
    return list(jobs.values()), by_line


# ---- one video -----------------------------------------------------------------------------------
def scaled_even_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side at most ``short_side`` (never upscaled), both even."""
    w, h = scaled_size(width, height, short_side) if short_side > 0 else (width, height)
    return max(2, w - w % 2), max(2, h - h % 2)


def _source_stat(source: str) -> dict[str, Any]:
    if storage.is_uri(source):
        return {"path": source}
    st = os.stat(source)
    return {"path": source, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sidecar(out_path: str) -> str:
    return out_path + ".json"


def _load_finished(out_path: str, fingerprint: dict[str, Any]) -> JobResult | None:
    """The earlier result, when the output and its sidecar exist and match ``fingerprint``."""
    try:
        with open(_sidecar(out_path)) as f:
            meta = json.load(f)
        if meta.get("fingerprint") != fingerprint or os.path.getsize(out_path) != meta["result"]["out_bytes"]:
            return None
        return JobResult(**meta["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _out_fps(rate: Fraction, max_fps: float | None) -> Fraction:
    if max_fps is not None and float(rate) > max_fps:
        return Fraction(max_fps).limit_denominator(1001)
    return rate


def transcode(source: str, dst: str, settings: PrepareSettings, start: float | None = None,
              end: float | None = None) -> dict[str, Any]:
    """Write ``source`` (window ``[start, end)`` seconds, None = open) to ``dst`` as H.264 MP4.

    Returns src/out sizes, fps, durations and frames. Raises ``DecodeError`` (``missing``,
    ``empty``, ``unreadable`` or ``corrupt``) when the source cannot be used.
    """
    import av
    from av.video.frame import PictureType

    src = load_source(source)
    stream_src = src if isinstance(src, str) else io.BytesIO(src)
    try:
        inp = av.open(stream_src)
    except Exception as err:  # av.error.* for anything that is not a readable container
        raise DecodeError("unreadable", f"{type(err).__name__}: {err}") from None
    with inp:
        if not inp.streams.video:
            raise DecodeError("unreadable", "no video stream")
        vs = inp.streams.video[0]
        vs.codec_context.thread_count = settings.threads
        width, height = int(vs.codec_context.width), int(vs.codec_context.height)
        if width <= 0 or height <= 0:
            raise DecodeError("unreadable", f"bad frame size {width}x{height}")
        rate = vs.average_rate or vs.guessed_rate or Fraction(30)
        rate = Fraction(rate).limit_denominator(1001)
        fps = _out_fps(rate, settings.max_fps)
        out_w, out_h = scaled_even_size(width, height, settings.short_side)
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
        src_duration = float(inp.duration / 1e6) if inp.duration else (
            float(vs.duration * vs.time_base) if vs.duration and vs.time_base else 0.0)
        if start and start > 2.0:  # jump near the window (a keyframe before it), decode from there
            try:
                inp.seek(int((start - 1.0 + t0) / vs.time_base), stream=vs, backward=True)
            except Exception:  # noqa: BLE001 - unseekable: decode from the start
                inp.seek(0)
        written = 0
        with av.open(dst, "w", format="mp4") as out:
            os_ = out.add_stream(settings.codec, rate=fps)
            os_.width, os_.height, os_.pix_fmt = out_w, out_h, "yuv420p"
            os_.codec_context.gop_size = settings.keyint
            os_.codec_context.thread_count = settings.threads
            if "264" in settings.codec:
                params = f"keyint={settings.keyint}:min-keyint={settings.keyint}:scenecut=0:open-gop=0"
                if settings.bframes is not None:
                    params += f":bframes={settings.bframes}"
                os_.options = {"crf": str(settings.crf), "preset": settings.preset, "x264-params": params,
                               **({"tune": settings.tune} if settings.tune else {})}
            index = 0  # decoded frames (time fallback when a frame has no timestamp)
            first_t: float | None = None
            try:
                for frame in inp.decode(vs):
                    t = frame.time - t0 if frame.time is not None else index / float(rate)
                    index += 1
                    if start is not None and t < start - 0.5 / float(rate):
                        continue
                    if end is not None and t >= end - 1e-6:
                        break
                    if first_t is None:
                        first_t = t
                    if fps != rate and t - first_t < written / float(fps) - 0.5 / float(rate):  # cap: a 1/fps grid
                        continue
                    img = frame.reformat(width=out_w, height=out_h, format="yuv420p", interpolation="AREA")
                    img.pts, img.time_base = written, 1 / fps
                    img.pict_type = PictureType.NONE  # the source's I-frames would force keyframes
                    out.mux(os_.encode(img))
                    written += 1
            except av.error.FFmpegError as err:
                raise DecodeError("corrupt", f"after {index} frames: {type(err).__name__}: {err}") from None
            if written == 0:
                raise DecodeError("corrupt" if index else "unreadable",
                                  "no frame in the time window" if index else "no frame decoded")
            out.mux(os_.encode(None))
    # check what was written: every frame is in the file
    try:
        with av.open(dst) as check:
            packets = sum(1 for p in check.demux(check.streams.video[0]) if p.size)
    except Exception as err:  # noqa: BLE001
        raise OSError(f"output {dst} does not open after writing: {err}") from None
    if packets != written:
        raise OSError(f"output {dst} has {packets} frames, {written} were encoded")
    return {
        "src_size": f"{width}x{height}", "out_size": f"{out_w}x{out_h}", "src_fps": float(rate),
        "out_fps": float(fps), "src_duration": src_duration, "out_duration": written / float(fps),
        "out_frames": written,
    }


def prepare_one(row: dict[str, Any], *, out_dir: str, settings: PrepareSettings) -> dict[str, Any]:
    """Ray Data ``map`` function: one ``Job`` (as a row) -> a ``JobResult`` row. Never raises for
    a bad source (status ``failed`` with the reason); keeps a finished output with the same settings."""
    source, rel = str(row["source"]), str(row["out"])
    start = None if row["start_sec"] is None or row["start_sec"] != row["start_sec"] else float(row["start_sec"])
    end = None if row["end_sec"] is None or row["end_sec"] != row["end_sec"] else float(row["end_sec"])
    out_path = os.path.join(out_dir, rel)
    result = JobResult(source=source, out=rel, status="failed")
    t = time.perf_counter()
    try:
        stat = _source_stat(source)
    except OSError as err:
        result.reason, result.detail = "missing", str(err)
        return asdict(result)
    fingerprint = {"version": SIDECAR_VERSION, "settings": json.loads(settings.fingerprint()), "source": stat,
                   "window": [start, end]}
    done = _load_finished(out_path, fingerprint)
    if done is not None:
        done.status = "kept"
        return asdict(done)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(out_path), f".{os.path.basename(out_path)}.{os.getpid()}.tmp.mp4")
    try:
        info = transcode(source, tmp, settings, start, end)
        result = JobResult(source=source, out=rel, status="written", src_bytes=stat.get("bytes", 0),
                           out_bytes=os.path.getsize(tmp), seconds=time.perf_counter() - t, **info)
        os.replace(tmp, out_path)
        side_tmp = tmp + ".json"
        with open(side_tmp, "w") as f:
            json.dump({"fingerprint": fingerprint, "result": asdict(result)}, f, indent=1)
        os.replace(side_tmp, _sidecar(out_path))  # written last: marks the output finished
    except DecodeError as err:
        result.reason, result.detail = err.reason, err.detail
    except Exception as err:  # noqa: BLE001 - one video never takes the job down
        logger.exception("prepare failed on %s", source)
        result.reason, result.detail = "error", f"{type(err).__name__}: {err}"
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if result.status == "failed" and os.path.exists(_sidecar(out_path)):
        os.remove(_sidecar(out_path))  # an older output of other settings is no longer valid
    return asdict(result)


# ---- the job ------------------------------------------------------------------------------------
def encoder_available(codec: str = "libx264") -> bool:
    import av

    return codec in av.codecs_available


def prepare_dataset(
    manifest: str,
    out_dir: str,
    settings: PrepareSettings | None = None,
    *,
    classes_file: str | None = None,
    path_prefix: str | None = None,
    fmt: str = "auto",
    resources: dict[str, float] | None = None,
    progress: bool = True,
    max_failed_frac: float = 1.0,
) -> PrepareReport:
    """Prepare every video of ``manifest`` into ``out_dir`` (see the module doc).

    Writes ``out_dir/<manifest stem>.csv`` (paths relative to ``out_dir``), ``classes.txt`` (a
    copy, when ``classes_file`` is given), ``prepare_report.json`` and ``prepare_report.md``.
    ``resources``: extra Ray resources per task (e.g. ``{"decode_node": 0.001}`` on a cluster).
    Raises ``RuntimeError`` when more than ``max_failed_frac`` of the videos failed (after writing
    the report), ``ValueError`` when the encoder is missing.
    """
    settings = settings or PrepareSettings()
    if not encoder_available(settings.codec):
        raise ValueError(f"encoder {settings.codec!r} is not in this PyAV build (codecs: libx264, libopenh264?)")
    t_start = time.perf_counter()
    records = read_manifest(manifest, classes_file=classes_file, path_prefix=path_prefix, fmt=fmt)
    base = storage.dirname(manifest) if path_prefix is None else path_prefix
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    stale = remove_stale_temporaries(out_dir)
    if stale:
        logger.info("removed %d unfinished temporary files of an interrupted run", stale)
    jobs, by_line = plan(records, settings, None if storage.is_uri(base) else os.path.abspath(base))
    results = _run_jobs(jobs, out_dir, settings, resources or {}, progress) if jobs else []
    done = {r["out"]: r for r in results}

    kept_records = []
    for r in records:
        res = done.get(by_line[r.line])
        if res is None or res["status"] == "failed":
            continue
        start, end = (None, None) if settings.trim else (r.start_sec, r.end_sec)
        kept_records.append(VideoRecord(os.path.join(out_dir, res["out"]), r.label, start, end, r.captions, r.line))
    stem = Path(manifest.split("://", 1)[-1]).stem
    new_manifest = os.path.join(out_dir, f"{stem}.csv")
    write_manifest(new_manifest, kept_records, relative_to=out_dir)
    if classes_file:
        with open(os.path.join(out_dir, "classes.txt"), "w") as f:
            f.write("\n".join(load_classes(classes_file)) + "\n")

    lines = {j.out: j.lines for j in jobs}
    failures = [{"source": r["source"], "lines": lines[r["out"]], "reason": r["reason"], "detail": r["detail"]}
                for r in results if r["status"] == "failed"]
    by_reason: dict[str, int] = {}
    for f in failures:
        by_reason[f["reason"]] = by_reason.get(f["reason"], 0) + 1
    ok = [r for r in results if r["status"] != "failed"]
    report = PrepareReport(
        manifest=new_manifest, source_manifest=manifest, out_dir=out_dir, settings=settings.model_dump(),
        rows=len(records), rows_kept=len(kept_records), videos=len(jobs),
        written=sum(r["status"] == "written" for r in results), kept=sum(r["status"] == "kept" for r in results),
        failed=len(failures), failures=failures, by_reason=by_reason,
        src_bytes=sum(r["src_bytes"] for r in ok), out_bytes=sum(r["out_bytes"] for r in ok),
        src_hours=sum(r["src_duration"] for r in ok) / 3600, out_hours=sum(r["out_duration"] for r in ok) / 3600,
        wall_s=time.perf_counter() - t_start, encoder=settings.codec,
    )
    with open(os.path.join(out_dir, "prepare_report.json"), "w") as f:
        json.dump(report.as_dict(), f, indent=1)
    with open(os.path.join(out_dir, "prepare_report.md"), "w") as f:
        f.write(report.markdown())
    if jobs and report.failed > max_failed_frac * len(jobs):
        raise RuntimeError(f"{report.failed} of {len(jobs)} videos failed (limit {max_failed_frac:.0%}); "
                           f"see {os.path.join(out_dir, 'prepare_report.md')}")
    return report


def _run_jobs(jobs: list[Job], out_dir: str, settings: PrepareSettings, resources: dict[str, float],
              progress: bool) -> list[dict[str, Any]]:
    """One Ray Data task per video; results streamed back with a progress bar."""
    import ray
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # one bar of our own: videos done / total
    items = [{"source": j.source, "out": j.out, "start_sec": j.start_sec, "end_sec": j.end_sec} for j in jobs]
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), 10_000))
    remote = {"num_cpus": settings.threads}
    if resources:
        remote["resources"] = dict(resources)
    ds = ds.map(partial(prepare_one, out_dir=out_dir, settings=settings), **remote)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="prepare", unit="video")
    results = []
    for row in ds.iter_rows():
        results.append(dict(row))
        if bar is not None:
            bar.update(1)
            failed = sum(r["status"] == "failed" for r in results)
            bar.set_postfix(failed=failed, kept=sum(r["status"] == "kept" for r in results), refresh=False)
    if bar is not None:
        bar.close()
    return results


def remove_stale_temporaries(out_dir: str) -> int:
    """Delete ``*.tmp.mp4`` left by killed tasks; returns how many."""
    n = 0
    for path in Path(out_dir, VIDEO_DIR).rglob(".*.tmp.mp4*"):
        path.unlink(missing_ok=True)
        n += 1
    return n


