"""Clip transforms: uint8 frames ``(T, H, W, 3)`` -> normalised float32 ``(3, T, S, S)``.

Every random decision is drawn ONCE per clip from the clip's ``numpy.random.Generator`` and applied
to all of its frames, so a clip keeps its temporal consistency (same crop, same flip, same
RandAugment ops and magnitudes on every frame).

- train: random resized crop (torchvision's parameter sampling: ``scale``, log-uniform ``ratio``,
  10 tries then a centre crop) resized to ``S x S`` (PIL bilinear, antialiased) -> horizontal flip
  (p=0.5, if enabled) -> timm RandAugment (if set) -> channels first (-> normalisation).
- eval: short-side resize to ``short_side`` -> 1 centre crop or 3 crops along the long side
  (VideoMAE/VideoMamba ``uniform_crop``: start, centre, end) -> channels first (-> normalisation).

With ``normalize=False`` (the Ray Data pipelines' default, ``data.clip_dtype: uint8``) clips stay
uint8 ``(3, T, S, S)`` and the consumer normalises them on its device
(:mod:`videomamba.data.normalize`, the one definition of the arithmetic and the ImageNet constants).

NumPy + PIL only (no torch), so decode workers stay light; frames stay uint8 until normalisation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
from PIL import Image

from videomamba.data.normalize import normalize_frames


def random_resized_crop_params(
    height: int, width: int, scale: Sequence[float], ratio: Sequence[float], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop (torchvision ``RandomResizedCrop.get_params``)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def uniform_crop_offset(height: int, width: int, size: int, spatial_idx: int) -> tuple[int, int]:
    """(top, left) of crop ``spatial_idx`` (0 start, 1 centre, 2 end) along the long side."""
    top, left = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if height > width:
        top = {0: 0, 1: top, 2: height - size}[spatial_idx]
    else:
        left = {0: 0, 1: left, 2: width - size}[spatial_idx]
    return top, left


def resize_frames(
    frames: np.ndarray, height: int, width: int, box: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (T, height, width, 3): the same ``box`` (left, top, right,
    bottom; default the whole frame) of every frame, bilinear (antialiased when shrinking, PIL)."""
    full = (0, 0, frames.shape[2], frames.shape[1])
    if (box is None or tuple(box) == full) and frames.shape[1:3] == (height, width):
        return frames
    return np.stack([
        np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR, box=box or full)) for f in frames
    ])


def short_side_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> short side ``size``, long side ``int(long * size / short)``."""
    h, w = frames.shape[1:3]
    if h <= w:
        return resize_frames(frames, size, int(w * size / h))
    return resize_frames(frames, int(h * size / w), size)


def _posterize_at_least_one_bit(img, bits_to_keep, **_):
    """timm's posterize, but keeping >= 1 bit: at magnitude 10 timm asks for 0 bits, which Pillow
    (>= 11) rejects with a ValueError."""
    from PIL import ImageOps

    return img if bits_to_keep >= 8 else ImageOps.posterize(img, max(1, int(bits_to_keep)))


class ClipRandAugment:
    """timm RandAugment applied with the SAME ops/magnitudes to every frame of a clip.

    timm draws from Python's ``random`` and NumPy's global RNG; both are reseeded with the clip's
    seed before each frame (and restored afterwards), which replays the same decisions per frame.
    """

    def __init__(self, spec: str, img_size: int, mean: Sequence[float]):
        from timm.data.auto_augment import rand_augment_transform

        hparams = {"translate_const": int(img_size * 0.45), "img_mean": tuple(round(255 * m) for m in mean)}
        self.op = rand_augment_transform(spec, hparams)
        for op in getattr(self.op, "ops", []):
            if getattr(op.aug_fn, "__name__", "") == "posterize":
                op.aug_fn = _posterize_at_least_one_bit


    def __call__(self, frames: np.ndarray, seed: int) -> np.ndarray:
        """uint8 (T, H, W, 3) -> uint8 (T, H, W, 3)."""
        from PIL import Image

        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            out = []
            for frame in frames:
                random.seed(seed)
                np.random.seed(seed)
                out.append(np.asarray(self.op(Image.fromarray(frame)), dtype=np.uint8))
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        return np.stack(out)


class ClipTransform:
    """Callable ``(frames uint8 (T, H, W, 3), rng) -> (V, 3, T, S, S)``: normalised float32, or
    with ``normalize=False`` uint8 pixels (normalised later by the consumer,
    :func:`videomamba.data.normalize.normalize_video`, to the same values); V = 1 in train,
    ``num_crops`` in eval (crop order = ``spatial_idx``)."""

    def __init__(
        self,
        *,
        train: bool,
        img_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        hflip: bool = True,
        randaugment: str | None = None,
        short_side: int | None = None,
        num_crops: int = 1,
        normalize: bool = True,
    ):
        if num_crops not in (1, 3):
            raise ValueError("num_crops must be 1 or 3")
        self.train, self.size = train, img_size
        self.scale, self.ratio, self.hflip = tuple(scale), tuple(ratio), hflip
        self.short_side, self.num_crops = short_side or img_size, num_crops
        self.mean, self.std, self.normalize_output = tuple(mean), tuple(std), normalize
        self.randaugment = ClipRandAugment(randaugment, img_size, mean) if train and randaugment else None

    @classmethod
    def from_config(cls, cfg, split: str, normalize: bool = True) -> ClipTransform:
        """From a ``DataConfig`` for ``split`` (train / val / test)."""
        common = {"img_size": cfg.img_size, "mean": cfg.mean, "std": cfg.std, "normalize": normalize}
        if split == "train":
            return cls(train=True, scale=cfg.train_scale, ratio=cfg.train_ratio, hflip=cfg.hflip,
                       randaugment=cfg.randaugment, **common)
        return cls(train=False, short_side=cfg.eval_short_side, num_crops=cfg.views(split)[1], **common)

    def normalize(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (T, S, S, 3) -> normalised float32 (3, T, S, S), or uint8 (3, T, S, S) pixels
        with ``normalize=False``."""
        if self.normalize_output:
            return normalize_frames(frames, self.mean, self.std)
        return np.ascontiguousarray(frames.transpose(3, 0, 1, 2))

    def train_clip(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = frames.shape[1:3]
        top, left, h, w = random_resized_crop_params(height, width, self.scale, self.ratio, rng)
        flip = self.hflip and rng.random() < 0.5
        ra_seed = int(rng.integers(0, 2**32 - 1))
        x = resize_frames(frames, self.size, self.size, box=(left, top, left + w, top + h))
        if flip:
            x = x[:, :, ::-1]
        if self.randaugment is not None:
            x = self.randaugment(np.ascontiguousarray(x), ra_seed)
        return self.normalize(x)

    def eval_clip(self, frames: np.ndarray) -> np.ndarray:
        x = short_side_resize(frames, self.short_side)
        height, width = x.shape[1:3]
        views = []
        for idx in [1] if self.num_crops == 1 else [0, 1, 2]:
            top, left = uniform_crop_offset(height, width, self.size, idx)
            views.append(self.normalize(x[:, top : top + self.size, left : left + self.size]))
        return np.stack(views)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if not self.train:
            return self.eval_clip(frames)
        if rng is None:
            raise ValueError("training transforms need an rng")
        return self.train_clip(frames, rng)[None]
