"""Sweep of ``data prepare`` settings (short side x keyframe interval) on real footage.

For every setting, each source video is transcoded with ``videomamba.data.prepare.transcode``,
then a training clip (T frames, TSN segment sampling with random offsets, decoded with the
pipeline's ``decode_clips`` at the training decode short side) is decoded ``--clips`` times:
clips per CPU-second (``time.process_time`` of this single-threaded process: robust to a busy
machine), bytes per second of video, and a visual check (one frame per setting, the same
frame, side by side at the decoded size -> ``prepare_sweep.png``). The raw source is the first row.

    PYTHONPATH=platform python benchmarks/prepare_sweep.py /work/footage/bigbuckbunny.mp4 \
        /work/footage/bikes.mp4 --out benchmarks/prepare_sweep
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time

import numpy as np

from videomamba.env import cpu_description
from videomamba.data import sampling
from videomamba.data.decode import decode_clips
from videomamba.data.prepare import PrepareSettings, transcode


def clip_rate(path: str, clips: int, num_frames: int, short_side: int, seed: int = 0) -> tuple[float, float]:
    """(clips per CPU-second, clips per wall-second) of decoding random segment clips."""
    rng = np.random.default_rng(seed)

    def pick(info):
        return sampling.segment_indices(info.num_frames, num_frames, rng=rng)

    decode_clips(path, pick, short_side=short_side)  # warm (imports, page cache)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(clips):
        decode_clips(path, pick, short_side=short_side)
    return clips / (time.process_time() - cpu), clips / (time.perf_counter() - wall)


def frame_at(path: str, index: int, short_side: int) -> np.ndarray:
    frames, _ = decode_clips(path, lambda info: np.array([min(index, info.num_frames - 1)]), short_side=short_side)
    return frames[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--short-sides", default="0,320,256,224")
    ap.add_argument("--keyints", default="64,32,16,8,4")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--decode-short-side", type=int, default=256, help="the pipeline's train decode size")
    ap.add_argument("--frame", type=int, default=60, help="frame shown in the visual check")
    ap.add_argument("--out", default="benchmarks/prepare_sweep")
    args = ap.parse_args()
    short_sides = [int(x) for x in args.short_sides.split(",")]
    keyints = [int(x) for x in args.keyints.split(",")]
    rows, tiles = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for video in args.videos:
            name = os.path.splitext(os.path.basename(video))[0]
            cps, wall = clip_rate(video, args.clips, args.num_frames, args.decode_short_side)
            size = os.path.getsize(video)
            info = transcode(video, os.path.join(tmp, "probe.mp4"), PrepareSettings(short_side=0, keyint=250))
            dur = info["src_duration"] or info["out_duration"]
            rows.append({"video": name, "setting": "raw", "short_side": None, "keyint": None, "size": info["src_size"],
                         "clips_per_cpu_s": cps, "clips_per_s": wall, "kbytes_per_s": size / dur / 1024})
            tiles.append((f"{name} raw", frame_at(video, args.frame, args.decode_short_side)))
            print(rows[-1], flush=True)
            for ss in short_sides:
                for k in keyints:
                    out = os.path.join(tmp, f"{name}_{ss}_{k}.mp4")
                    settings = PrepareSettings(short_side=ss, keyint=k)
                    t = time.process_time()
                    info = transcode(video, out, settings)
                    enc_cpu = time.process_time() - t
                    cps, wall = clip_rate(out, args.clips, args.num_frames, args.decode_short_side)
                    rows.append({"video": name, "setting": f"s{ss or 'native'} k{k}", "short_side": ss, "keyint": k,
                                 "size": info["out_size"], "clips_per_cpu_s": cps, "clips_per_s": wall,
                                 "kbytes_per_s": os.path.getsize(out) / info["out_duration"] / 1024,
                                 "encode_cpu_s_per_video_s": enc_cpu / info["out_duration"]})
                    print(rows[-1], flush=True)
                    if k == min(keyints) or k == max(keyints):
                        tiles.append((f"{name} s{ss or 'native'} k{k}", frame_at(out, args.frame, args.decode_short_side)))
    meta = {"date": datetime.date.today().isoformat(), "machine": cpu_description(),
            "load_avg": os.getloadavg()[0], "num_frames": args.num_frames, "decode_short_side": args.decode_short_side,
            "clips": args.clips}
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    _grid(tiles, args.out + ".png")
    print(json.dumps(meta))


def _grid(tiles: list[tuple[str, np.ndarray]], path: str, cols: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(tiles) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), tiles):
        ax.imshow(img)
        ax.set_title(f"{title} ({img.shape[1]}x{img.shape[0]})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
