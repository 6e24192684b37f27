"""``data bench``: clips/s of the Ray Data pipeline vs bare decord loops, raw vs prepared footage.

All loaders run the same per-video work (``pipeline.decode_batch``: sample, decode with decord,
transform) over the same manifest rows:

- **plain loop**: one process, a Python ``for`` (its CPU time too: clips per CPU-second is the
  number that does not depend on what else runs on the machine);
- **bare loop on N cores**: N worker processes (no Ray), each a plain loop over its share of
  the rows, N = the CPUs the pipeline may use: the pipeline's ideal on the same cores;
- **Ray Data**: ``build_dataset(cfg, split)`` consumed with ``iter_torch_batches`` in the driver
  (what a training worker sees). By default the way training runs (``data.stream_epochs``): one
  execution of a dataset spanning ``epochs`` epochs, iterated once. The first epoch (worker start,
  first blocks) and the last one (the drain: fewer tasks than cores as the execution ends) are
  start-up and end costs paid once per run; they are reported apart (time to the first batch,
  epoch seconds) and the **steady state** is the epochs in between. ``stream=False``: one
  execution per epoch (the old training behaviour), warm epochs after one cold one.

The bare loop gets the same treatment: ``epochs`` passes over the rows, dealt dynamically to the
processes in chunks of ``decode_batch_size`` rows, its steady state the clips completed between
the end of the first and the start of the last pass (by completion time).

``overhead = 1 - ray clips/s / bare clips/s`` in the steady state (target <= 0.10), and the same in
clips per CPU-second (the bare processes' CPU time vs the driver's + every Ray process's over the
steady window, less the Ray instance's idle background rate): on a busy machine only the CPU-second
figures mean anything, and even they compare two windows run a minute apart, while a clip's CPU cost
on a shared machine moves by tens of percent with the load (benchmarks/data_pipeline.md,
2026-12-01). So the streamed run also splits the decode tasks' CPU with :class:`DecodeProbe`: the
decode function's own CPU (the bare loop's work) and what the same processes spend around it (Ray
Data: batches, Arrow blocks, the object-store copy, task start), both from the same task calls;
``ray_cpu_overhead_same_window`` is Ray's share of the Ray side's CPU with those two and the
consumer's (less its normalisation) and Ray's other processes' per clip. On a GPU host the consumer
copies batches to the GPU and normalises there, as a training worker does (:func:`consumer_device`). With ``prepared`` (the manifest
``videomamba data prepare`` wrote for the same videos) the plain loop also runs on it, and
``prepared_speedup`` = prepared / raw clips per CPU-second (target >= 5 from 720p sources).

Images (``cfg.kind == "image"``, ``data bench`` on an image manifest or class folders): the same
loaders with the image pipeline's work (``images.decode_images``: PIL decode, EXIF, RGB, timm
transform) over ``images.build_image_dataset``; "clips" are images (1-frame clips). The loops run
outside Ray: a bad row is logged (``log_skip``), not counted in a skip ledger.

``run_order_bench`` times the pipeline with and without ordered delivery (``data.deterministic``)
side by side in one run (``data bench --compare-order``).

Normalisation is part of the timed work everywhere: the loops normalise in the loop (uint8 clips
with :func:`videomamba.data.normalize.normalize_video`, as a float32 pipeline's decode task does),
the Ray side in the consumer (this process, on the CPU; a training worker does it on its GPU).
``compare_dtype`` also runs the pipeline with the other ``data.clip_dtype`` in the same Ray
instance after the first one (``data bench --compare-dtype``): uint8 vs float32 clips side by side.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from videomamba.env import cpu_description
from videomamba.data.config import DataConfig
from videomamba.data.images import build_image_dataset, decode_images, read_records
from videomamba.data.manifest import read_manifest, to_columns
from videomamba.data.normalize import normalize_batch, normalize_video
from videomamba.data.pipeline import build_dataset, clips_per_row, cluster_cpus, decode_batch, num_blocks, take_rows
from videomamba.data.skips import ensure_ledger

logger = logging.getLogger(__name__)


@dataclass
class BenchResult:
    manifest: str
    split: str
    videos: int
    clips: int
    plain_clips_per_s: float
    plain_clips_per_cpu_s: float  # clips per CPU-second of the loop (robust to a busy machine)
    ray_cold_clips_per_s: float
    ray_clips_per_s: float
    ray_cpus: float
    ray_clips_per_s_per_cpu: float
    bare_procs: int = 0
    bare_clips_per_s: float = 0.0  # N processes, no Ray: the pipeline's ideal on the same cores
    ray_overhead: float = 0.0  # 1 - ray_clips_per_s / bare_clips_per_s
    bare_clips_per_cpu_s: float = 0.0  # clips per CPU-second of the bare loop's processes
    ray_clips_per_cpu_s: float = 0.0  # clips per CPU-second of the driver + every Ray process (warm epochs),
    # net of the instance's idle background rate (measured for 3 s before the warm epochs)
    ray_cpu_overhead: float = 0.0  # 1 - ray_clips_per_cpu_s / bare_clips_per_cpu_s (robust to a busy machine)
    stream: bool = False  # one execution spanning the epochs (training's data.stream_epochs)
    epochs: int = 0
    ray_startup_s: float = 0.0  # dataset built -> first batch
    ray_epoch_s: list[float] = field(default_factory=list)  # per epoch (the first includes start-up)
    ray_steady_clips: int = 0  # clips in the steady window (epochs 1 .. epochs-2 when streamed)
    bare_steady_clips: int = 0
    blocks: int = 0  # Ray Data blocks (decode tasks) of the execution
    ray_driver_cpu_per_clip: float | None = None  # steady state: the consumer's CPU-s per clip (in the Ray CPU-s)
    ray_worker_cpu_per_clip: float | None = None  # steady state: the Ray worker processes' (decode tasks) CPU-s per clip
    ray_normalize_cpu_per_clip: float | None = None  # steady state: the consumer's normalisation, CPU-s per clip
    ray_decode_fn_cpu_per_clip: float | None = None  # steady state: CPU-s per clip inside the decode function (in the tasks)
    ray_task_extra_cpu_per_clip: float | None = None  # steady state: the decode processes' other CPU-s per clip (Ray Data)
    ray_cpu_overhead_same_window: float | None = None  # Ray's share of the Ray side's CPU as in GPU training:
    # 1 - decode fn / (decode fn + tasks' other + consumer less normalisation + Ray's other processes), see _probe_split
    consumer_device: str = "cpu"  # where the bench's consumer normalised ("cuda": as a training worker)
    clip_dtype: str = "float32"  # data.clip_dtype of the Ray run (uint8: normalised by the consumer)
    alt: dict | None = None  # --compare-dtype: the Ray run with the other clip_dtype (same fields, ray_* only)
    prepared_manifest: str | None = None
    prepared_plain_clips_per_cpu_s: float = 0.0
    prepared_speedup: float = 0.0  # prepared / raw plain-loop clips per CPU-second
    num_frames: int = 0
    img_size: int = 0
    sampling: str = ""
    randaugment: str | None = None
    machine: str = ""
    load_avg: float = 0.0  # 1-min load average when the benchmark ended
    date: str = ""
    kind: str = "video"  # "image": clips are images

    def as_dict(self) -> dict:
        return asdict(self)


def _build(cfg: DataConfig, split: str, **kwargs):
    """The kind's Ray Data pipeline (``build_image_dataset`` for images, else ``build_dataset``)."""
    return (build_image_dataset if cfg.kind == "image" else build_dataset)(cfg, split, **kwargs)


def log_skip(scope: str, split: str, epoch: int, index: int, path: str, reason: str, detail: str = "", **_) -> None:
    """The loops' ``record``: log a bad row (the loops run outside Ray, with no skip ledger to count it
    in; a row dropped is a row fewer in their clips/s)."""
    logger.info("bench loop: bad row %s: %s %s", path, reason, detail)


def decode_rows(cfg: DataConfig, columns: dict[str, np.ndarray], rows: np.ndarray, split: str, epoch: int = 0) -> dict:
    """The pipeline's decode stage on manifest ``rows`` of ``epoch``, in this process."""
    batch = take_rows(columns, rows, epoch)
    if cfg.kind == "image":
        batch["repeat"] = np.zeros(len(rows), np.int64)
        return decode_images(batch, cfg=cfg, split=split, seed=cfg.seed, scope="bench", record=log_skip)
    return decode_batch(batch, cfg=cfg, split=split, seed=cfg.seed, scope="bench", record=log_skip)


def bench_plain(cfg: DataConfig, columns: dict[str, np.ndarray], split: str, epoch: int = 0) -> tuple[int, float, float]:
    """(clips, wall seconds, CPU seconds) of the decode+transform loop in this process, with one
    torch thread (as in a Ray task of ``decode_num_cpus=1``, where Ray sets ``OMP_NUM_THREADS=1``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    n, clips = len(columns["label"]), 0
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        for lo in range(0, n, cfg.decode_batch_size):
            out = decode_rows(cfg, columns, np.arange(lo, min(n, lo + cfg.decode_batch_size)), split, epoch)
            normalize_video(out["video"], cfg.mean, cfg.std)  # the whole work whatever data.clip_dtype
            clips += len(out["label"])
        return clips, time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        torch.set_num_threads(threads)


_WORKER_CFG: dict[str, DataConfig] = {}


def _bare_worker(args) -> tuple[int, float]:
    """One bare-loop chunk, in a pool process: (clips, CPU seconds) of decode_batch over its rows."""
    cfg_json, columns, split, epoch = args
    cfg = _WORKER_CFG.get(cfg_json) or _WORKER_CFG.setdefault(cfg_json, DataConfig.model_validate_json(cfg_json))
    clips, _, cpu = bench_plain(cfg, columns, split, epoch)
    return clips, cpu


@dataclass
class LoopTimings:
    """One timed run of a loader over ``epochs`` passes: ``marks`` = (seconds since start, clips
    so far, CPU seconds so far or None) at every delivery, ``per_epoch`` clips per pass."""

    marks: list[tuple[float, int, float | None]]
    per_epoch: int
    epochs: int
    startup_s: float = 0.0
    driver_cpu: list[float | None] | None = None  # per mark: the consuming process's CPU seconds (Ray side)
    worker_cpu: list[float | None] | None = None  # per mark: the Ray worker processes' (decode tasks)
    normalize_cpu: list[float | None] | None = None  # per mark: the consumer's normalisation (thread CPU-s)
    start_wall: float = 0.0  # time.time() at the start (marks are seconds after it)

    def steady_wall(self) -> tuple[float, float]:
        """The :meth:`steady` window in ``time.time()`` seconds."""
        last = self.epochs - 1 if self.epochs > 2 else self.epochs
        return self.start_wall + self.boundary(1)[0], self.start_wall + self.boundary(last)[0]

    def boundary(self, k: int) -> tuple[float, int, float | None]:
        """The first mark at which ``k`` passes' clips were delivered. When fewer clips came than
        ``epochs * per_epoch`` (skipped videos), passes are the delivered clips split evenly."""
        per = min(self.per_epoch, self.marks[-1][1] / max(self.epochs, 1))
        for m in self.marks:
            if m[1] >= k * per - 1e-9:
                return m
        return self.marks[-1]

    def epoch_seconds(self) -> list[float]:
        ends = [self.boundary(k)[0] for k in range(1, self.epochs + 1)]
        return [b - a for a, b in zip([0.0] + ends[:-1], ends)]

    def steady(self) -> tuple[int, float, float | None]:
        """(clips, seconds, CPU seconds or None) between the end of the first pass and the end of
        pass ``epochs - 1`` (start-up and drain left out; with 2 passes: the second one)."""
        last = self.epochs - 1 if self.epochs > 2 else self.epochs
        (t0, c0, u0), (t1, c1, u1) = self.boundary(1), self.boundary(last)
        cpu = None if u0 is None or u1 is None else u1 - u0
        return c1 - c0, t1 - t0, cpu

    def steady_driver_cpu(self, series: str = "driver_cpu") -> float | None:
        """The consumer's CPU seconds over the :meth:`steady` window (None when not measured);
        ``series``: ``worker_cpu`` (the decode tasks') or ``normalize_cpu`` instead."""
        values = getattr(self, series)
        if not values:
            return None
        last = self.epochs - 1 if self.epochs > 2 else self.epochs
        i0, i1 = (self.marks.index(self.boundary(k)) for k in (1, last))
        a, b = values[i0], values[i1]
        return None if a is None or b is None else b - a


def bench_bare(cfg: DataConfig, columns: dict[str, np.ndarray], split: str, procs: int,
               epochs: int = 1) -> LoopTimings:
    """``procs`` processes (no Ray) over ``epochs`` passes of the rows, dealt in chunks of
    ``decode_batch_size`` rows to whichever process is free (as Ray deals blocks); the processes
    are started and warmed (imports, first video) before the clock starts."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    n, size, key = len(columns["label"]), cfg.decode_batch_size, cfg.model_dump_json()
    chunks = [(key, {k: v[lo:lo + size] for k, v in columns.items()}, split, e)
              for e in range(epochs) for lo in range(0, n, size)]
    warm = (key, {k: v[:1] for k, v in columns.items()}, split, 0)
    marks: list[tuple[float, int, float | None]] = []
    with ProcessPoolExecutor(procs, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_bare_worker, [warm] * procs))
        start, clips, cpu = time.perf_counter(), 0, 0.0
        todo, running = list(reversed(chunks)), set()
        while todo or running:
            while todo and len(running) < 2 * procs:  # a small queue: completion times stay meaningful
                running.add(pool.submit(_bare_worker, todo.pop()))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                c, u = fut.result()
                clips, cpu = clips + c, cpu + u
            marks.append((time.perf_counter() - start, clips, cpu))
    return LoopTimings(marks, n * clips_per_row(cfg, split), epochs)


def _proc_table() -> dict[int, tuple[int, float]]:
    """Linux ``/proc``: pid -> (parent pid, user + system CPU seconds); empty elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


class RayCpuMeter:
    """CPU seconds used by this process and the local Ray instance's processes (GCS, raylet and every
    process they started: workers, agents) between :meth:`start` and :meth:`stop` (Linux ``/proc``);
    ``seconds`` stays ``None`` when Ray was not started here (a cluster) or off Linux. Processes
    that exit in between are not counted."""

    def __init__(self):
        self.seconds: float | None = None
        self.idle_rate = 0.0  # CPU-s per second the instance burns while no pipeline runs
        self.driver: float | None = None  # this process's CPU seconds at the last read()
        self.workers: float | None = None  # the Ray worker processes' (``ray::...``: the decode tasks) at the last read()
        self._names: dict[int, bool] = {}
        self._start: dict[int, float] = {}
        self._t0 = 0.0

    @staticmethod
    def _tree() -> dict[int, float] | None:
        import ray

        node = getattr(ray._private.worker, "_global_node", None)
        roots = {info.process.pid for infos in (getattr(node, "all_processes", None) or {}).values() for info in infos}
        table = _proc_table()
        if not roots or not table:
            return None
        pids, frontier = {os.getpid()} | roots, set(roots)
        while frontier:
            frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier and pid not in pids}
            pids |= frontier
        return {pid: table[pid][1] for pid in pids if pid in table}

    def _is_worker(self, pid: int) -> bool:
        """Whether ``pid`` is a Ray worker process (command line ``ray::<task or IDLE>``)."""
        if pid not in self._names:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    self._names[pid] = f.read(5) == b"ray::"
            except OSError:
                self._names[pid] = False
        return self._names[pid]

    def measure_idle(self, seconds: float = 3.0) -> None:
        """The Ray instance's own background CPU rate (GCS, raylet, agents, idle workers), to subtract."""
        before = self._tree()
        if not before:
            return
        time.sleep(seconds)
        after = self._tree() or {}
        self.idle_rate = max(0.0, sum(t - before.get(pid, 0.0) for pid, t in after.items())) / seconds

    def start(self) -> None:
        self._start = self._tree() or {}
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        now = self._tree() if self._start else None
        if now:
            total = sum(t - self._start.get(pid, 0.0) for pid, t in now.items())
            self.seconds = max(1e-9, total - self.idle_rate * (time.perf_counter() - self._t0))

    def read(self) -> float | None:
        """CPU seconds since :meth:`start` (net of the idle rate) without stopping; None off Linux.
        ``driver`` becomes this process's share (the consumer: Arrow -> torch batches)."""
        now = self._tree() if self._start else None
        if not now:
            return None
        self.driver = now.get(os.getpid(), 0.0) - self._start.get(os.getpid(), 0.0)
        self.workers = sum(t - self._start.get(pid, 0.0) for pid, t in now.items() if self._is_worker(pid))
        total = sum(t - self._start.get(pid, 0.0) for pid, t in now.items())
        return total - self.idle_rate * (time.perf_counter() - self._t0)


def _probe_call(batch: dict, *, fn, folder: str) -> dict:
    """The decode stage's ``fn(batch)`` with its process CPU seconds logged to ``folder/<pid>.txt``:
    ``wall_start cpu_start cpu_end clips`` (the process's CPU: decord's reader threads count too)."""
    wall, cpu = time.time(), time.process_time()
    out = fn(batch)
    end = time.process_time()
    with open(os.path.join(folder, f"{os.getpid()}.txt"), "a") as f:
        f.write(f"{wall!r} {cpu!r} {end!r} {len(out['label'])}\n")
    return out


class DecodeProbe:
    """Splits the decode tasks' CPU into the decode function's own work (sample, decord, transform:
    the bare loop's work) and everything else their processes do (Ray Data around the function:
    batching, Arrow blocks, the object-store copy, task start, the row-selection stage, idle
    threads). Both come from the same processes in the same seconds, so machine load, which moves
    a clip's CPU cost by tens of percent on a shared machine, cancels out of their ratio.

    ``wrap`` goes to ``build_dataset(wrap_decode=...)``; each call of the wrapped function appends one
    line to a file per worker process (local Ray only: the files are read from this machine's disk).
    """

    def __init__(self):
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="videomamba-bench-probe-")

    def wrap(self, fn):
        from functools import partial

        return partial(_probe_call, fn=fn, folder=self.folder)

    def calls(self) -> dict[int, list[tuple[float, float, float, int]]]:
        out = {}
        for name in os.listdir(self.folder):
            with open(os.path.join(self.folder, name)) as f:
                rows = [tuple(float(x) for x in line.split()) for line in f if line.strip()]
            out[int(name.split(".")[0])] = sorted(rows)
        return out

    def window(self, t0: float, t1: float) -> tuple[int, float, float]:
        """(clips, CPU-s inside the decode function, CPU-s of the same processes between consecutive
        calls) for the calls that started within wall-clock ``[t0, t1]`` (``time.time()``); the gap
        before a process's first call (its start, imports) is left out."""
        clips, inside, between = 0, 0.0, 0.0
        for rows in self.calls().values():
            for prev, (wall, cpu, end, n) in zip([None] + rows[:-1], rows):
                if not t0 <= wall <= t1:
                    continue
                clips, inside = clips + int(n), inside + end - cpu
                if prev is not None:
                    between += max(0.0, cpu - prev[2])
        return clips, inside, between

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def bench_ray(cfg: DataConfig, manifest: str, split: str, batch_size: int, epochs: int,
              meter: RayCpuMeter | None = None) -> list[tuple[int, float]]:
    """[(clips, seconds)] per epoch of ``iter_torch_batches`` over ``build_dataset``, one execution
    per epoch; ``meter`` measures the CPU of the warm epochs (all but the first)."""
    ds = _build(cfg, split, manifest=manifest, scope="bench")
    timings = []
    for e in range(epochs):
        if e == 1 and meter is not None:
            meter.measure_idle()
            meter.start()
        clips, start = 0, time.perf_counter()
        for batch in ds.iter_torch_batches(batch_size=batch_size, prefetch_batches=cfg.prefetch_batches):
            normalize_batch(batch, cfg.mean, cfg.std)
            clips += len(batch["label"])
        timings.append((clips, time.perf_counter() - start))
    if meter is not None and epochs > 1:
        meter.stop()
    return timings


def consumer_device() -> str | None:
    """Where the bench's consumer normalises: ``"cuda"`` on a GPU host (as a training worker does,
    after the host-to-device copy), else None (this CPU, timed apart)."""
    import torch

    return "cuda" if torch.cuda.is_available() else None


def bench_ray_stream(cfg: DataConfig, manifest: str, split: str, batch_size: int, epochs: int,
                     meter: RayCpuMeter | None = None, probe: DecodeProbe | None = None) -> LoopTimings:
    """One execution of ``build_dataset(..., epochs=epochs)`` iterated once, as training does
    (``data.stream_epochs``): a mark per batch; ``meter`` (started here) reads the Ray side's
    CPU at every epoch boundary; ``probe`` (videos) times the decode function inside the tasks.
    On a GPU host the batches go to the GPU (pinned when ``data.pin_memory``) and are normalised
    there, as in training: one CPU thread normalising ~200 clips/s would otherwise cap a 16-core
    host's prepared footage."""
    import torch

    kwargs = {"wrap_decode": probe.wrap} if probe is not None and cfg.kind != "image" else {}
    ds = _build(cfg, split, manifest=manifest, scope="bench", epochs=epochs, **kwargs)
    device = consumer_device()
    iter_kwargs = {"device": device, "pin_memory": bool(cfg.pin_memory)} if device else {}
    n = len(_columns(cfg, manifest)["label"])
    per_epoch = n * clips_per_row(cfg, split)
    if meter is not None:
        meter.start()
    marks: list[tuple[float, int, float | None]] = []
    driver: list[float | None] = []
    workers: list[float | None] = []
    norms: list[float | None] = []
    clips, next_boundary, startup, norm_cpu = 0, per_epoch, None, 0.0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the normalisation's CPU is then this thread's (a training worker's runs on its GPU)
    start, start_wall = time.perf_counter(), time.time()
    for batch in ds.iter_torch_batches(batch_size=batch_size, prefetch_batches=cfg.prefetch_batches, **iter_kwargs):
        t = time.thread_time()
        normalize_batch(batch, cfg.mean, cfg.std)
        if device:
            torch.cuda.synchronize()  # a training step waits for its batch on the GPU too
        norm_cpu += time.thread_time() - t
        clips += len(batch["label"])
        now = time.perf_counter() - start
        startup = now if startup is None else startup
        cpu = None
        if clips >= next_boundary:  # read the CPU meter at epoch boundaries only (a /proc walk)
            cpu = meter.read() if meter is not None else None
            next_boundary += per_epoch * max(1, (clips - next_boundary) // per_epoch + 1)
        marks.append((now, clips, cpu))
        driver.append(meter.driver if cpu is not None else None)
        workers.append(meter.workers if cpu is not None else None)
        norms.append(norm_cpu if cpu is not None else None)
    torch.set_num_threads(threads)
    if marks and marks[-1][2] is None and meter is not None:
        marks[-1] = (*marks[-1][:2], meter.read())
        driver[-1], workers[-1], norms[-1] = meter.driver, meter.workers, norm_cpu
    return LoopTimings(marks or [(0.0, 0, None)], per_epoch, epochs, startup or 0.0, driver or None,
                       workers or None, norms or None, start_wall)


def _records(cfg: DataConfig, manifest: str) -> list:
    if cfg.kind == "image":
        return read_records(cfg, "train", manifest)
    return read_manifest(manifest, classes_file=cfg.classes_file, path_prefix=cfg.path_prefix,
                         fmt=cfg.manifest_format)


def _columns(cfg: DataConfig, manifest: str) -> dict[str, np.ndarray]:
    records = _records(cfg, manifest)
    if cfg.kind == "image":  # the image pipeline's manifest columns
        return {"path": np.array([r.path for r in records], dtype=object),
                "label": np.array([r.label for r in records], dtype=np.int64)}
    return to_columns(records)


def _probe_split(probe: DecodeProbe | None, run: LoopTimings) -> tuple[float | None, float | None, float | None]:
    """(decode function CPU-s per clip, the decode processes' other CPU-s per clip, Ray's share)
    over ``run``'s steady window; Nones without a probe or a CPU reading. Ray's share =
    1 - decode function / (decode function + the tasks' other CPU + the consumer less its
    normalisation + Ray's other processes): the first two from the same task calls, the small rest
    per consumed clip from the meter."""
    if probe is None:
        return None, None, None
    clips, inside, between = probe.window(*run.steady_wall())
    if not clips:
        return None, None, None
    inside, between = inside / clips, between / clips
    steady, _, cpu = run.steady()
    driver, workers, norm = (run.steady_driver_cpu(k) for k in ("driver_cpu", "worker_cpu", "normalize_cpu"))
    if not steady or None in (cpu, driver, workers, norm):
        return inside, between, None
    consumer, others = (driver - norm) / steady, (cpu - workers - driver) / steady
    return inside, between, 1 - inside / (inside + between + consumer + others)


def pipeline_cpus(cfg: DataConfig) -> float:
    """CPUs the pipeline may use: Ray CPUs, capped by the core count and the decode concurrency."""
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1))
    cpus = min(cpus, float(os.cpu_count() or cpus))  # logical Ray CPUs may oversubscribe the cores
    if cfg.decode_concurrency:
        cpus = min(cpus, cfg.decode_concurrency * cfg.decode_num_cpus)
    return cpus


def _per(seconds: float | None, clips: int) -> float | None:
    return seconds / clips if seconds is not None and clips else None


def _probed_stream(cfg: DataConfig, manifest: str, split: str, batch_size: int, epochs: int, meter: RayCpuMeter):
    """``bench_ray_stream`` with the decode function probed (videos only): ``(run, decode-function
    CPU per clip, Ray's CPU around it per clip, Ray's same-window share)``."""
    meter.measure_idle()
    probe = DecodeProbe() if cfg.kind != "image" else None
    try:
        run = bench_ray_stream(cfg, manifest, split, batch_size, epochs, meter, probe)
        return (run, *_probe_split(probe, run))
    finally:
        if probe is not None:
            probe.close()


def run_bench(
    cfg: DataConfig, manifest: str, *, split: str = "train", batch_size: int = 8, epochs: int = 2,
    prepared: str | None = None, bare: bool = True, stream: bool = True, plain_rows: int | None = None,
    compare_dtype: bool = False,
) -> BenchResult:
    """Plain loop (this process, the first ``plain_rows`` rows; also on ``prepared``), the bare
    loop on the pipeline's CPUs, then the pipeline (``epochs`` >= 2; streamed as training does
    unless ``stream`` is false). The caller starts or joins Ray (``videomamba.cluster.connect.init_ray``)."""
    epochs = max(2, epochs)
    columns = _columns(cfg, manifest)
    ensure_ledger("bench")
    head = (lambda c: {k: v[:plain_rows] for k, v in c.items()}) if plain_rows else (lambda c: c)
    bench_plain(cfg, {k: v[:1] for k, v in columns.items()}, split, epoch=10**6)  # warm: imports, first open
    plain_clips, plain_s, plain_cpu = bench_plain(cfg, head(columns), split)
    logger.info("plain loop: %d clips in %.2fs (%.2f CPU-s)", plain_clips, plain_s, plain_cpu)
    prep_cps = 0.0
    if prepared:
        p_clips, _, p_cpu = bench_plain(cfg, head(_columns(cfg, prepared)), split)
        prep_cps = p_clips / max(p_cpu, 1e-9)
        logger.info("plain loop, prepared: %d clips in %.2f CPU-s", p_clips, p_cpu)
    cpus = pipeline_cpus(cfg)
    procs = max(1, int(cpus))
    bare_cps = bare_cps_cpu = 0.0
    bare_steady = 0
    if bare:
        loop = bench_bare(cfg, columns, split, procs, epochs if stream else 1)
        bare_steady, secs, cpu = loop.steady() if stream else (loop.marks[-1][1], loop.marks[-1][0], loop.marks[-1][2])
        bare_cps, bare_cps_cpu = bare_steady / max(secs, 1e-9), bare_steady / max(cpu or 0.0, 1e-9)
        logger.info("bare loop, %d processes: %d clips in %.2fs (%.2f CPU-s) steady", procs, bare_steady, secs, cpu)
    meter = RayCpuMeter()
    blocks = num_blocks(len(columns["label"]) * (epochs if stream else 1), cfg.rows_per_block, cluster_cpus())
    inside = extra = same_window = None
    if stream:
        run, inside, extra, same_window = _probed_stream(cfg, manifest, split, batch_size, epochs, meter)
        ray_steady, steady_s, ray_cpu = run.steady()
        driver_cpu = run.steady_driver_cpu()
        worker_cpu, norm_cpu = run.steady_driver_cpu("worker_cpu"), run.steady_driver_cpu("normalize_cpu")
        epoch_s = run.epoch_seconds()
        epoch_clips = [run.per_epoch] * epochs
        startup = run.startup_s
    else:
        timings = bench_ray(cfg, manifest, split, batch_size, epochs, meter)
        ray_steady, steady_s = sum(c for c, _ in timings[1:]), sum(s for _, s in timings[1:])
        ray_cpu, epoch_s, epoch_clips = meter.seconds, [s for _, s in timings], [c for c, _ in timings]
        startup, driver_cpu, worker_cpu, norm_cpu = 0.0, None, None, None
    for e, (c, sec) in enumerate(zip(epoch_clips, epoch_s)):
        logger.info("ray data epoch %d: %d clips in %.2fs", e, c, sec)
    ray_cps = ray_steady / max(steady_s, 1e-9)
    ray_cps_cpu = ray_steady / ray_cpu if ray_cpu else 0.0
    plain_cps_cpu = plain_clips / max(plain_cpu, 1e-9)
    alt = None
    if compare_dtype and stream:
        other = cfg.model_copy(update={"clip_dtype": "float32" if cfg.clip_dtype == "uint8" else "uint8"})
        run2, inside2, extra2, same2 = _probed_stream(other, manifest, split, batch_size, epochs, RayCpuMeter())
        steady2, secs2, cpu2 = run2.steady()
        driver2 = run2.steady_driver_cpu()
        cps_cpu2 = steady2 / cpu2 if cpu2 else 0.0
        alt = {"clip_dtype": other.clip_dtype, "ray_steady_clips": steady2, "ray_clips_per_s": steady2 / max(secs2, 1e-9),
               "ray_clips_per_cpu_s": cps_cpu2, "ray_epoch_s": run2.epoch_seconds(), "ray_startup_s": run2.startup_s,
               "ray_driver_cpu_per_clip": driver2 / steady2 if driver2 is not None and steady2 else None,
               "ray_worker_cpu_per_clip": _per(run2.steady_driver_cpu("worker_cpu"), steady2),
               "ray_normalize_cpu_per_clip": _per(run2.steady_driver_cpu("normalize_cpu"), steady2),
               "ray_cpu_overhead": 1 - cps_cpu2 / bare_cps_cpu if bare_cps_cpu and cps_cpu2 else 0.0,
               "ray_decode_fn_cpu_per_clip": inside2, "ray_task_extra_cpu_per_clip": extra2,
               "ray_cpu_overhead_same_window": same2}
        logger.info("ray data, clip_dtype %s: %d clips in %.2fs (%.2f CPU-s) steady", other.clip_dtype, steady2, secs2,
                    cpu2 or 0.0)
    return BenchResult(
        manifest=manifest, split=split, videos=len(columns["label"]), clips=plain_clips,
        bare_procs=procs if bare else 0, bare_clips_per_s=bare_cps,
        ray_overhead=1 - ray_cps / bare_cps if bare_cps else 0.0,
        bare_clips_per_cpu_s=bare_cps_cpu, ray_clips_per_cpu_s=ray_cps_cpu,
        ray_cpu_overhead=1 - ray_cps_cpu / bare_cps_cpu if bare_cps_cpu and ray_cps_cpu else 0.0,
        stream=stream, epochs=epochs, ray_startup_s=startup, ray_epoch_s=epoch_s, ray_steady_clips=ray_steady,
        bare_steady_clips=bare_steady, blocks=blocks,
        ray_driver_cpu_per_clip=driver_cpu / ray_steady if driver_cpu is not None and ray_steady else None,
        ray_worker_cpu_per_clip=_per(worker_cpu, ray_steady), ray_normalize_cpu_per_clip=_per(norm_cpu, ray_steady),
        ray_decode_fn_cpu_per_clip=inside, ray_task_extra_cpu_per_clip=extra, ray_cpu_overhead_same_window=same_window,
        consumer_device=(consumer_device() or "cpu") if stream else "cpu",
        clip_dtype=cfg.clip_dtype, alt=alt,
        prepared_manifest=prepared, prepared_plain_clips_per_cpu_s=prep_cps,
        prepared_speedup=prep_cps / plain_cps_cpu if prepared else 0.0,
        plain_clips_per_s=plain_clips / plain_s, plain_clips_per_cpu_s=plain_cps_cpu,
        ray_cold_clips_per_s=epoch_clips[0] / max(epoch_s[0], 1e-9),
        ray_clips_per_s=ray_cps, ray_cpus=cpus, ray_clips_per_s_per_cpu=ray_cps / cpus,
        num_frames=cfg.num_frames, img_size=cfg.img_size, sampling=cfg.sampling,
        randaugment=cfg.image.auto_augment if cfg.kind == "image" else cfg.randaugment,
        machine=cpu_description(), load_avg=os.getloadavg()[0], date=datetime.date.today().isoformat(), kind=cfg.kind,
    )


MARKDOWN_HEADER = (
    "| date | machine (load avg) | manifest | videos | T x S | sampling | RandAugment "
    "| plain loop clips/s (per CPU-s) | bare loop clips/s (procs) | Ray Data clips/s (first epoch / steady) | Ray CPUs "
    "| Ray overhead vs bare: wall (CPU-s) | prepared: plain clips per CPU-s (x raw) "
    "| streamed epochs: start-up s, epoch s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def markdown_row(r: BenchResult) -> str:
    prepared = f"{r.prepared_plain_clips_per_cpu_s:.1f} ({r.prepared_speedup:.1f}x)" if r.prepared_manifest else "-"
    bare = f"{r.bare_clips_per_s:.1f} ({r.bare_procs})" if r.bare_procs else "-"
    overhead = f"{r.ray_overhead:.0%} ({r.ray_cpu_overhead:.0%})" if r.bare_procs else "-"
    stream = (f"{r.epochs}: {r.ray_startup_s:.1f}, " + " / ".join(f"{s:.1f}" for s in r.ray_epoch_s)) if r.stream else "no"
    return (
        f"| {r.date} | {r.machine} ({r.load_avg:.0f}) | `{r.manifest}` | {r.videos} | {r.num_frames} x {r.img_size} "
        f"| {r.sampling if r.kind != 'image' else 'image'} | {r.randaugment or '-'} | {r.plain_clips_per_s:.1f} ({r.plain_clips_per_cpu_s:.1f}) "
        f"| {bare} | {r.ray_cold_clips_per_s:.1f} / {r.ray_clips_per_s:.1f} | {r.ray_cpus:g} | {overhead} | {prepared} "
        f"| {stream} |\n"
    )


def record(result: BenchResult, path: str) -> None:
    """Append the result as a row of the markdown table in ``path`` (created with a header)."""
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Data pipeline benchmark\n\n" + MARKDOWN_HEADER)
        elif MARKDOWN_HEADER.splitlines()[0] not in open(path).read():
            f.write("\n" + MARKDOWN_HEADER)
        f.write(markdown_row(result))


# ---- ordered vs unordered delivery (data.deterministic) ----------------------------------------
@dataclass
class OrderBenchResult:
    """Clips/s of the pipeline with ordered delivery (``data.deterministic``) and without, timed
    in alternating warm epochs of one run (ABBA: drifts in machine load cancel)."""

    manifest: str
    split: str
    videos: int
    clips: int  # per epoch
    rounds: int
    decode_concurrency: int | None
    rows_per_block: int
    ordered_clips_per_s: float  # median over the rounds
    unordered_clips_per_s: float
    ratio: float  # ordered / unordered medians (1.0: no cost)
    ordered_best_clips_per_s: float  # fastest epoch: the least disturbed by other load
    unordered_best_clips_per_s: float
    ordered_epochs_s: list[float]
    unordered_epochs_s: list[float]
    num_frames: int
    img_size: int
    machine: str
    load_avg: tuple[float, float]  # 1-min load average at start and end
    date: str

    def as_dict(self) -> dict:
        return asdict(self)


def run_order_bench(
    cfg: DataConfig, manifest: str, *, split: str = "train", batch_size: int = 8, rounds: int = 3
) -> OrderBenchResult:
    """Build the dataset twice (``deterministic`` true/false), run one cold epoch of each, then
    ``rounds`` warm epochs of each in ABBA order, consumed with ``iter_torch_batches``."""
    load0 = os.getloadavg()[0]
    datasets = {
        flag: _build(cfg.model_copy(update={"deterministic": flag}), split, manifest=manifest, scope="bench")
        for flag in (True, False)
    }

    def epoch(flag: bool) -> tuple[int, float]:
        clips, start = 0, time.perf_counter()
        for batch in datasets[flag].iter_torch_batches(batch_size=batch_size, prefetch_batches=cfg.prefetch_batches):
            normalize_batch(batch, cfg.mean, cfg.std)
            clips += len(batch["label"])
        return clips, time.perf_counter() - start

    for flag in (True, False):
        epoch(flag)  # cold: worker processes start
    seconds: dict[bool, list[float]] = {True: [], False: []}
    clips = 0
    for r in range(rounds):
        for flag in ((True, False) if r % 2 == 0 else (False, True)):
            clips, s = epoch(flag)
            seconds[flag].append(s)
            logger.info("%s epoch: %d clips in %.2fs", "ordered" if flag else "unordered", clips, s)
    ordered = clips / float(np.median(seconds[True]))
    unordered = clips / float(np.median(seconds[False]))
    return OrderBenchResult(
        manifest=manifest, split=split, videos=len(_records(cfg, manifest)),
        clips=clips, rounds=rounds, decode_concurrency=cfg.decode_concurrency, rows_per_block=cfg.rows_per_block,
        ordered_clips_per_s=ordered, unordered_clips_per_s=unordered, ratio=ordered / unordered,
        ordered_best_clips_per_s=clips / min(seconds[True]), unordered_best_clips_per_s=clips / min(seconds[False]),
        ordered_epochs_s=seconds[True], unordered_epochs_s=seconds[False],
        num_frames=cfg.num_frames, img_size=cfg.img_size, machine=cpu_description(),
        load_avg=(load0, os.getloadavg()[0]), date=datetime.date.today().isoformat(),
    )


ORDER_HEADER = (
    "| date | machine (load avg start-end) | manifest | videos | T x S | decode tasks (concurrency) | rounds "
    "| clips/s ordered / unordered (median) | ratio | clips/s ordered / unordered (best epoch) | ratio |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def order_markdown_row(r: OrderBenchResult) -> str:
    tasks = math.ceil(r.videos / r.rows_per_block)
    return (
        f"| {r.date} | {r.machine} ({r.load_avg[0]:.0f}-{r.load_avg[1]:.0f}) | `{r.manifest}` | {r.videos} "
        f"| {r.num_frames} x {r.img_size} | {tasks} ({r.decode_concurrency or 'auto'}) | {r.rounds} "
        f"| {r.ordered_clips_per_s:.1f} / {r.unordered_clips_per_s:.1f} | {r.ratio:.2f} "
        f"| {r.ordered_best_clips_per_s:.1f} / {r.unordered_best_clips_per_s:.1f} "
        f"| {r.ordered_best_clips_per_s / r.unordered_best_clips_per_s:.2f} |\n"
    )


def record_order(result: OrderBenchResult, path: str) -> None:
    """Append the result as a row of the markdown table in ``path`` (created with a header)."""
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Ordered delivery benchmark\n\n" + ORDER_HEADER)
        f.write(order_markdown_row(result))
