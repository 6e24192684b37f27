"""Clip transforms keep temporal consistency: one crop / flip / RandAugment for every frame."""

from __future__ import annotations

import numpy as np
import pytest

from videomamba.data.config import IMAGENET_MEAN, IMAGENET_STD, DataConfig
from videomamba.data.transforms import (
    ClipTransform,
    random_resized_crop_params,
    resize_frames,
    uniform_crop_offset,
)

T, S = 6, 32


def random_image(seed=0, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def train_transform(**kw):
    args = dict(train=True, img_size=S, mean=IMAGENET_MEAN, std=IMAGENET_STD, hflip=True,
                randaugment="rand-m9-n3-mstd0.5-inc1")
    args.update(kw)
    return ClipTransform(**args)


@pytest.mark.parametrize("seed", range(8))
def test_identical_frames_stay_identical_with_randaugment(seed):
    frames = np.repeat(random_image(seed)[None], T, axis=0)
    out = train_transform()(frames, np.random.default_rng(seed))
    assert out.shape == (1, 3, T, S, S) and out.dtype == np.float32
    for t in range(1, T):
        np.testing.assert_array_equal(out[0, :, t], out[0, :, 0])


def test_same_crop_and_flip_on_every_frame():
    # frame t = one random image + 16 t: with the same crop/resize/flip on every frame the outputs
    # differ by exactly 16 t (up to uint8 rounding); a different crop would differ by ~100
    base = np.random.default_rng(3).integers(0, 128, (48, 64, 3))
    frames = np.stack([base + 16 * t for t in range(T)]).astype(np.uint8)
    mean = np.asarray(IMAGENET_MEAN).reshape(3, 1, 1, 1) * 255
    std = np.asarray(IMAGENET_STD).reshape(3, 1, 1, 1) * 255
    for seed in range(10):
        raw = train_transform(randaugment=None)(frames, np.random.default_rng(seed))[0] * std + mean
        for t in range(1, T):
            np.testing.assert_allclose(raw[:, t] - raw[:, 0], 16 * t, atol=1.01)


def test_train_is_deterministic_given_the_rng_and_varies_with_it():
    frames = np.stack([random_image(t) for t in range(T)])
    a = train_transform()(frames, np.random.default_rng(5))
    b = train_transform()(frames, np.random.default_rng(5))
    c = train_transform()(frames, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_randaugment_does_not_touch_global_rngs():
    import random

    random.seed(1)
    np.random.seed(1)
    state = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    train_transform()(np.repeat(random_image()[None], T, axis=0), np.random.default_rng(0))
    assert (random.random(), np.random.random()) == state


def test_hflip_flag_off_never_flips():
    # a horizontal ramp keeps its direction when flips are off
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    frames = np.repeat(ramp[None], 2, axis=0)
    for seed in range(10):
        out = train_transform(hflip=False, randaugment=None, scale=(0.5, 1.0))(frames, np.random.default_rng(seed))
        assert out[0, 0, 0, :, -1].mean() > out[0, 0, 0, :, 0].mean()


def test_random_resized_crop_params_bounds():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = random_resized_crop_params(48, 64, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64 and h > 0 and w > 0


def test_uniform_crop_offsets_match_videomae():
    assert [uniform_crop_offset(224, 298, 224, i) for i in range(3)] == [(0, 0), (0, 37), (0, 74)]
    assert [uniform_crop_offset(300, 224, 224, i) for i in range(3)] == [(0, 0), (38, 0), (76, 0)]


def test_eval_short_side_resize_and_three_crops():
    # a frame whose columns encode x: after resize to short side 32 (48x64 -> 32x42) the 3 crops
    # are the left, centre and right 32 columns, identical in time
    x = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (48, 1, 3))
    frames = np.repeat(x[None], T, axis=0)
    tf = ClipTransform(train=False, img_size=32, mean=(0, 0, 0), std=(1, 1, 1), short_side=32, num_crops=3)
    out = tf(frames)
    assert out.shape == (3, 3, T, 32, 32)
    ref = resize_frames(frames, 32, 42).transpose(3, 0, 1, 2) / 255
    for crop, left in enumerate([0, 5, 10]):
        np.testing.assert_allclose(out[crop], ref[:, :, :, left:left + 32], atol=1e-6)
    assert out[0, 0, 0, 0, 0] < out[1, 0, 0, 0, 0] < out[2, 0, 0, 0, 0]
    centre = ClipTransform(train=False, img_size=32, mean=(0, 0, 0), std=(1, 1, 1), short_side=32)(frames)
    np.testing.assert_array_equal(centre[0], out[1])


def test_from_config_uses_split_views():
    cfg = DataConfig(img_size=32, test_num_crops=3, val_num_crops=1, randaugment=None)
    assert ClipTransform.from_config(cfg, "test").num_crops == 3
    assert ClipTransform.from_config(cfg, "val").num_crops == 1
    assert ClipTransform.from_config(cfg, "train").train


def test_randaugment_at_max_magnitude_never_raises():
    frames = np.repeat(random_image()[None], 2, axis=0)
    tf = train_transform(randaugment="rand-m10-n4-mstd0")
    for seed in range(40):
        tf(frames, np.random.default_rng(seed))
