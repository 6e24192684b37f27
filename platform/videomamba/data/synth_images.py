"""Synthetic image classification data whose label is one visual property, with random position,
length, thickness, colours and noise, so none of those carries information:

- ``property="orientation"`` (default): the ORIENTATION of a bar (horizontal, 45 degrees,
  vertical, 135 degrees, then 22.5-degree steps); a horizontal flip swaps 45 and 135, so train
  without ``hflip``;
- ``property="shape"``: the SHAPE drawn (circle, square, triangle, cross, ...), small random
  rotation; flip-invariant (harder for small models).

``make_synthetic_images(out_dir, classes=4, images_per_class=64)`` writes the class-per-folder
layout ``out_dir/{train,val[,test]}/<shape>/<i>.{png,jpg}`` (formats alternate) and
``classes.txt``; the train/val/test folders are ``data.<split>_manifest`` of ``data.kind: image``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "ring")
ORIENTATIONS = {"horizontal": 0.0, "deg45": 45.0, "vertical": 90.0, "deg135": 135.0,
                "deg22": 22.5, "deg67": 67.5, "deg112": 112.5, "deg157": 157.5}


@dataclass(frozen=True)
class SyntheticImages:
    train_dir: str
    val_dir: str
    classes_file: str
    test_dir: str | None = None


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def rot(points):
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]

    if shape == "square":
        return rot([(-r, -r), (r, -r), (r, r), (-r, r)])
    if shape == "diamond":
        return rot([(0, -r * 1.3), (r, 0), (0, r * 1.3), (-r, 0)])
    if shape == "triangle":
        return rot([(0, -r), (r * 0.95, r * 0.75), (-r * 0.95, r * 0.75)])
    if shape == "cross":
        w = r / 3
        return rot([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w),
                    (-r, -w), (-w, -w)])
    raise ValueError(shape)


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size x size`` uint8 RGB image of ``shape`` (a name in SHAPES or ORIENTATIONS)."""
    from PIL import Image, ImageDraw

    background = rng.integers(0, 256, 3)
    colour = rng.integers(0, 256, 3)
    while np.abs(colour.astype(int) - background.astype(int)).sum() < 200:  # keep the shape visible
        colour = rng.integers(0, 256, 3)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in background))
    draw = ImageDraw.Draw(img)
    r = size * rng.uniform(0.2, 0.35)
    cx, cy = (rng.uniform(r * 1.1, size - r * 1.1) for _ in range(2))
    angle = math.radians(rng.uniform(-20, 20))
    fill = tuple(int(v) for v in colour)
    if shape in ORIENTATIONS:  # a bar through (cx, cy) at the class angle (image y points down)
        a = math.radians(ORIENTATIONS[shape] + rng.uniform(-5, 5))
        half = size * rng.uniform(0.3, 0.45)
        dx, dy = half * math.cos(a), -half * math.sin(a)
        cx, cy = (rng.uniform(size * 0.35, size * 0.65) for _ in range(2))
        draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=fill, width=max(2, int(size * rng.uniform(0.06, 0.12))))
    elif shape in ("circle", "ring"):
        box = (cx - r, cy - r, cx + r, cy + r)
        draw.ellipse(box, fill=None if shape == "ring" else fill, outline=fill, width=max(2, int(r / 3)))
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fill)
    x = np.asarray(img, np.int16) + rng.normal(0, 12, (size, size, 3)).astype(np.int16)
    return np.clip(x, 0, 255).astype(np.uint8)


def _write_split(root: Path, names: list[str], per_class: int, size: int, rng: np.random.Generator) -> None:
    from PIL import Image

    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ext = ".png" if i % 2 else ".jpg"
            Image.fromarray(draw_shape(name, size, rng)).save(root / name / f"{i:05d}{ext}", quality=95)


def make_synthetic_images(
    out_dir: str | Path,
    classes: int = 4,
    images_per_class: int = 64,
    *,
    property: str = "orientation",
    val_per_class: int | None = None,
    test_per_class: int = 0,
    size: int = 64,
    seed: int = 0,
) -> SyntheticImages:
    """Write the dataset (see the module doc). ``property``: ``orientation`` (``classes`` in
    ``[2, 8]``) or ``shape`` (``[2, 6]``); ``val_per_class`` defaults to ``max(2, images_per_class // 4)``."""
    choices = {"orientation": list(ORIENTATIONS), "shape": list(SHAPES)}
    if property not in choices:
        raise ValueError(f"property must be one of {sorted(choices)}, got {property!r}")
    if not 2 <= classes <= len(choices[property]):
        raise ValueError(f"classes must be in [2, {len(choices[property])}] for {property}, got {classes}")
    out = Path(out_dir)
    names = sorted(choices[property][:classes])  # = the sorted class folders (class-per-folder order)
    val_per_class = max(2, images_per_class // 4) if val_per_class is None else val_per_class
    splits = {"train": images_per_class, "val": val_per_class, "test": test_per_class}
    for k, (split, count) in enumerate(splits.items()):
        if count:
            _write_split(out / split, names, count, size, np.random.default_rng([seed, k]))
    (out / "classes.txt").write_text("\n".join(names) + "\n")
    return SyntheticImages(
        train_dir=str(out / "train"), val_dir=str(out / "val"), classes_file=str(out / "classes.txt"),
        test_dir=str(out / "test") if test_per_class else None,
    )
