"""A synthetic video classification dataset whose label is ONLY in the temporal order of frames.

A clip of ``F`` frames is split into ``m = ceil(log2 K)`` time windows. In window ``w`` one shape
(random kind, colour, size 16-22 px at 64 px, position, travel distance i.e. speed) appears and
moves along an axis (horizontal for even ``w``, vertical for odd ``w``), then disappears; bit
``w`` of the label is its direction (0: right/down, 1: left/up). Static distractor shapes,
a random background gradient and per-frame noise complete the scene.

Each video is rendered once in the canonical order (all directions positive) from random
parameters drawn independently of the label; the label then only reverses the frame order
inside the windows whose bit is 1. So the multiset of frames of a video is exactly the same for
all K labels: a model that ignores temporal order cannot beat chance (1/K), while one that sees
the order of frames can reach 100%.

Each video also gets captions describing its motion in words, e.g. "a red circle moves left,
then a blue square moves up" (the colour named after the nearest of ``COLOURS``), in up to three
phrasings (``captions_per_video``), for video-text training and retrieval.

Videos are written as real H.264 mp4 (libx264 via PyAV; MPEG-4 Part 2 if libx264 is missing).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from videomamba.data.manifest import CAPTION_SEP

logger = logging.getLogger(__name__)

SHAPES = ("square", "circle", "triangle", "diamond")
_DIRECTIONS = (("right", "left"), ("down", "up"))  # per window axis: bit 0, bit 1
#: colour names of the captions: a shape's random RGB colour is named after the nearest of these
COLOURS = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (235, 220, 50), "green": (50, 170, 60),
    "cyan": (60, 200, 210), "blue": (40, 70, 220), "purple": (140, 60, 190), "pink": (240, 130, 190),
    "white": (245, 245, 245), "gray": (128, 128, 128), "black": (15, 15, 15), "brown": (130, 80, 40),
}
#: caption phrasings: (verb, joiner between windows, prefix)
_PHRASINGS = (("moves", ", then ", ""), ("goes", " and then ", ""), ("slides", ", next ", "first "))


class SyntheticDataset(NamedTuple):
    train_manifest: str
    val_manifest: str
    classes_file: str
    test_manifest: str | None = None  # only with test_videos_per_class > 0


def class_names(num_classes: int) -> list[str]:
    """E.g. K=4: ``right-down, left-down, right-up, left-up`` (bit w of the label = direction in window w)."""
    m = _num_windows(num_classes)
    return ["-".join(_DIRECTIONS[w % 2][(c >> w) & 1] for w in range(m)) for c in range(num_classes)]


def _num_windows(num_classes: int) -> int:
    """One direction bit per window: ``ceil(log2 K)`` windows (K = 2..16)."""
    if not 2 <= num_classes <= 16:
        raise ValueError(f"classes must be in [2, 16], got {num_classes}")
    return math.ceil(math.log2(num_classes))


def windows(num_frames: int, num_classes: int) -> list[tuple[int, int]]:
    """[start, end) frame range of each time window."""
    m = _num_windows(num_classes)
    if num_frames < 2 * m:
        raise ValueError(f"need at least {2 * m} frames for {num_classes} classes")
    edges = [round(w * num_frames / m) for w in range(m + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _mask(kind: str, size: int) -> np.ndarray:
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size * 2 - 1  # [-1, 1]
    if kind == "square":
        return np.ones((size, size), bool)
    if kind == "circle":
        return xx**2 + yy**2 <= 1
    if kind == "triangle":
        return (yy >= -1) & (np.abs(xx) <= (yy + 1) / 2)
    if kind == "diamond":
        return np.abs(xx) + np.abs(yy) <= 1
    raise ValueError(kind)


def _paste(frame: np.ndarray, mask: np.ndarray, top: int, left: int, colour: np.ndarray) -> None:
    size = mask.shape[0]
    frame[top : top + size, left : left + size][mask] = colour


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    for _ in range(100):
        colour = rng.integers(0, 256, 3)
        if np.abs(colour - background).sum() >= 200:
            return colour.astype(np.uint8)
    return (255 - background).astype(np.uint8)


def colour_name(rgb) -> str:
    """The name in ``COLOURS`` nearest to an RGB triple."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return min(COLOURS, key=lambda name: float(np.sum((rgb - np.asarray(COLOURS[name])) ** 2)))


def describe(objects: list[tuple[str, str]], label: int, num_captions: int = 1) -> list[str]:
    """Captions of a clip of class ``label`` whose window ``w`` shows ``objects[w] = (colour,
    shape)``: ``num_captions`` (1-3) phrasings, e.g. "a red circle moves left, then a blue square moves up"."""
    if not 1 <= num_captions <= len(_PHRASINGS):
        raise ValueError(f"captions per video must be in [1, {len(_PHRASINGS)}], got {num_captions}")
    parts = [(colour, shape, _DIRECTIONS[w % 2][(label >> w) & 1]) for w, (colour, shape) in enumerate(objects)]
    return [
        (prefix if len(parts) > 1 else "") + joiner.join(f"a {colour} {shape} {verb} {direction}" for colour, shape, direction in parts)
        for verb, joiner, prefix in _PHRASINGS[:num_captions]
    ]


def render_canonical(num_frames: int, size: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (F, S, S, 3) with every window's motion in the positive direction."""
    return _render(num_frames, size, num_classes, rng)[0]


def _render(num_frames: int, size: int, num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """:func:`render_canonical` and the moving shape of every window, ``(colour name, shape)``."""
    scale = size / 64
    yy, xx = np.mgrid[0:size, 0:size] / size
    background = rng.integers(0, 256, 3).astype(np.int16)
    gradient = (rng.uniform(-40, 40, 3)[None, None] * (xx[..., None] * rng.uniform(-1, 1) + yy[..., None]))
    base = np.clip(background + gradient, 0, 255)
    for _ in range(int(rng.integers(1, 3))):  # static distractors
        d = max(3, int(rng.integers(8, 13) * scale))
        _paste(base, _mask(SHAPES[rng.integers(len(SHAPES))], d), int(rng.integers(0, size - d + 1)),
               int(rng.integers(0, size - d + 1)), _contrasting_colour(rng, background))
    frames = np.repeat(base[None], num_frames, axis=0)
    objects = []
    for w, (start, end) in enumerate(windows(num_frames, num_classes)):
        d = max(4, int(rng.integers(16, 23) * scale))
        kind = SHAPES[rng.integers(len(SHAPES))]
        mask = _mask(kind, d)
        colour = _contrasting_colour(rng, background)
        objects.append((colour_name(colour), kind))
        span = size - d
        travel = int(rng.uniform(0.45, 1.0) * span)  # speed varies with the travel distance
        a = int(rng.integers(0, span - travel + 1))
        along = np.round(np.linspace(a, a + travel, end - start)).astype(int)
        across = int(rng.integers(0, span + 1))
        for t, p in zip(range(start, end), along):
            top, left = (across, p) if w % 2 == 0 else (p, across)
            _paste(frames[t], mask, top, left, colour)
    noise = rng.normal(0, 5, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8), objects


def order_for_label(label: int, num_frames: int, num_classes: int) -> np.ndarray:
    """Frame permutation (F,) turning the canonical clip into class ``label``: windows whose
    label bit is 1 are time-reversed."""
    order = np.arange(num_frames)
    for w, (start, end) in enumerate(windows(num_frames, num_classes)):
        if (label >> w) & 1:
            order[start:end] = order[start:end][::-1]
    return order


def render_video(label: int, num_frames: int, size: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (F, S, S, 3) of class ``label``."""
    return render_canonical(num_frames, size, num_classes, rng)[order_for_label(label, num_frames, num_classes)]


def pick_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_mp4(path: str, frames: np.ndarray, fps: int = 8, codec: str | None = None) -> None:
    """Encode uint8 (F, H, W, 3) (H, W even) as an mp4."""
    import av

    codec = codec or pick_codec()
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        else:
            stream.bit_rate = 2_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@dataclass(frozen=True)
class _Spec:
    split: str
    number: int
    label: int


def make_synthetic_dataset(
    out_dir: str,
    classes: int = 4,
    videos_per_class: int = 16,
    *,
    val_videos_per_class: int | None = None,
    frames: int = 16,
    size: int = 64,
    fps: int = 8,
    seed: int = 0,
    codec: str | None = None,
    progress: bool = False,
    captions_per_video: int = 1,
    test_videos_per_class: int = 0,
) -> SyntheticDataset:
    """Write ``out_dir/{train,val}/*.mp4``, ``train.csv``, ``val.csv`` and ``classes.txt`` (and a
    held-out ``test`` split with ``test_videos_per_class > 0``).

    ``videos_per_class`` train videos and ``val_videos_per_class`` (default ``max(2, N // 4)``)
    val videos per class; manifests hold paths relative to ``out_dir`` and ``captions_per_video``
    (1-3) captions of the motion per video (``|``-separated, :func:`describe`).
    """
    if size % 2 or size < 16:
        raise ValueError("size must be even and >= 16")
    names = class_names(classes)
    windows(frames, classes)  # validates frames vs classes
    val_n = max(2, videos_per_class // 4) if val_videos_per_class is None else val_videos_per_class
    codec = codec or pick_codec()
    counts = {"train": videos_per_class, "val": val_n, "test": test_videos_per_class}
    specs = [_Spec(split, i * classes + c, c) for split, n in counts.items() for i in range(n) for c in range(classes)]
    describe([], 0, captions_per_video)  # validates the number of captions
    rows: dict[str, list[tuple[str, int, str]]] = {split: [] for split, n in counts.items() if n > 0 or split != "test"}
    for split in rows:
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    iterator = specs
    if progress:
        from rich.progress import track

        iterator = track(specs, description=f"writing {len(specs)} videos")
    split_seed = {"train": 0, "val": 1, "test": 2}
    for spec in iterator:
        rng = np.random.default_rng([seed, split_seed[spec.split], spec.number])
        rel = os.path.join(spec.split, f"{spec.number:05d}.mp4")
        canonical, objects = _render(frames, size, classes, rng)
        write_mp4(os.path.join(out_dir, rel), canonical[order_for_label(spec.label, frames, classes)], fps, codec)
        rows[spec.split].append((rel, spec.label, CAPTION_SEP.join(describe(objects, spec.label, captions_per_video))))
    for split, split_rows in rows.items():
        with open(os.path.join(out_dir, f"{split}.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "caption"])
            writer.writerows(split_rows)
    classes_file = os.path.join(out_dir, "classes.txt")
    with open(classes_file, "w") as f:
        f.write("\n".join(names) + "\n")
    logger.info("wrote %s videos (%s, %d frames, %d px) to %s",
                " + ".join(f"{len(r)} {split}" for split, r in rows.items()), codec, frames, size, out_dir)
    return SyntheticDataset(
        os.path.join(out_dir, "train.csv"), os.path.join(out_dir, "val.csv"), classes_file,
        os.path.join(out_dir, "test.csv") if "test" in rows else None,
    )
