"""``data bench``: clips/s of the Ray Data pipeline vs bare decord loops, raw vs prepared footage.

All loaders run the same per-video work (``pipeline.decode_batch``: sample, decode with decord,
transform) over the same manifest rows:

- **plain loop**: one process, a Python ``for`` (its CPU time too: clips per CPU-second is the
  number that does not depend on what else runs on the machine);
- **bare loop on N cores**: N worker processes (no Ray), each a plain loop over its share of
  the rows, N = the CPUs the pipeline may use: the pipeline's ideal on the same cores;
- **Ray Data**: ``build_dataset(cfg, split)`` consumed with ``iter_torch_batches`` in the driver
  (what a training worker sees), timed on warm epochs after one cold one.

``overhead = 1 - ray clips/s / bare clips/s`` (target <= 0.10), and the same in clips per CPU-second
(the bare processes' CPU time vs the driver's + every Ray process's during the warm epochs, less the
Ray instance's idle background rate): on a busy machine only the CPU-second figures mean anything. With ``prepared`` (the manifest
``videomamba data prepare`` wrote for the same videos) the plain loop also runs on it, and
``prepared_speedup`` = prepared / raw clips per CPU-second (target >= 5 from 720p sources).

``run_order_bench`` times the pipeline with and without ordered delivery (``data.deterministic``)
side by side in one run (``data bench --compare-order``).
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from videomamba.env import cpu_description
from videomamba.data.config import DataConfig
from videomamba.data.manifest import read_manifest, to_columns
from videomamba.data.pipeline import build_dataset, decode_batch, take_rows
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

    def as_dict(self) -> dict:
        return asdict(self)


def bench_plain(cfg: DataConfig, columns: dict[str, np.ndarray], split: str) -> tuple[int, float, float]:
    """(clips, wall seconds, CPU seconds) of the decode+transform loop in this process."""
    n, clips = len(columns["label"]), 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for lo in range(0, n, cfg.decode_batch_size):
        rows = np.arange(lo, min(n, lo + cfg.decode_batch_size))
        out = decode_batch(take_rows(columns, rows, 0), cfg=cfg, split=split, seed=cfg.seed, scope="bench")
        clips += len(out["label"])
    return clips, time.perf_counter() - start, time.process_time() - cpu_start


def _bare_worker(args) -> tuple[int, float]:
    """One bare-loop process: (clips, CPU seconds) of decode_batch over its rows."""
    cfg_json, columns, split = args
    cfg = DataConfig.model_validate_json(cfg_json)
    clips, _, cpu = bench_plain(cfg, columns, split)
    return clips, cpu


def bench_bare(cfg: DataConfig, columns: dict[str, np.ndarray], split: str, procs: int) -> tuple[int, float, float]:
    """(clips, wall seconds, CPU seconds) of ``procs`` processes (no Ray) sharing the rows
    round-robin; the processes are started and warmed (imports, first video) before the clock starts."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    shares = [{k: v[i::procs] for k, v in columns.items()} for i in range(procs)]
    warm = [{k: v[:1] for k, v in columns.items()}] * procs
    with ProcessPoolExecutor(procs, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_bare_worker, [(cfg.model_dump_json(), w, split) for w in warm]))
        start = time.perf_counter()
        results = list(pool.map(_bare_worker, [(cfg.model_dump_json(), sh, split) for sh in shares if len(sh["label"])]))
        wall = time.perf_counter() - start
    return sum(c for c, _ in results), wall, sum(cpu for _, cpu in results)


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
        self._start: dict[int, float] = {}

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

        self.idle_rate = 0.0  # CPU-s per second the instance burns while no pipeline runs

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


def bench_ray(cfg: DataConfig, manifest: str, split: str, batch_size: int, epochs: int,
              meter: RayCpuMeter | None = None) -> list[tuple[int, float]]:
    """[(clips, seconds)] per epoch of ``iter_torch_batches`` over ``build_dataset``; ``meter``
    measures the CPU of the warm epochs (all but the first)."""
    ds = build_dataset(cfg, split, manifest=manifest, scope="bench")
    timings = []
    for e in range(epochs):
        if e == 1 and meter is not None:
            meter.measure_idle()
            meter.start()
        clips, start = 0, time.perf_counter()
        for batch in ds.iter_torch_batches(batch_size=batch_size, prefetch_batches=cfg.prefetch_batches):
            clips += len(batch["label"])
        timings.append((clips, time.perf_counter() - start))
    if meter is not None and epochs > 1:
        meter.stop()
    return timings


def _columns(cfg: DataConfig, manifest: str) -> dict[str, np.ndarray]:
    records = read_manifest(manifest, classes_file=cfg.classes_file, path_prefix=cfg.path_prefix,
                            fmt=cfg.manifest_format)
    return to_columns(records)


def pipeline_cpus(cfg: DataConfig) -> float:
    """CPUs the pipeline may use: Ray CPUs, capped by the core count and the decode concurrency."""
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1))
    cpus = min(cpus, float(os.cpu_count() or cpus))  # logical Ray CPUs may oversubscribe the cores
    if cfg.decode_concurrency:
        cpus = min(cpus, cfg.decode_concurrency * cfg.decode_num_cpus)
    return cpus


def run_bench(
    cfg: DataConfig, manifest: str, *, split: str = "train", batch_size: int = 8, epochs: int = 2,
    prepared: str | None = None, bare: bool = True,
) -> BenchResult:
    """Plain loop (this process; also on ``prepared``), the bare loop on the pipeline's CPUs, then
    the pipeline (``epochs`` >= 2; the first is cold). Starts a local Ray if none is running."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), configure_logging=False)
    columns = _columns(cfg, manifest)
    ensure_ledger("bench")
    plain_clips, plain_s, plain_cpu = bench_plain(cfg, columns, split)
    logger.info("plain loop: %d clips in %.2fs (%.2f CPU-s)", plain_clips, plain_s, plain_cpu)
    prep_cps = 0.0
    if prepared:
        p_clips, _, p_cpu = bench_plain(cfg, _columns(cfg, prepared), split)
        prep_cps = p_clips / max(p_cpu, 1e-9)
        logger.info("plain loop, prepared: %d clips in %.2f CPU-s", p_clips, p_cpu)
    cpus = pipeline_cpus(cfg)
    procs = max(1, int(cpus))
    bare_clips, bare_s, bare_cpu = bench_bare(cfg, columns, split, procs) if bare else (0, 0.0, 0.0)
    if bare:
        logger.info("bare loop, %d processes: %d clips in %.2fs (%.2f CPU-s)", procs, bare_clips, bare_s, bare_cpu)
    meter = RayCpuMeter()
    timings = bench_ray(cfg, manifest, split, batch_size, max(2, epochs), meter)
    for e, (c, s) in enumerate(timings):
        logger.info("ray data epoch %d: %d clips in %.2fs", e, c, s)
    warm_clips = sum(c for c, _ in timings[1:])
    warm_s = sum(s for _, s in timings[1:])
    ray_cps = warm_clips / warm_s
    bare_cps = bare_clips / bare_s if bare_s else 0.0
    bare_cps_cpu = bare_clips / bare_cpu if bare_cpu else 0.0
    ray_cps_cpu = warm_clips / meter.seconds if meter.seconds else 0.0
    plain_cps_cpu = plain_clips / max(plain_cpu, 1e-9)
    return BenchResult(
        manifest=manifest, split=split, videos=len(columns["label"]), clips=plain_clips,
        bare_procs=procs if bare else 0, bare_clips_per_s=bare_cps,
        ray_overhead=1 - ray_cps / bare_cps if bare_cps else 0.0,
        bare_clips_per_cpu_s=bare_cps_cpu, ray_clips_per_cpu_s=ray_cps_cpu,
        ray_cpu_overhead=1 - ray_cps_cpu / bare_cps_cpu if bare_cps_cpu and ray_cps_cpu else 0.0,
        prepared_manifest=prepared, prepared_plain_clips_per_cpu_s=prep_cps,
        prepared_speedup=prep_cps / plain_cps_cpu if prepared else 0.0,
        plain_clips_per_s=plain_clips / plain_s, plain_clips_per_cpu_s=plain_cps_cpu,
        ray_cold_clips_per_s=timings[0][0] / timings[0][1],
        ray_clips_per_s=ray_cps, ray_cpus=cpus, ray_clips_per_s_per_cpu=ray_cps / cpus,
        num_frames=cfg.num_frames, img_size=cfg.img_size, sampling=cfg.sampling, randaugment=cfg.randaugment,
        machine=cpu_description(), load_avg=os.getloadavg()[0], date=datetime.date.today().isoformat(),
    )


MARKDOWN_HEADER = (
    "| date | machine (load avg) | manifest | videos | T x S | sampling | RandAugment "
    "| plain loop clips/s (per CPU-s) | bare loop clips/s (procs) | Ray Data clips/s (cold / warm) | Ray CPUs "
    "| Ray overhead vs bare: wall (CPU-s) | prepared: plain clips per CPU-s (x raw) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def markdown_row(r: BenchResult) -> str:
    prepared = f"{r.prepared_plain_clips_per_cpu_s:.1f} ({r.prepared_speedup:.1f}x)" if r.prepared_manifest else "-"
    bare = f"{r.bare_clips_per_s:.1f} ({r.bare_procs})" if r.bare_procs else "-"
    overhead = f"{r.ray_overhead:.0%} ({r.ray_cpu_overhead:.0%})" if r.bare_procs else "-"
    return (
        f"| {r.date} | {r.machine} ({r.load_avg:.0f}) | `{r.manifest}` | {r.videos} | {r.num_frames} x {r.img_size} "
        f"| {r.sampling} | {r.randaugment or '-'} | {r.plain_clips_per_s:.1f} ({r.plain_clips_per_cpu_s:.1f}) "
        f"| {bare} | {r.ray_cold_clips_per_s:.1f} / {r.ray_clips_per_s:.1f} | {r.ray_cpus:g} | {overhead} | {prepared} |\n"
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
        flag: build_dataset(cfg.model_copy(update={"deterministic": flag}), split, manifest=manifest, scope="bench")
        for flag in (True, False)
    }

    def epoch(flag: bool) -> tuple[int, float]:
        clips, start = 0, time.perf_counter()
        for batch in datasets[flag].iter_torch_batches(batch_size=batch_size, prefetch_batches=cfg.prefetch_batches):
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
        manifest=manifest, split=split, videos=len(read_manifest(manifest, classes_file=cfg.classes_file,
                                                                   path_prefix=cfg.path_prefix, fmt=cfg.manifest_format)),
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
