"""``data bench``: clips/s of the Ray Data pipeline vs a plain single-process decord loop.

Both run the same per-video work (``pipeline.decode_batch``: sample, decode, transform) over the
same manifest rows: the plain loop in this process (single-threaded decord), the pipeline as Ray
Data tasks consumed through ``iter_torch_batches`` (what a training worker sees). The pipeline is
timed on warm epochs (after one cold epoch that starts the worker processes). The loop's CPU time
is recorded too: on a shared machine clips per CPU-second is the stable number.

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

from videomamba.bench.machine import cpu_model
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
    num_frames: int
    img_size: int
    sampling: str
    randaugment: str | None
    machine: str
    load_avg: float  # 1-min load average when the benchmark ended
    date: str

    def as_dict(self) -> dict:
        return asdict(self)


def machine_description() -> str:
    """CPU model and core count (Linux ``/proc/cpuinfo``; ``platform`` elsewhere)."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def bench_plain(cfg: DataConfig, columns: dict[str, np.ndarray], split: str) -> tuple[int, float, float]:
    """(clips, wall seconds, CPU seconds) of the decode+transform loop in this process."""
    n, clips = len(columns["label"]), 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for lo in range(0, n, cfg.decode_batch_size):
        rows = np.arange(lo, min(n, lo + cfg.decode_batch_size))
        out = decode_batch(take_rows(columns, rows, 0), cfg=cfg, split=split, seed=cfg.seed, scope="bench")
        clips += len(out["label"])
    return clips, time.perf_counter() - start, time.process_time() - cpu_start


def bench_ray(cfg: DataConfig, manifest: str, split: str, batch_size: int, epochs: int) -> list[tuple[int, float]]:
    """[(clips, seconds)] per epoch of ``iter_torch_batches`` over ``build_dataset``."""
    ds = build_dataset(cfg, split, manifest=manifest, scope="bench")
    timings = []
    for _ in range(epochs):
        clips, start = 0, time.perf_counter()
        for batch in ds.iter_torch_batches(batch_size=batch_size, prefetch_batches=cfg.prefetch_batches):
            clips += len(batch["label"])
        timings.append((clips, time.perf_counter() - start))
    return timings


def run_bench(
    cfg: DataConfig, manifest: str, *, split: str = "train", batch_size: int = 8, epochs: int = 2
) -> BenchResult:
    """Plain loop first (this process), then the pipeline (``epochs`` >= 2; the first is cold)."""
    import ray

    records = read_manifest(manifest, classes_file=cfg.classes_file, path_prefix=cfg.path_prefix,
                            fmt=cfg.manifest_format)
    ensure_ledger("bench")
    plain_clips, plain_s, plain_cpu = bench_plain(cfg, to_columns(records), split)
    logger.info("plain loop: %d clips in %.2fs (%.2f CPU-s)", plain_clips, plain_s, plain_cpu)
    timings = bench_ray(cfg, manifest, split, batch_size, max(2, epochs))
    for e, (c, s) in enumerate(timings):
        logger.info("ray data epoch %d: %d clips in %.2fs", e, c, s)
    warm_clips = sum(c for c, _ in timings[1:])
    warm_s = sum(s for _, s in timings[1:])
    cpus = float(ray.cluster_resources().get("CPU", 1))
    cpus = min(cpus, float(os.cpu_count() or cpus))  # logical Ray CPUs may oversubscribe the cores
    if cfg.decode_concurrency:
        cpus = min(cpus, cfg.decode_concurrency * cfg.decode_num_cpus)
    ray_cps = warm_clips / warm_s
    return BenchResult(
        manifest=manifest, split=split, videos=len(records), clips=plain_clips,
        plain_clips_per_s=plain_clips / plain_s, plain_clips_per_cpu_s=plain_clips / plain_cpu,
        ray_cold_clips_per_s=timings[0][0] / timings[0][1],
        ray_clips_per_s=ray_cps, ray_cpus=cpus, ray_clips_per_s_per_cpu=ray_cps / cpus,
        num_frames=cfg.num_frames, img_size=cfg.img_size, sampling=cfg.sampling, randaugment=cfg.randaugment,
        machine=machine_description(), load_avg=os.getloadavg()[0], date=datetime.date.today().isoformat(),
    )


MARKDOWN_HEADER = (
    "| date | machine (load avg) | manifest | videos | T x S | sampling | RandAugment "
    "| plain loop clips/s (per CPU-s) | Ray Data clips/s (cold / warm) | Ray CPUs | Ray clips/s per CPU |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def markdown_row(r: BenchResult) -> str:
    return (
        f"| {r.date} | {r.machine} ({r.load_avg:.0f}) | `{r.manifest}` | {r.videos} | {r.num_frames} x {r.img_size} "
        f"| {r.sampling} | {r.randaugment or '-'} | {r.plain_clips_per_s:.1f} ({r.plain_clips_per_cpu_s:.1f}) "
        f"| {r.ray_cold_clips_per_s:.1f} / {r.ray_clips_per_s:.1f} | {r.ray_cpus:g} | {r.ray_clips_per_s_per_cpu:.1f} |\n"
    )


def record(result: BenchResult, path: str) -> None:
    """Append the result as a row of the markdown table in ``path`` (created with a header)."""
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Data pipeline benchmark\n\n" + MARKDOWN_HEADER)
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
        num_frames=cfg.num_frames, img_size=cfg.img_size, machine=machine_description(),
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
