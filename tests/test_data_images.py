"""Image data (``data.kind: image``), fast: decoding of bad and unusual images, sources (class
folders, manifests, ImageNet's validation CSV), config checks, timm transforms, repeated
augmentation, the image -> video checkpoint path, distillation from an image teacher, recipes."""

from __future__ import annotations

import argparse
import io
import json
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


# ---- skips, data check, data bench -----------------------------------------------------------------
def _odd_and_bad(root: Path) -> Path:
    """A class folder with every readable-but-odd and every unreadable case of the issue."""
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    _save(root / "a" / "ok.jpg", rgb)
    _save(root / "a" / "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)))
    _save(root / "a" / "gray.png", Image.new("L", (8, 8), 7))
    _save(root / "a" / "deep.png", Image.fromarray(np.full((4, 6), 40000, np.uint16)))
    exif = rgb.getexif()
    exif[0x0112] = 6
    _save(root / "b" / "rotated.jpg", rgb, exif=exif)
    _save(root / "b" / "png_named.jpg", rgb, format="PNG")
    jpg = (root / "a" / "ok.jpg").read_bytes()
    (root / "b" / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (root / "b" / "text.jpg").write_text("not an image")
    (root / "b" / "empty.png").write_bytes(b"")
    return root


def test_a_dropped_truncated_image_is_counted_skipped_not_kept(tmp_path, monkeypatch):
    from videomamba.data import images
    from videomamba.data.pipeline import take_rows
    from videomamba.data.skips import _SkipLedger

    root = _odd_and_bad(tmp_path / "imgs")
    ledger = _SkipLedger()
    monkeypatch.setattr(images, "record_skip", lambda scope, split, epoch, index, path, reason, detail="", **kw:
                        ledger.record(split, epoch, index, path, reason, *([kw["kept"]] if "kept" in kw else [])))
    cfg = DataConfig(kind="image", train_manifest=str(root), img_size=8)
    records = read_records(cfg, "train")
    columns = {"path": np.array([r.path for r in records], dtype=object), "label": np.array([r.label for r in records])}
    batch = take_rows(columns, np.arange(len(records)), 0)
    batch["repeat"] = np.zeros(len(records), np.int64)
    out = images.decode_images(batch, cfg=cfg, split="train", seed=0, scope="t")
    rep = ledger.report("train", None)
    assert len(out["label"]) == 6 and out["video"].shape[1:] == (3, 1, 8, 8)
    assert rep.skipped == 3 and rep.padded == 0  # every dropped image counted as skipped
    assert rep.by_reason == {"empty": 1, "truncated": 1, "unreadable": 1}


def test_data_check_images_lists_bad_and_odd_with_full_paths(tmp_path, monkeypatch, capsys):
    from videomamba.cli import main
    from videomamba.commands import data as data_cmd
    from videomamba.data import check

    root = _odd_and_bad(tmp_path / "imgs")
    # Ray Data's map_batches over the rows, run here in the process (the per-row check is what is tested)
    monkeypatch.setattr(check, "_run", lambda items, fn, num_cpus, rows_per_task: [
        {k: v[i] for k, v in out.items()} for out in [fn({"line": np.array([it["line"] for it in items]),
                                                          "path": np.array([it["path"] for it in items])})]
        for i in range(len(items))])
    monkeypatch.setattr(data_cmd, "init_ray", lambda **kw: None)
    assert main(["data", "check", str(root), "--json", str(tmp_path / "r.json"), "--min-size", "5"]) == 1
    text = capsys.readouterr().out
    assert "unreadable images (training skips and counts them): 3 of 9 (" in text and "odd images (kept, decoded as described): 5 of 9" in text
    lines = text.splitlines()
    for rel in ("b/truncated.jpg", "b/text.jpg", "b/empty.png", "a/cmyk.jpg", "a/gray.png", "a/deep.png",
                "b/rotated.jpg", "b/png_named.jpg"):
        assert f"  {root / rel}" in lines  # one line each, the full path
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["kind"] == "image" and rep["ok"] == 6 and rep["rows"] == 9
    warnings = {Path(p).name: m for _, p, m in rep["warnings"]}
    assert warnings["cmyk.jpg"] == "mode CMYK: CMYK, converted to RGB"
    assert warnings["deep.png"] == ("mode I;16: 16-bit grayscale, scaled by 1/257 to 8 bits; "
                                    "6x4: a side shorter than 5 px")
    assert warnings["rotated.jpg"] == "EXIF orientation 6: rotated 90 degrees clockwise when decoded"
    assert warnings["png_named.jpg"] == "PNG data in a .jpg file"
    assert "grayscale" in warnings["gray.png"] and "ok.jpg" not in warnings
    assert rep["rotations"] == {"0": 5, "90": 1} and rep["class_counts"] == {"0": 4, "1": 5}
    assert rep["resolutions"]["12x16"] == 1  # the rotated one, upright


def test_image_sources_are_recognised(tmp_path):
    from videomamba.data.images import is_image_source

    root = _odd_and_bad(tmp_path / "imgs")
    (tmp_path / "img.csv").write_text(f"{root}/a/ok.jpg,0\n{root}/a/gray.png,1\n")
    (tmp_path / "vid.csv").write_text("a.mp4,0\nb.jpg,1\n")
    assert is_image_source(str(root)) and is_image_source(str(tmp_path / "img.csv"))
    assert not is_image_source(str(tmp_path / "vid.csv")) and not is_image_source(str(tmp_path / "none.csv"))


def test_data_bench_decode_loop_on_images(tmp_path, monkeypatch):
    from videomamba.commands.data import _bench_config
    from videomamba.data import bench, images

    root = _odd_and_bad(tmp_path / "imgs")
    monkeypatch.setattr(images, "record_skip", None)  # the loops run outside Ray: no skip ledger to count in
    args = argparse.Namespace(config=str(ROOT / "configs" / "in1k_videomamba_tiny_224.yaml"), manifest=str(root),
                              num_frames=None, img_size=8, sampling=None, classes_file=None, path_prefix=None,
                              decode_concurrency=None, randaugment="none", format="auto")
    cfg = _bench_config(args, image=True)  # `data bench DIR --config <image recipe> --img-size 8 --randaugment none`
    assert cfg.kind == "image" and cfg.image.auto_augment is None and cfg.train_manifest == str(root)
    columns = bench._columns(cfg, str(root))
    assert len(columns["label"]) == 9 and set(columns) == {"path", "label"}
    images_done, wall, cpu = bench.bench_plain(cfg, columns, "train")
    assert images_done == 6 and wall > 0 and cpu > 0


@pytest.mark.parametrize("policy", ["v0", "rand-m9-mstd0.5-inc1"])  # the Ti recipe's and the S/M recipes'
def test_autoaugment_zero_bit_posterize_gives_a_black_image_not_an_error(policy):
    from videomamba.data.images import posterize

    assert np.asarray(posterize(Image.new("RGB", (3, 3), (200, 100, 50)), 0)).max() == 0
    cfg = DataConfig(kind="image", img_size=16, image={"auto_augment": policy, "re_prob": 0.0})
    transform = ImageTransform(cfg, "train")
    image = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    # v0 draws ('Posterize', 0.8, 2) = 0 bits in 1 of 25 sub-policies; rand-m9-mstd0.5 reaches magnitude 10
    for seed in range(400):
        assert transform(image, seed).shape == (3, 16, 16)
