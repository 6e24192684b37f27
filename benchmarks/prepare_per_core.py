"""Raw vs prepared 720p footage, clips per CPU-second of the pipeline's whole per-clip work.

Issue 14's target: ``data prepare``'d footage gives >= 5x the clips/s per core of raw 720p
sources. For each ``data prepare`` setting (``--variants``; transcoded here with
``videomamba.data.prepare.transcode`` into ``--work``, or read from there when already written:
the GPU host has no PyAV), the raw source and every prepared copy go through
``pipeline.decode_batch`` (segment sampling, one decord reader, tail check, random resized crop +
flip, RandAugment, normalise: what one decode task does per video) ``--clips`` times, and the
same with decoding alone. Each variant runs in its own process (``--procs`` at a time; on an idle
machine ``--procs`` up to the core count measures them side by side); **clips per CPU-second** is
``time.process_time`` of that process. Quality: PSNR (dB, RGB, at the training decode size) of the
first ``--psnr-frames`` frames of each prepared copy against the raw source decoded and resized
the same way.

    PYTHONPATH=platform python benchmarks/prepare_per_core.py /work/footage/bigbuckbunny.mp4 \\
        --work /tmp/ppc --out benchmarks/prepare_per_core_DATE_MACHINE.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# name -> PrepareSettings fields (the rest: defaults of the version that wrote the row)
VARIANTS = {
    "s256_k8": {"short_side": 256, "keyint": 8},
    "s256_k8_fastdecode": {"short_side": 256, "keyint": 8, "tune": "fastdecode"},
    "s256_k8_b0": {"short_side": 256, "keyint": 8, "bframes": 0},
    "s256_k8_fastdecode_b0": {"short_side": 256, "keyint": 8, "tune": "fastdecode", "bframes": 0},
    "s256_k4": {"short_side": 256, "keyint": 4},
    "s256_k4_fastdecode": {"short_side": 256, "keyint": 4, "tune": "fastdecode"},
    "s256_k16_fastdecode": {"short_side": 256, "keyint": 16, "tune": "fastdecode"},
    "s224_k8": {"short_side": 224, "keyint": 8},
}


def settings_of(name: str) -> dict:
    base = {"preset": "veryfast", "crf": 23}
    return {**base, **VARIANTS[name]}


def prepare_variant(src: str, work: str, name: str) -> str:
    """The prepared copy of ``src`` for ``name`` (transcoded when not yet in ``work``)."""
    dst = os.path.join(work, f"{name}.mp4")
    if not os.path.exists(dst):
        from videomamba.data.prepare import PrepareSettings, transcode

        transcode(src, dst + ".tmp.mp4", PrepareSettings(**settings_of(name)))
        os.replace(dst + ".tmp.mp4", dst)
    return dst


def measure(args) -> dict:
    """One video: clips per CPU-second of decode_batch (full per-clip work) and of decoding alone."""
    path, clips, randaugment, num_frames, img_size = args
    from videomamba.data import sampling
    from videomamba.data.config import DataConfig
    from videomamba.data.decode import decode_clips
    from videomamba.data.pipeline import decode_batch

    import torch

    torch.set_num_threads(1)  # as in a Ray decode task (OMP_NUM_THREADS=1)
    cfg = DataConfig(num_frames=num_frames, img_size=img_size, randaugment=randaugment, decode_batch_size=1,
                     clip_dtype="float32")  # the full per-clip work, normalisation included (as recorded)
    batch = lambda e: {"path": np.array([path]), "label": np.array([0]), "index": np.array([0]),  # noqa: E731
                       "epoch": np.array([e]), "start_sec": np.array([np.nan]), "end_sec": np.array([np.nan])}
    import videomamba.data.pipeline as pipeline

    pipeline.record_skip = lambda *a, **k: None  # no Ray here: a skip would be a bug anyway
    decode_batch(batch(0), cfg=cfg, split="train", seed=0, scope="bench")  # warm: imports, page cache
    t = time.process_time()
    for e in range(clips):
        out = decode_batch(batch(e + 1), cfg=cfg, split="train", seed=0, scope="bench")
        assert len(out["label"]) == 1, "video skipped"
    full = clips / (time.process_time() - t)
    rng = np.random.default_rng(0)
    pick = lambda info: sampling.segment_indices(info.num_frames, num_frames, rng=rng)  # noqa: E731
    t = time.process_time()
    for _ in range(clips):
        decode_clips(path, pick, short_side=cfg.train_short_side)
    decode = clips / (time.process_time() - t)
    return {"path": path, "clips_per_cpu_s": full, "decode_clips_per_cpu_s": decode,
            "bytes": os.path.getsize(path)}


def psnr(raw: str, prepared: str, frames: int, short_side: int) -> float:
    from videomamba.data.decode import decode_clips, shrink

    idx = lambda info: np.arange(min(frames, info.num_frames))  # noqa: E731
    a, _ = decode_clips(raw, idx, short_side=short_side, check_tail=False)
    b, _ = decode_clips(prepared, idx, short_side=short_side, check_tail=False)
    if a.shape != b.shape:
        b = shrink(b, a.shape[1], a.shape[2])
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", help="the raw (720p) source")
    ap.add_argument("--work", required=True, help="folder of the prepared copies (written when missing)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=1, help="measurements of each video (median taken)")
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--randaugment", default="rand-m7-n4-mstd0.5-inc1", help="timm spec or 'none'")
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--psnr-frames", type=int, default=32)
    ap.add_argument("--prepare-only", action="store_true", help="write the prepared copies and stop")
    ap.add_argument("--out", required=True, help="JSON; a markdown table goes beside it (.md)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    names = [n for n in args.variants.split(",") if n]
    paths = {"raw": args.video, **{n: prepare_variant(args.video, args.work, n) for n in names}}
    if args.prepare_only:
        return
    ra = None if args.randaugment.lower() == "none" else args.randaugment
    jobs = [(name, (path, args.clips, ra, args.num_frames, args.img_size))
            for _ in range(args.repeats) for name, path in paths.items()]
    import multiprocessing as mp

    with ProcessPoolExecutor(args.procs, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(measure, [j for _, j in jobs]))
    by: dict[str, list[dict]] = {}
    for (name, _), r in zip(jobs, results):
        by.setdefault(name, []).append(r)
    from videomamba.env import cpu_description
    from videomamba.data.config import DataConfig

    short = DataConfig(num_frames=args.num_frames, img_size=args.img_size).train_short_side
    raw_rate = float(np.median([r["clips_per_cpu_s"] for r in by["raw"]]))
    raw_dec = float(np.median([r["decode_clips_per_cpu_s"] for r in by["raw"]]))
    rows = []
    for name, rs in by.items():
        full = float(np.median([r["clips_per_cpu_s"] for r in rs]))
        dec = float(np.median([r["decode_clips_per_cpu_s"] for r in rs]))
        rows.append({"variant": name, "settings": settings_of(name) if name != "raw" else None,
                     "clips_per_cpu_s": full, "x_raw": full / raw_rate, "decode_clips_per_cpu_s": dec,
                     "decode_x_raw": dec / raw_dec, "bytes": rs[0]["bytes"],
                     "psnr_db": None if name == "raw" else psnr(args.video, paths[name], args.psnr_frames, short),
                     "runs": [r["clips_per_cpu_s"] for r in rs]})
    report = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": cpu_description(), "load_avg": os.getloadavg(),
              "video": args.video, "clips": args.clips, "repeats": args.repeats, "procs": args.procs,
              "randaugment": ra, "num_frames": args.num_frames, "img_size": args.img_size, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    lines = [f"{report['date']}, {report['machine']}, load avg {report['load_avg'][0]:.1f}; {args.clips} clips x "
             f"{args.repeats} per video, {args.procs} at a time; T={args.num_frames}, {args.img_size} px, RandAugment {ra}",
             "", "| variant | clips per CPU-s (full) | x raw | decode only: clips per CPU-s | x raw | KiB | PSNR dB vs raw |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "-" if r["psnr_db"] is None else f"{r['psnr_db']:.1f}"
        lines.append(f"| {r['variant']} | {r['clips_per_cpu_s']:.1f} | {r['x_raw']:.2f} | {r['decode_clips_per_cpu_s']:.1f} "
                     f"| {r['decode_x_raw']:.2f} | {r['bytes'] / 1024:.0f} | {p} |")
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
