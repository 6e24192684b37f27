"""videomamba.load_checkpoint: unwrap, inflate 2D -> 3D, resize position embeddings, drop a
mismatched head, report, and clear errors for other architectures."""

from __future__ import annotations

import logging

import pytest
import torch

import videomamba
from videomamba.models.pretrained import (CheckpointMismatchError, filter_head, inflate_patch_embed,
                                   resize_spatial_pos_embed, resize_temporal_pos_embed, unwrap_state_dict)

CFG = dict(img_size=32, patch_size=16, embed_dim=16, depth=2, num_classes=5)


def model(**kw):
    return videomamba.create_model("videomamba_tiny", **{**CFG, **kw}).eval()


def _equal_except(a: dict, b: dict, skip=()):
    for k in a:
        if k not in skip:
            assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("wrap", ["plain", "model", "module", "module_prefix", "file"])
def test_roundtrip_and_wrappers(wrap, tmp_path):
    src = model(num_frames=4).state_dict()
    obj = {"plain": src, "model": {"model": src, "epoch": 3}, "module": {"module": src},
           "module_prefix": {"model": {f"module.{k}": v for k, v in src.items()}}, "file": src}[wrap]
    if wrap == "file":
        obj = tmp_path / "ckpt.pth"
        torch.save({"model": src, "optimizer": {"lr": 0.1}}, obj)
    dst = model(num_frames=4)
    report = videomamba.load_checkpoint(dst, obj, strict=True)
    assert report.complete and not report.unexpected and not report.adapted
    assert report.loaded == len(src)
    _equal_except(dst.state_dict(), src)
    if wrap == "file":
        assert report.source.endswith("ckpt.pth")


def image_state_dict(num_classes=1000, grid=2):
    """An image checkpoint: 2D patch embedding, no temporal embedding, 1000-class head."""
    sd = model(num_frames=1).state_dict()
    sd["patch_embed.proj.weight"] = torch.randn(16, 3, 16, 16)
    sd["pos_embed"] = torch.randn(1, 1 + grid * grid, 16)
    sd["head.weight"], sd["head.bias"] = torch.randn(num_classes, 16), torch.randn(num_classes)
    del sd["temporal_pos_embedding"]
    return sd


@pytest.mark.parametrize("mode", ["center", "average"])
def test_image_checkpoint_into_video_model(mode, caplog):
    sd = image_state_dict()
    m = model(num_frames=8, kernel_size=2)
    with caplog.at_level(logging.WARNING, logger="videomamba.models.pretrained"):
        report = videomamba.load_checkpoint(m, sd, inflate=mode)
    assert "dropping head.weight (1000, 16)" in caplog.text and "(5, 16)" in caplog.text
    assert report.dropped == ["head.weight", "head.bias"]
    assert report.missing == ["temporal_pos_embedding"]
    assert any("inflated (16, 3, 16, 16) -> (16, 3, 2, 16, 16)" in a for a in report.adapted)
    w = m.patch_embed.proj.weight.detach()
    if mode == "center":
        assert torch.equal(w[:, :, 1], sd["patch_embed.proj.weight"]) and torch.all(w[:, :, 0] == 0)
    else:
        torch.testing.assert_close(w.sum(2), sd["patch_embed.proj.weight"])
    with pytest.raises(CheckpointMismatchError, match="temporal_pos_embedding"):
        videomamba.load_checkpoint(model(num_frames=8), image_state_dict(), strict=True)
    assert "dropped (2)" in str(report) and "missing (1)" in str(report)


def test_centre_inflation_reproduces_the_image_model_on_a_static_clip():
    """Centre inflation with tubelet 1 on a 1-frame clip = the image model."""
    img_model = model(num_frames=1)
    video_model = model(num_frames=1)
    sd = img_model.state_dict()
    sd["patch_embed.proj.weight"] = sd["patch_embed.proj.weight"][:, :, 0]  # 2D
    videomamba.load_checkpoint(video_model, sd, strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(video_model(x), img_model(x))


def test_resolution_and_frame_count_interpolation():
    src = model(num_frames=4)
    sd = src.state_dict()
    dst = model(img_size=48, num_frames=8)
    report = videomamba.load_checkpoint(dst, sd, strict=True)
    assert len(report.adapted) == 2 and report.complete
    pos = dst.pos_embed.detach()
    assert torch.equal(pos[:, 0], sd["pos_embed"][:, 0])  # cls kept
    torch.testing.assert_close(pos, resize_spatial_pos_embed(sd["pos_embed"], (3, 3)))
    tpe = dst.temporal_pos_embedding.detach()
    torch.testing.assert_close(tpe, resize_temporal_pos_embed(sd["temporal_pos_embedding"], 8))


def test_helpers():
    pe = torch.randn(1, 1 + 4, 8)
    assert resize_spatial_pos_embed(pe, (2, 2)) is pe
    up = resize_spatial_pos_embed(pe, (4, 4))
    assert up.shape == (1, 17, 8) and torch.equal(up[:, 0], pe[:, 0])
    # a constant grid stays constant under bicubic resizing
    const = torch.cat([pe[:, :1], torch.ones(1, 4, 8)], 1)
    torch.testing.assert_close(resize_spatial_pos_embed(const, (3, 3))[:, 1:], torch.ones(1, 9, 8))
    lin = torch.arange(4.0).view(1, 4, 1)
    torch.testing.assert_close(resize_temporal_pos_embed(lin, 8).flatten(),
                               torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]))
    w = torch.randn(4, 3, 2, 2)
    assert inflate_patch_embed(w, 3, "center")[:, :, 1].equal(w)
    with pytest.raises(ValueError, match="center"):
        inflate_patch_embed(w, 3, "middle")
    sd = {"head.weight": torch.zeros(3, 16), "head.bias": torch.zeros(3)}
    assert filter_head(sd, model()) == ["head.weight", "head.bias"] and not sd
    assert set(unwrap_state_dict({"model": {"module.a": torch.zeros(1)}})) == {"a"}


def test_other_architecture_is_a_clear_error():
    vit = {"cls_token": torch.zeros(1, 1, 16), "pos_embed": torch.zeros(1, 5, 16),
           "patch_embed.proj.weight": torch.zeros(16, 3, 16, 16), "norm.weight": torch.zeros(16)}
    vit.update({f"blocks.{i}.attn.qkv.weight": torch.zeros(48, 16) for i in range(2)})
    with pytest.raises(CheckpointMismatchError, match=r"no VideoMamba blocks .*blocks\.\*\.attn\.qkv\.weight \(x2\)"):
        videomamba.load_checkpoint(model(), vit)
    deeper = model(depth=3).state_dict()
    with pytest.raises(CheckpointMismatchError, match="depth differs: checkpoint has 3 blocks, model has 2") as err:
        videomamba.load_checkpoint(model(), deeper)
    assert "not in the model (17): layers.[2].* (17 tensors: " in str(err.value)
    wider = videomamba.create_model("videomamba_tiny", **{**CFG, "embed_dim": 32}).state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"tensors differ in shape \(layers\.\[0-1\]\.\* \(17 tensors"):
        videomamba.load_checkpoint(model(), wider)
    assert issubclass(CheckpointMismatchError, ValueError)


def test_unexpected_keys_reported_and_strict():
    sd = dict(model().state_dict(), extra_decoder_weight=torch.zeros(3))
    report = videomamba.load_checkpoint(model(), sd)
    assert report.unexpected == ["extra_decoder_weight"]
    with pytest.raises(CheckpointMismatchError, match="unexpected"):
        videomamba.load_checkpoint(model(), sd, strict=True)


@pytest.mark.parametrize("prefixes", [
    ["module."], ["_orig_mod."], ["module.", "_orig_mod."], ["_orig_mod.", "module."],  # DDP(compile) / compile(DDP)
    ["_orig_mod.", "module.", "_orig_mod."], ["model.", "_orig_mod.", "module."], ["module.", "model."],
])
def test_any_order_of_wrapper_prefixes(prefixes, tmp_path):
    """Case 07: torch.compile(DDP(model)) saves `_orig_mod.module.*`; every stacking of the known
    wrappers (DDP, torch.compile, a wrapping `model` module) loads, from a dict or a file."""
    src = model(num_frames=4).state_dict()
    wrapped = {"".join(prefixes) + k: v for k, v in src.items()}
    torch.save({"model": wrapped, "epoch": 3}, tmp_path / "ckpt.pth")
    for obj in (wrapped, tmp_path / "ckpt.pth"):
        dst = model(num_frames=4)
        report = videomamba.load_checkpoint(dst, obj, strict=True)
        assert report.complete and report.loaded == len(src)
        _equal_except(dst.state_dict(), src)
    # a "model." that only some keys carry is not a wrapper: left alone
    partial = {**src, "model.extra": torch.zeros(1)}
    assert "model.extra" in unwrap_state_dict(partial)


def _nonsquare(tmp_path):
    """Case 08: a checkpoint trained at 32x48 px (patch grid 2x3 = 6 positions, not a square)."""
    src = model(num_frames=4, img_size=(32, 48), num_classes=3)
    return src, src.state_dict()


def test_non_square_grid_from_an_argument(tmp_path):
    src, sd = _nonsquare(tmp_path)
    torch.save({"model": sd}, tmp_path / "nonsquare.pth")
    dst = model(num_frames=4, img_size=(48, 64), num_classes=3)
    with pytest.raises(CheckpointMismatchError, match=r"6 patch positions are not a square grid.*pass pos_grid=\(rows, cols\)"):
        videomamba.load_checkpoint(dst, tmp_path / "nonsquare.pth")
    with pytest.raises(CheckpointMismatchError, match=r"pos_grid 3x3 = 9 positions, but the checkpoint has 6"):
        videomamba.load_checkpoint(dst, tmp_path / "nonsquare.pth", pos_grid=(3, 3))
    report = videomamba.load_checkpoint(dst, tmp_path / "nonsquare.pth", pos_grid=(2, 3), strict=True)
    assert report.complete and any(a.startswith("pos_embed: bicubic (1, 7, 16) -> (1, 13, 16)") for a in report.adapted)
    want = resize_spatial_pos_embed(sd["pos_embed"], (3, 4), old_size=(2, 3))
    torch.testing.assert_close(dst.pos_embed.detach(), want)
    # the same grid read (2, 3) and not (3, 2): a constant-per-column grid stays so along columns
    with torch.inference_mode():
        assert torch.isfinite(dst(torch.randn(1, 3, 4, 48, 64))).all()


def test_non_square_grid_from_the_checkpoint_metadata(tmp_path):
    """A videomamba training checkpoint (model.pt + meta.json) or a dict carrying img_size needs no argument."""
    from videomamba import checkpoints as ckpt
    from videomamba.train.loop import build_model

    src, sd = _nonsquare(tmp_path)
    kwargs = {**CFG, "num_frames": 4, "img_size": [32, 48], "num_classes": 3}
    d = ckpt.save_checkpoint(tmp_path / "epoch_0009", model_state=sd, meta={"model": {"name": "videomamba_tiny", "kwargs": kwargs}})
    want = resize_spatial_pos_embed(sd["pos_embed"], (3, 4), old_size=(2, 3))
    for source in (d, d / "model.pt", {"model": sd, "img_size": [32, 48]}, {"model": sd, "args": {"img_size": [32, 48], "patch_size": 16}}):
        dst = model(num_frames=4, img_size=(48, 64), num_classes=3)
        videomamba.load_checkpoint(dst, source, strict=True)
        torch.testing.assert_close(dst.pos_embed.detach(), want)
    # fine-tuning from it in a training config (model.pretrained), and model.pretrained_grid for a bare file
    spec = {"name": "videomamba_tiny", "kwargs": {**kwargs, "img_size": [48, 64]}}
    torch.testing.assert_close(build_model(spec, str(d / "model.pt")).pos_embed.detach(), want)
    torch.save(sd, tmp_path / "bare.pth")
    torch.testing.assert_close(build_model(spec, str(tmp_path / "bare.pth"), pos_grid=(2, 3)).pos_embed.detach(), want)
