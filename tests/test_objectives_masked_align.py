"""Masked alignment (UMT style): visible-token path, decoder + loss by hand, teachers, grid
mapping, CLIP key mapping, frozen teacher, clean export."""

from __future__ import annotations

import pytest
import timm
import torch
from einops import rearrange

import videomamba
from videomamba.objectives import MaskedAlignConfig, MaskedAlignObjective, build_objective
from videomamba.objectives.losses import l2_normalize
from videomamba.objectives.masked_align import sinusoid_table, visible_index
from videomamba.objectives.masking import flatten_mask, make_mask
from videomamba.objectives.teachers import ViTTeacher, load_vit_weights, to_grid, tokens_to_grid

ARCH = dict(img_size=32, num_frames=4, num_classes=4, depth=3, drop_path_rate=0.0)
VIT = dict(embed_dim=24, depth=2, num_heads=2, img_size=32, num_classes=12)  # CLIP-style, proj to 12


def _student(**kw):
    torch.manual_seed(0)
    return videomamba.create_model("videomamba_tiny", embed_dim=32, **{**ARCH, **kw})


def _vit_cfg(**kw):
    return {"kind": "vit", "model": "vit_base_patch16_clip_224", "kwargs": VIT, **kw}


def _objective(mask="random", ratio=0.5, **kw) -> MaskedAlignObjective:
    torch.manual_seed(5)
    cfg = MaskedAlignConfig(teacher=_vit_cfg(), mask={"type": mask, "ratio": ratio}, **kw)
    return build_objective(cfg, _student())


def _video(b=2, t=4):
    return torch.randn(b, 3, t, 32, 32, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("layers", [1, 2])
def test_visible_forward_equals_full_forward_at_ratio_zero(layers):
    obj = _objective(align_layers=layers).eval()
    video = _video()
    none_hidden = torch.zeros(2, 4 * 2 * 2, dtype=torch.bool)
    got = obj.encode(video, none_hidden)
    full = obj.encode(video, None)
    out, states = obj.model.forward_tokens(video, return_layers=obj.layers)
    for i in obj.layers:
        assert torch.allclose(got[i], full[i], atol=1e-6)
        assert torch.allclose(got[i], states[i], atol=1e-6)
    assert torch.allclose(got[-1], out, atol=1e-6)


def test_prediction_path_at_ratio_zero_equals_full_forward():
    obj = _objective(align_layers=2).eval()
    video = _video()
    none_hidden = torch.zeros(2, 16, dtype=torch.bool)
    index = visible_index(none_hidden)
    assert torch.equal(index, torch.arange(17).expand(2, -1))
    preds = obj.decode(obj.encode(video, none_hidden), index, 17)
    _, states = obj.model.forward_tokens(video, return_layers=[-2, -1])
    table = sinusoid_table(17, 32)
    for dec, i in zip(obj.decoders, [-2, -1]):
        assert torch.allclose(preds[i], dec(states[i] + table), atol=1e-5)


@pytest.mark.parametrize("loss", ["l2", "mse", "smooth_l1"])
def test_loss_matches_hand_computation(loss):
    obj = _objective(mask="tube", ratio=0.5, loss=loss).train()
    video = _video()
    torch.manual_seed(11)
    got, metrics = obj({"video": video, "label": torch.zeros(2, dtype=torch.long)})

    torch.manual_seed(11)  # the same mask again
    mask = flatten_mask(make_mask("tube", 2, (4, 2, 2), 0.5))  # (B, L=16), 8 hidden
    assert metrics["mask_ratio"].item() == 0.5
    with torch.no_grad():
        vit = obj.teacher.vit
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        feats = vit.head(vit.forward_features(frames))  # CLIP-style: ln_post + proj on every token
        feats = rearrange(feats, "(b t) n d -> b t n d", b=2)
        target = torch.cat([feats[:, :, :1].mean(1), rearrange(feats[:, :, 1:], "b t n d -> b (t n) d")], 1)
        keep = [torch.cat([torch.zeros(1, dtype=torch.long), (~mask[b]).nonzero()[:, 0] + 1]) for b in range(2)]
        target = torch.stack([target[b, keep[b]] for b in range(2)])  # (B, 1 + 8, 12)
        student = obj.model.forward_tokens(video, mask=mask)  # (B, 1 + 8, 32)
        pos = sinusoid_table(17, 32)[torch.stack(keep)]
        pred = obj.decoders[0][1](obj.decoders[0][0](student + pos))
        t = target / target.norm(dim=-1, keepdim=True)
        if loss == "l2":
            p = pred / pred.norm(dim=-1, keepdim=True)
            hand = (2 - 2 * (p * t).sum(-1)).mean()
        elif loss == "mse":
            hand = ((pred - t) ** 2).mean()
        else:
            e = (pred - t).abs()
            hand = torch.where(e < 1, 0.5 * e**2, e - 0.5).mean()
    assert got.item() == pytest.approx(hand.item(), rel=1e-5)


def test_sinusoid_table_values():
    table = sinusoid_table(5, 6)
    assert torch.allclose(table[0], torch.tensor([0.0, 1, 0, 1, 0, 1]))
    assert table[3, 0].item() == pytest.approx(torch.sin(torch.tensor(3.0)).item())
    assert table[3, 3].item() == pytest.approx(torch.cos(torch.tensor(3.0 / 10000 ** (2 / 6))).item())


def test_align_cls_off_and_last_k_layers():
    obj = _objective(align_layers=2, align_cls=False)
    loss, metrics = obj({"video": _video(), "label": torch.zeros(2, dtype=torch.long)})
    assert set(metrics) >= {"align_loss", "align_loss_last1", "align_loss_last2"}
    assert loss.item() == pytest.approx((metrics["align_loss_last1"] + metrics["align_loss_last2"]).item() / 2, rel=1e-5)
    assert len(obj.decoders) == 2


def test_attention_masking_with_vit_teacher():
    obj = _objective(mask="attention", ratio=0.75)
    out = obj.teacher(_video(), (4, 2, 2), [-1], attention=True)
    assert out.attention.shape == (2, 4, 2, 2) and (out.attention > 0).all()
    loss, metrics = obj({"video": _video(), "label": torch.zeros(2, dtype=torch.long)})
    assert metrics["mask_ratio"].item() == 0.75 and torch.isfinite(loss)


def test_cls_attention_matches_timm_attention():
    torch.manual_seed(0)
    vit = timm.create_model("vit_base_patch16_clip_224", pretrained=False, **VIT).eval()
    teacher = ViTTeacher(vit)
    seen = {}
    last = vit.blocks[-1].attn
    last.fused_attn = False  # timm then materialises the attention and passes it through attn_drop
    last.attn_drop.register_forward_hook(lambda m, i, o: seen.setdefault("attn", o))
    video = _video(b=1, t=2)
    out = teacher(video, (2, 2, 2), [-1], attention=True)
    expected = seen["attn"].mean(1)[:, 0, 1:]  # (frames, patches): cls row, head-averaged
    assert torch.allclose(out.attention, rearrange(expected, "(b t) (h w) -> b t h w", b=1, h=2), atol=1e-6)


def test_attention_mask_needs_attention_teacher(tmp_path):
    torch.manual_seed(1)
    teacher = videomamba.create_model("videomamba_tiny", embed_dim=16, **ARCH)
    torch.save(teacher.state_dict(), tmp_path / "t.pt")
    tcfg = {"kind": "videomamba", "checkpoint": str(tmp_path / "t.pt"), "model": "videomamba_tiny", "overrides": {"embed_dim": 16, **ARCH}}
    with pytest.raises(ValueError, match="exposes attention"):
        build_objective(MaskedAlignConfig(teacher=tcfg, mask={"type": "attention", "ratio": 0.5}), _student())
    obj = build_objective(MaskedAlignConfig(teacher=tcfg, mask={"type": "clip_row", "ratio": 0.5}), _student())
    with pytest.raises(ValueError, match="does not expose attention"):
        obj.teacher(_video(), (4, 2, 2), [-1], attention=True)
    loss, _ = obj({"video": _video(), "label": torch.zeros(2, dtype=torch.long)})  # a VideoMamba teacher works
    assert torch.isfinite(loss)


def test_gradients_do_not_reach_the_teacher():
    obj = _objective(align_layers=2).train()
    loss, _ = obj({"video": _video(), "label": torch.zeros(2, dtype=torch.long)})
    loss.backward()
    tp = list(obj.teacher.parameters())
    assert tp and all(p.grad is None and not p.requires_grad for p in tp)
    assert not obj.teacher.training
    assert all(p.grad is not None for p in obj.decoders.parameters())
    assert obj.model.layers[0].mixer.in_proj.weight.grad is not None
    assert obj.model.head.weight.grad is None  # the classifier is frozen during pretraining


def test_export_has_no_decoder_or_teacher():
    obj = _objective(align_layers=2)
    assert not any(k.startswith("teacher") for k in obj.state_dict())
    assert all(k.startswith("decoders.") for k in obj.extra_state_dict())
    exported = obj.model.state_dict()
    assert not any("decoder" in k or "teacher" in k or "vit" in k for k in exported)
    videomamba.create_model("videomamba_tiny", embed_dim=32, **ARCH).load_state_dict(exported, strict=True)
    # and it fine-tunes: load_checkpoint into a classifier with another number of classes
    fine = videomamba.create_model("videomamba_tiny", embed_dim=32, **{**ARCH, "num_classes": 7})
    report = videomamba.load_checkpoint(fine, exported)
    assert not report.missing and not report.unexpected and report.dropped == ["head.weight", "head.bias"]


def test_grid_mapping_tubelet_and_patch_size():
    x = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).reshape(1, 4, 4, 4, 2)[..., :1].expand(1, 4, 4, 4, 2)
    y = to_grid(x, (2, 2, 2))  # frames averaged in pairs (tubelet 2), 2x2 patches average pooled
    assert y.shape == (1, 2, 2, 2, 2)
    assert torch.allclose(y[0, 0, 0, 0], x[0, :2, :2, :2].mean((0, 1, 2)))
    assert torch.allclose(y[0, 1, 1, 0], x[0, 2:, 2:, :2].mean((0, 1, 2)))
    cls = torch.randn(1, 4, 2)
    tokens = tokens_to_grid(cls, x, (2, 2, 2))
    assert tokens.shape == (1, 1 + 8, 2) and torch.allclose(tokens[:, 0], cls.mean(1))


def test_vit_teacher_maps_onto_tubelet_and_smaller_patch_student():
    # student: tubelet 2, patch 16 -> grid (2, 2, 2); teacher: ViT patch 8, frame by frame -> (4, 4, 4)
    torch.manual_seed(5)
    cfg = MaskedAlignConfig(
        teacher=_vit_cfg(kwargs={**VIT, "patch_size": 8}), mask={"type": "clip_row", "ratio": 0.5}
    )
    obj = build_objective(cfg, _student(kernel_size=2))
    video = _video()
    out = obj.teacher(video, (2, 2, 2), [-1])
    assert out.layers[-1].shape == (2, 1 + 8, 12)
    loss, metrics = obj({"video": video, "label": torch.zeros(2, dtype=torch.long)})
    assert metrics["mask_ratio"].item() == 0.5 and torch.isfinite(loss)


def _to_openai_clip(state: dict) -> dict:
    """timm CLIP ViT state dict -> OpenAI CLIP visual keys (the inverse of timm's conversion)."""
    swaps = [("patch_embed.proj", "conv1"), ("norm_pre", "ln_pre"), ("blocks.", "transformer.resblocks."),
             ("norm1", "ln_1"), ("norm2", "ln_2"), ("attn.qkv.", "attn.in_proj_"), ("attn.proj", "attn.out_proj"),
             ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")]
    out = {}
    for k, v in state.items():
        if k == "cls_token":
            out["visual.class_embedding"] = v[0, 0]
        elif k == "pos_embed":
            out["visual.positional_embedding"] = v[0]
        elif k == "head.weight":
            out["visual.proj"] = v.t()
        elif k == "head.bias":
            assert not v.any()
        else:
            k = "ln_post." + k[5:] if k.startswith("norm.") else k
            for a, b in swaps:
                k = k.replace(a, b)
            out[f"visual.{k}"] = v
    out["transformer.resblocks.0.ln_1.weight"] = torch.ones(3)  # a text-tower key: ignored
    return out


@pytest.mark.parametrize("fmt", ["timm", "openai_clip", "safetensors"])
def test_vit_weights_from_a_local_file(tmp_path, fmt):
    torch.manual_seed(9)
    src = timm.create_model("vit_base_patch16_clip_224", pretrained=False, **VIT).eval()
    with torch.no_grad():
        src.head.bias.zero_()  # CLIP's proj has no bias
    state = _to_openai_clip(src.state_dict()) if fmt == "openai_clip" else src.state_dict()
    path = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pt")
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    cfg = MaskedAlignConfig(teacher=_vit_cfg(weights=str(path)), mask={"type": "random", "ratio": 0.5})
    obj = build_objective(cfg, _student())
    for k, v in src.state_dict().items():
        assert torch.equal(obj.teacher.vit.state_dict()[k], v), k
    frames = rearrange(_video(), "b c t h w -> (b t) c h w")
    assert torch.allclose(obj.teacher.vit.forward_features(frames), src.forward_features(frames), atol=1e-6)


def test_bad_vit_weights_are_reported(tmp_path):
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "bad.pt")
    vit = timm.create_model("vit_base_patch16_clip_224", pretrained=False, **VIT)
    with pytest.raises(RuntimeError, match="missing keys"):
        load_vit_weights(vit, tmp_path / "bad.pt")


def test_targets_are_normalised_per_token():
    obj = _objective()
    out = obj.teacher(_video(), (4, 2, 2), [-1]).layers[-1]
    assert torch.allclose(l2_normalize(out).norm(dim=-1), torch.ones(out.shape[:2]), atol=1e-5)
