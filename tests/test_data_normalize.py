"""uint8 clips from the decode tasks, normalised by the consumer (issue 14): the model's input is
the former decode-side normalisation's, value for value. Tiny videos written here; nothing starts Ray."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videomamba.data import pipeline
from videomamba.data.config import IMAGENET_MEAN, IMAGENET_STD, DataConfig
from videomamba.data.manifest import read_manifest, to_columns
from videomamba.data.normalize import normalize_batch, normalize_video
from videomamba.data.synth import render_video, write_mp4
from videomamba.data.transforms import ClipTransform


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("norm")
    rng = np.random.default_rng(0)
    for i in range(2):
        write_mp4(str(root / f"v{i}.mp4"), render_video(i, 40, 56, 12, rng))
    (root / "m.csv").write_text("path,label\n" + "".join(f"v{i}.mp4,{i}\n" for i in range(2)))
    return root


def _decode(root, split, **kw):
    cfg = DataConfig(**{f"{split}_manifest": str(root / "m.csv")}, num_frames=4, img_size=32, decode_short_side=40,
                     randaugment="rand-m7-n4-mstd0.5-inc1", test_num_clips=2, test_num_crops=3, **kw)
    columns = to_columns(read_manifest(str(root / "m.csv")))
    return pipeline.decode_batch(pipeline.take_rows(columns, np.arange(2), 3), cfg=cfg, split=split, seed=5, scope="t")


@pytest.mark.parametrize("split,kw", [("train", {"clips_per_video": 2}), ("test", {}),
                                      ("train", {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.3, 0.25)})])
def test_uint8_clips_normalised_by_the_consumer_equal_the_decode_side_path(data, split, kw):
    old = _decode(data, split, clip_dtype="float32", **kw)  # normalised in the decode task (former behaviour)
    new = _decode(data, split, **kw)  # default: uint8 pixels
    assert new["video"].dtype == np.uint8 and old["video"].dtype == np.float32
    assert new["video"].shape == old["video"].shape == (2 * (kw.get("clips_per_video", 1) if split == "train" else 6), 3, 4, 32, 32)
    for key in ("label", "index", "view"):
        np.testing.assert_array_equal(new[key], old[key])
    cfg = DataConfig(**kw)
    on_device = normalize_batch({k: torch.as_tensor(v) for k, v in new.items()}, cfg.mean, cfg.std)["video"]
    assert on_device.dtype == torch.float32
    np.testing.assert_allclose(on_device.numpy(), old["video"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(on_device.numpy(), old["video"])  # the same float32 ops: bit for bit
    np.testing.assert_array_equal(normalize_video(new["video"], cfg.mean, cfg.std), old["video"])  # NumPy path
    np.testing.assert_array_equal(_decode(data, split, **kw)["video"], new["video"])  # deterministic


def test_clip_transform_uint8_output_and_float_passthrough():
    frames = np.random.default_rng(1).integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    for train in (True, False):
        args = dict(train=train, img_size=24, mean=IMAGENET_MEAN, std=IMAGENET_STD, num_crops=1 if train else 3,
                    randaugment="rand-m9-n3-mstd0.5-inc1")
        raw = ClipTransform(normalize=False, **args)(frames, np.random.default_rng(2))
        ref = ClipTransform(**args)(frames, np.random.default_rng(2))
        assert raw.dtype == np.uint8 and raw.shape == ref.shape
        np.testing.assert_array_equal(normalize_video(torch.from_numpy(raw)).numpy(), ref)
        same = torch.from_numpy(ref)
        assert normalize_video(same) is same  # already normalised floats pass through
    with pytest.raises(ValueError, match="uint8 pixels or normalised floats"):
        normalize_video(torch.zeros(1, 3, 2, 4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, T, H, W\)"):
        normalize_video(torch.zeros(1, 4, 2, 4, 4, dtype=torch.uint8))


def test_batch_inference_actor_normalises_uint8_clips(monkeypatch):
    from videomamba.inference import batch as batch_mod

    seen = []

    class Model(torch.nn.Module):
        def forward(self, video):
            seen.append(video)
            return video.mean(dim=(2, 3, 4))

    monkeypatch.setattr(batch_mod, "load_trained_model", lambda ckpt, device, **kw: (Model(), {}))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.25)
    actor = batch_mod._Predictor("ckpt", device="cpu", precision="fp32", mean=mean, std=std)
    video = np.random.default_rng(0).integers(0, 256, (2, 3, 2, 8, 8), dtype=np.uint8)
    rows = {"video": video, "index": np.arange(2), "view": np.zeros(2, np.int64), "label": np.zeros(2, np.int64)}
    out = actor(rows)
    expected = ClipTransform(train=False, img_size=8, mean=mean, std=std).normalize(video[0].transpose(1, 2, 3, 0))
    assert seen[0].dtype == torch.float32
    np.testing.assert_array_equal(seen[0][0].numpy(), expected)
    np.testing.assert_allclose(out["logits"], seen[0].mean(dim=(2, 3, 4)).numpy())


def test_training_worker_batches_are_normalised(monkeypatch):
    import ray.train

    from videomamba.train import loop
    from videomamba.train.config import TrainConfig

    video = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 2, 8, 8), dtype=np.uint8))

    class Shard:
        def iter_torch_batches(self, **kwargs):
            yield {"video": video, "label": torch.zeros(2, dtype=torch.int64)}

    monkeypatch.setattr(ray.train, "get_dataset_shard", lambda split: Shard())
    trainer = object.__new__(loop._Trainer)
    trainer.cfg = TrainConfig.model_validate({"data": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.3, 0.25]}})
    trainer.device = torch.device("cpu")
    batch = next(iter(trainer._batches("train", 0, train=True)))
    assert batch["video"].dtype == torch.float32
    np.testing.assert_array_equal(batch["video"].numpy(), normalize_video(video.numpy(), (0.5, 0.4, 0.3), (0.2, 0.3, 0.25)))


@pytest.mark.parametrize("split,re_prob", [("val", 0.25), ("train", 0.0), ("train", 0.25)])
def test_images_ship_uint8_unless_random_erasing(split, re_prob):
    from videomamba.data.images import ImageTransform

    cfg = DataConfig(kind="image", num_frames=1, img_size=24, image={"re_prob": re_prob})
    image = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    seed = 11 if split == "train" else None
    old = ImageTransform(cfg, split)(image, seed)  # timm's ToTensor + Normalize (+ RandomErasing)
    new = ImageTransform(cfg, split, normalize=False)(image, seed)
    erasing = split == "train" and re_prob > 0
    assert new.dtype == (np.float32 if erasing else np.uint8) and new.shape == old.shape == (3, 24, 24)
    # timm divides by 255 first: the same values up to float32 rounding
    np.testing.assert_allclose(normalize_video(torch.from_numpy(new[:, None]))[:, 0].numpy(), old, rtol=0, atol=2e-6)
