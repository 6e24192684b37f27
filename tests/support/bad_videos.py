"""Bad inputs for tests: one manifest row of every kind of unusable (or short) video."""

from __future__ import annotations

import csv
import os

import numpy as np

from videomamba.data.synth import render_video, write_mp4

BAD_KINDS = {  # file name -> reason the pipeline reports ("short" videos are kept, frames repeated)
    "missing.mp4": "missing",
    "empty.mp4": "empty",
    "truncated.mp4": "unreadable",
    "garbage_header.mp4": "unreadable",
    "not_a_video.mp4": "unreadable",
    "short.mp4": "short",
}


def add_bad_entries(manifest: str, *, seed: int = 0, label: int = 0) -> dict[str, str]:
    """Append one row of every kind of bad input (``BAD_KINDS``) to a CSV ``manifest``, writing the
    files under ``<manifest dir>/bad/``; returns {path as written in the manifest: expected reason}."""
    root = os.path.dirname(os.path.abspath(manifest))
    os.makedirs(os.path.join(root, "bad"), exist_ok=True)
    rng = np.random.default_rng([seed, 0xBAD])
    good = os.path.join(root, "bad", "_good.mp4")
    write_mp4(good, render_video(0, 16, 64, 2, rng))
    data = open(good, "rb").read()
    os.remove(good)
    contents = {
        "empty.mp4": b"",
        "truncated.mp4": data[: len(data) // 2],
        "garbage_header.mp4": rng.integers(0, 256, 64, dtype=np.uint8).tobytes() + data[64:],
        "not_a_video.mp4": b"this is a text file, not a video\n" * 20,
    }
    for name, blob in contents.items():
        with open(os.path.join(root, "bad", name), "wb") as f:
            f.write(blob)
    write_mp4(os.path.join(root, "bad", "short.mp4"), render_video(0, 3, 64, 2, rng))
    rel = {os.path.join("bad", name): reason for name, reason in BAD_KINDS.items()}
    with open(manifest, "a", newline="") as f:
        csv.writer(f).writerows([(path, label, "bad input") for path in rel])
    return rel
