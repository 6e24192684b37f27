"""Image data (``data.kind: image``), fast: decoding of bad and unusual images, sources (class
folders, manifests, ImageNet's validation CSV), config checks, timm transforms, repeated
augmentation, the image -> video checkpoint path, distillation from an image teacher, recipes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import videomamba
from videomamba.data.config import DataConfig
from videomamba.data.decode import DecodeError
from videomamba.data.images import (
    ImageTransform, augment_seed, class_names, epoch_rows, load_image, read_records,
)

ROOT = Path(__file__).resolve().parents[1]


def _save(path: Path, img: Image.Image, **kw) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return str(path)


def _reason(path) -> str:
    with pytest.raises(DecodeError) as err:
        load_image(str(path))
    return err.value.reason


# ---- decoding ------------------------------------------------------------------------------------
def test_bad_images_raise_with_reason(tmp_path):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    jpg = Path(_save(tmp_path / "a.jpg", rgb, quality=90)).read_bytes()
    png = Path(_save(tmp_path / "a.png", rgb)).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(jpg[: len(jpg) // 2])
    (tmp_path / "trunc.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "header.jpg").write_bytes(jpg[:300])  # cut inside the JPEG header
    (tmp_path / "text.jpg").write_text("not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    assert _reason(tmp_path / "missing.jpg") == "missing"
    assert _reason(tmp_path / "empty.png") == "empty"
    assert _reason(tmp_path / "text.jpg") == "unreadable"
    assert _reason(tmp_path / "trunc.jpg") == "truncated"
    assert _reason(tmp_path / "trunc.png") == "truncated"
    assert _reason(tmp_path / "header.jpg") == "truncated"
    assert load_image(str(tmp_path / "a.png")).shape == (64, 64, 3)


def test_cmyk_grayscale_palette_alpha_become_rgb(tmp_path):
    cmyk = _save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 8), (0, 255, 255, 0)), quality=100)  # red
    x = load_image(cmyk)
    assert x.shape == (8, 16, 3) and x.dtype == np.uint8
    assert x[..., 0].mean() > 240 and x[..., 1].mean() < 15 and x[..., 2].mean() < 15
    gray = load_image(_save(tmp_path / "gray.png", Image.new("L", (5, 7), 77)))
    assert gray.shape == (7, 5, 3) and (gray == 77).all()
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.info["transparency"] = 0
    assert (load_image(_save(tmp_path / "pal.png", pal, transparency=0)) == [10, 20, 30]).all()
    rgba = load_image(_save(tmp_path / "rgba.png", Image.new("RGBA", (3, 3), (1, 2, 3, 0))))
    assert (rgba == [1, 2, 3]).all()


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 128, 65535, 1000]], dtype=np.uint16)
    path = _save(tmp_path / "deep.png", Image.fromarray(values))
    assert Image.open(path).mode.startswith("I")  # stored as 16 bits
    x = load_image(path)
    np.testing.assert_array_equal(x[0, :, 0], [0, 128, 255, 4])
    assert (x[..., 0] == x[..., 2]).all()


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white in the stored pixels
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # the camera was rotated: display = stored rotated 90 degrees clockwise
    path = _save(tmp_path / "rot.png", img, exif=exif)
    x = load_image(path)
    assert x.shape == (20, 10, 3)  # upright
    assert x[:10].mean() > 200 and x[10:].mean() < 50  # the white half is now on top
    assert load_image(path, exif_transpose=False).shape == (10, 20, 3)


# ---- sources ---------------------------------------------------------------------------------------
def _folder(root: Path, classes: dict[str, int]) -> None:
    for name, count in classes.items():
        for i in range(count):
            _save(root / name / f"{i}.png", Image.new("RGB", (8, 8), (i, 0, 0)))
    (root / next(iter(classes)) / "notes.txt").write_text("ignored: not an image")


def test_class_folders_share_the_train_class_indices(tmp_path):
    _folder(tmp_path / "train", {"cat": 2, "dog": 1, "eel": 1})
    _folder(tmp_path / "val", {"dog": 1, "eel": 2})  # no 'cat' folder in val
    cfg = DataConfig(kind="image", train_manifest=str(tmp_path / "train"), val_manifest=str(tmp_path / "val"))
    assert class_names(cfg) == ["cat", "dog", "eel"]
    train = read_records(cfg, "train")
    assert [r.label for r in train] == [0, 0, 1, 2] and all(Path(r.path).is_absolute() for r in train)
    assert [r.label for r in read_records(cfg, "val")] == [1, 2, 2]
    _folder(tmp_path / "bad", {"fox": 1})
    with pytest.raises(ValueError, match="fox"):
        read_records(cfg, "val", str(tmp_path / "bad"))


def test_manifests_and_imagenet_val_csv(tmp_path):
    (tmp_path / "classes.txt").write_text("n01440764\nn01443537\n")
    (tmp_path / "list.txt").write_text("a/x.JPEG 1\nb/y.JPEG 0\n")
    (tmp_path / "m.csv").write_text("path,label\nx.png,n01443537\n")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000001,n01443537 1 2 3 4 n01443537 5 6 7 8\n"
        "ILSVRC2012_val_00000002,n01440764 1 2 3 4\n")
    cfg = DataConfig(kind="image", train_manifest=str(tmp_path / "list.txt"), classes_file=str(tmp_path / "classes.txt"))
    assert [r.label for r in read_records(cfg, "train")] == [1, 0]
    assert [r.label for r in read_records(cfg, "train", str(tmp_path / "m.csv"))] == [1]
    val = read_records(cfg, "val", str(tmp_path / "LOC_val_solution.csv"))
    assert [(Path(r.path).name, r.label) for r in val] == [("ILSVRC2012_val_00000001.JPEG", 1), ("ILSVRC2012_val_00000002.JPEG", 0)]


def test_image_config_checks():
    cfg = DataConfig(kind="image", train_manifest="x")
    assert cfg.num_frames == 1 and cfg.views("test") == (1, 1)
    with pytest.raises(ValueError, match="num_frames"):
        DataConfig(kind="image", num_frames=8)
    with pytest.raises(ValueError, match="data.image.auto_augment"):
        DataConfig(kind="image", randaugment="rand-m9-n2")
    again = DataConfig.model_validate(cfg.model_dump(mode="json"))  # as a checkpoint's meta reloads it
    assert again == cfg
    assert DataConfig().views("test") == (4, 3)  # videos unchanged


# ---- transforms, repeated augmentation --------------------------------------------------------------
def test_transforms_deterministic_per_seed_and_eval_resize_then_centre_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cfg = DataConfig(kind="image", img_size=32)
    train = ImageTransform(cfg, "train")
    a, b, c = train(image, 7), train(image, 7), train(image, 8)
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    # eval: short side to floor(32 / 0.875) = 36 (bicubic), centre 32 x 32, ImageNet normalisation
    ev = ImageTransform(cfg, "val")(image)
    resized = np.asarray(Image.fromarray(image).resize((48, 36), Image.BICUBIC), np.float32)
    top, left = (36 - 32) // 2, (48 - 32) // 2
    ref = (resized[top:top + 32, left:left + 32] / 255 - np.array(cfg.mean)) / np.array(cfg.std)
    np.testing.assert_allclose(ev, ref.transpose(2, 0, 1), atol=0.05)
    assert augment_seed(0, 1, 2, 0) != augment_seed(0, 1, 2, 1)


def test_repeated_augmentation_rows():
    rows, rep = epoch_rows(10, seed=0, epoch=0, shuffle=True, repeats=3)
    assert len(rows) == 10 and (rows[:3] == rows[0]).all() and list(rep[:4]) == [0, 1, 2, 0]
    assert len(set(rows.tolist())) == 4  # ceil(10 / 3) distinct images this epoch
    rows, rep = epoch_rows(10, seed=0, epoch=0, shuffle=False, repeats=1)
    assert list(rows) == list(range(10)) and not rep.any()


# ---- image checkpoints into video models; image teachers --------------------------------------------
def test_image_checkpoint_dir_initialises_a_video_model(tmp_path):
    torch.manual_seed(0)
    image = videomamba.create_model("videomamba_tiny", embed_dim=32, depth=2, img_size=32, num_frames=1, num_classes=3)
    (tmp_path / "ckpt").mkdir()
    torch.save(image.state_dict(), tmp_path / "ckpt" / "model.pt")
    video = videomamba.create_model("videomamba_tiny", embed_dim=32, depth=2, img_size=32, num_frames=4, num_classes=5)
    report = videomamba.load_checkpoint(video, str(tmp_path / "ckpt"))  # a training checkpoint directory
    assert report.missing == [] and report.unexpected == [] and set(report.dropped) == {"head.weight", "head.bias"}
    assert torch.equal(video.patch_embed.proj.weight, image.patch_embed.proj.weight)
    assert torch.equal(video.layers[1].mixer.A_log, image.layers[1].mixer.A_log)
    tpe = video.temporal_pos_embedding
    assert tpe.shape == (1, 4, 32) and torch.allclose(tpe, image.temporal_pos_embedding.expand(1, 4, 32))
    assert video(torch.randn(2, 3, 4, 32, 32)).shape == (2, 5)


def test_distill_from_an_image_teacher(tmp_path):
    from videomamba.objectives import DistillConfig, DistillObjective

    torch.manual_seed(0)
    teacher = videomamba.create_model("videomamba_tiny", embed_dim=16, depth=2, img_size=32, num_frames=1, num_classes=3)
    torch.save(teacher.state_dict(), tmp_path / "teacher.pt")
    cfg = DistillConfig(teacher={"kind": "videomamba", "checkpoint": str(tmp_path / "teacher.pt"), "model": "videomamba_tiny",
                                 "overrides": {"embed_dim": 16, "depth": 2, "img_size": 32, "num_frames": 1, "num_classes": 3}})
    student = videomamba.create_model("videomamba_tiny", embed_dim=32, depth=2, img_size=32, num_frames=1, num_classes=3)
    objective = DistillObjective(cfg, student).train()
    loss, metrics = objective({"video": torch.randn(2, 3, 1, 32, 32), "label": torch.tensor([0, 2])})
    loss.backward()
    assert 0 < float(metrics["align_loss"]) <= 4 and student.patch_embed.proj.weight.grad is not None


# ---- recipes and the search space ------------------------------------------------------------------
RECIPES = sorted(p.name for p in (ROOT / "configs").glob("in1k_*.yaml")) + ["images_demo.yaml", "images_demo_teacher.yaml"]


@pytest.mark.parametrize("name", RECIPES)
def test_image_recipes_validate(name):
    from videomamba.train.config import load_config

    cfg = load_config(ROOT / "configs" / name)
    assert cfg.data.kind == "image" and cfg.data.num_frames == 1
    train = ImageTransform(cfg.data, "train").transform.transforms  # the timm spec builds
    names = [type(t).__name__ for t in train]
    assert names[0] == "RandomResizedCropAndInterpolation"
    if name.startswith("in1k_"):  # DeiT: AutoAugment v0 (Ti) or RandAugment, random erasing last
        assert names[-1] == "RandomErasing"
        assert ("AutoAugment" if cfg.data.image.auto_augment == "v0" else "RandAugment") in names


def test_in1k_recipes_present():
    names = set(RECIPES)
    for size in ("tiny", "small"):
        assert {f"in1k_videomamba_{size}_224.yaml", f"in1k_videomamba_{size}_448.yaml", f"in1k_videomamba_{size}_576.yaml"} <= names
    assert {"in1k_videomamba_middle_224_distill.yaml", "in1k_videomamba_middle_448.yaml", "in1k_videomamba_middle_576.yaml"} <= names


def test_distillation_weight_search_space_fits_the_image_demo():
    import yaml

    from videomamba.tune.space import load_space

    space = load_space(ROOT / "search_spaces" / "image_distillation.yaml")
    assert "objective.distill_weight" in {p.path for p in space.params}
    space.check_base(yaml.safe_load((ROOT / "configs" / "images_demo.yaml").read_text()))


def test_predict_on_image_files(tmp_path):
    from videomamba.inference.predict import predict_videos

    torch.manual_seed(0)
    model = videomamba.create_model("videomamba_tiny", embed_dim=32, depth=2, img_size=32, num_frames=1, num_classes=2)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save(model.state_dict(), ckpt / "model.pt")
    data = DataConfig(kind="image", train_manifest="unused", img_size=32)
    meta = {"model": {"name": "videomamba_tiny", "kwargs": {"embed_dim": 32, "depth": 2, "img_size": 32, "num_frames": 1,
                                                             "num_classes": 2}},
            "class_names": ["a", "b"], "config": {"data": data.model_dump(mode="json")}}
    (ckpt / "meta.json").write_text(__import__("json").dumps(meta))
    img = _save(tmp_path / "x.png", Image.new("RGB", (40, 50), (200, 10, 10)))
    (tmp_path / "bad.jpg").write_text("nope")
    good, bad = predict_videos(ckpt, [img, str(tmp_path / "bad.jpg")], top_k=2)
    assert good.num_views == 1 and sorted(n for n, _ in good.top) == ["a", "b"]
    assert bad.top is None and "not an image" in bad.error
