"""VideoMamba model: registry, published computation, API, input validation."""

from __future__ import annotations

import math

import pytest
import torch

import videomamba
from videomamba.models.pretrained import resize_spatial_pos_embed, resize_temporal_pos_embed
from videomamba.models.videomamba import VideoMamba
from vm_reference import PUBLISHED_GLOBALS, PUBLISHED_LAYER, published_logits, published_shapes, reference_tokens

TINY = dict(img_size=32, patch_size=16, embed_dim=16, depth=3, num_frames=4, num_classes=5)


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return videomamba.create_model("videomamba_tiny", **{**TINY, **kw}).double().eval()


def clip(b=2, t=4, size=32, seed=1):
    return torch.randn(b, 3, t, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_registry_and_variants():
    assert videomamba.list_models() == ["videomamba_base", "videomamba_middle", "videomamba_small",
                                        "videomamba_tiny"]
    assert videomamba.list_models("*tiny") == ["videomamba_tiny"]
    with torch.device("meta"):
        for name, (dim, depth) in {"videomamba_tiny": (192, 24), "videomamba_small": (384, 24),
                                   "videomamba_middle": (576, 32), "videomamba_base": (768, 24)}.items():
            m = videomamba.create_model(name)
            assert (m.embed_dim, m.depth, len(m.layers)) == (dim, depth, depth)
            assert m.layers[0].mixer.dt_rank == math.ceil(dim / 16) and m.layers[0].mixer.d_inner == 2 * dim


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid models: videomamba_base, videomamba_middle"):
        videomamba.create_model("videomamba_huge")
    with pytest.raises(ValueError, match="valid scan orders: spatial_first, temporal_first"):
        videomamba.create_model("videomamba_tiny", scan_order="diagonal")
    with pytest.raises(ValueError, match="valid backends: auto, torch, triton, mamba_ssm, reference"):
        videomamba.create_model("videomamba_tiny", backend="cuda")


@pytest.mark.parametrize("name,published_m", [("videomamba_tiny", 7), ("videomamba_small", 26),
                                              ("videomamba_middle", 74)])
def test_param_counts_match_published(name, published_m):
    with torch.device("meta"):
        m = videomamba.create_model(name, num_classes=400)
    n = sum(p.numel() for p in m.parameters()) / 1e6
    assert abs(n - published_m) / published_m < 0.05, n


def test_strict_load_of_published_key_list():
    """A state dict built from the published names/shapes loads with strict=True, every
    tensor lands where the name says."""
    m = tiny()
    shapes = published_shapes(16, 3, 5, num_frames=4, img_size=32)
    assert len(shapes) == len(PUBLISHED_GLOBALS) + 3 * len(PUBLISHED_LAYER)
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g, dtype=torch.float64) for k, s in shapes.items()}
    m.load_state_dict(sd, strict=True)
    own = m.state_dict()
    assert set(own) == set(sd)
    for k in sd:
        assert torch.equal(own[k], sd[k]), k


def test_published_init():
    torch.manual_seed(0)
    m = videomamba.create_model("videomamba_tiny", depth=4, embed_dim=32, num_classes=3)
    mix = m.layers[1].mixer
    assert torch.allclose(mix.A_log, torch.log(torch.arange(1, 17.0)).repeat(64, 1))
    assert torch.equal(mix.A_b_log, mix.A_log) and torch.all(mix.D == 1) and torch.all(mix.D_b == 1)
    dt = torch.nn.functional.softplus(torch.cat([mix.dt_proj.bias, mix.dt_proj_b.bias]))
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    assert mix.in_proj.bias is None and mix.out_proj.bias is None and mix.conv1d.bias is not None
    # out_proj: kaiming-uniform(a=sqrt 5) bound 1/sqrt(fan_in), rescaled by 1/sqrt(depth)
    bound = 1 / math.sqrt(64) / math.sqrt(4)
    assert mix.out_proj.weight.abs().max() <= bound + 1e-7
    assert mix.out_proj.weight.abs().max() > 0.8 * bound
    assert 0.01 < m.pos_embed.std() < 0.03 and 0.01 < m.temporal_pos_embedding.std() < 0.03
    assert torch.all(m.head.bias == 0)


def test_forward_equals_published_computation_float64():
    m = tiny()
    x = clip()
    torch.testing.assert_close(m(x), published_logits(m, x), rtol=1e-9, atol=1e-10)


def test_attributes_and_shapes():
    m = tiny(kernel_size=2)
    assert (m.embed_dim, m.num_classes, m.num_frames, m.kernel_size, m.depth) == (16, 5, 4, 2, 3)
    assert m.patch_size == (16, 16) and m.img_size == (32, 32) and m.grid_size == (2, 2, 2)
    assert m.scan_order == "spatial_first" and m.backend == "auto"
    x = clip()
    assert m(x).shape == (2, 5)
    assert m.forward_features(x).shape == (2, 16)
    tokens = m.forward_tokens(x)
    assert tokens.shape == (2, 1 + 8, 16)
    torch.testing.assert_close(tokens[:, 0], m.forward_features(x))
    m.reset_classifier(7)
    assert m(x).shape == (2, 7) and m.head.weight.dtype == torch.float64
    m.reset_classifier(0)
    assert m(x).shape == (2, 16)


def test_shuffled_frames_change_the_output():
    m = tiny()
    x = clip(b=1)
    y = m(x)
    y_shuffled = m(x[:, :, [2, 0, 3, 1]])
    assert not torch.allclose(y, y_shuffled, rtol=1e-6, atol=1e-8)
    assert torch.allclose(m(x.clone()), y)


def test_image_model():
    m = tiny(num_frames=1)
    img = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(m(img), m(img[:, :, None]))
    assert m.grid_size == (1, 2, 2)


@pytest.mark.parametrize("shape,needle", [
    ((2, 3, 32, 32), "4D tensor"), ((2, 1, 4, 32, 32), "got shape (2, 1, 4, 32, 32)"),
    ((2, 3, 3, 32, 32), "T divisible by kernel_size=2"), ((2, 3, 4, 30, 32), "H divisible by 16"),
])
def test_bad_input_raises_value_error_naming_the_expected_shape(shape, needle):
    m = tiny(kernel_size=2)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)") as err:
        m(torch.zeros(shape, dtype=torch.float64))
    assert needle in str(err.value) and "num_frames=4, img_size=32x32" in str(err.value)


def test_other_size_interpolates_position_embeddings():
    """A 16-frame 48px clip on an 8-frame 32px model equals a model built for that size whose
    position embeddings are the interpolated ones."""
    m = tiny()
    big = tiny(img_size=48, num_frames=8)
    sd = m.state_dict()
    sd["pos_embed"] = resize_spatial_pos_embed(sd["pos_embed"], (3, 3))
    sd["temporal_pos_embedding"] = resize_temporal_pos_embed(sd["temporal_pos_embedding"], 8)
    big.load_state_dict(sd)
    x = clip(b=1, t=8, size=48)
    torch.testing.assert_close(m(x), big(x))


def test_mask_ratio_zero_equals_full_forward():
    m = tiny(scan_order="alternate_temporal_spatial")
    x = clip()
    mask = torch.zeros(2, 16, dtype=torch.bool)
    torch.testing.assert_close(m.forward_tokens(x, mask=mask), m.forward_tokens(x))


@pytest.mark.parametrize("scan_order", ["spatial_first", "temporal_first"])
def test_masked_tokens_equal_processing_only_the_visible_tokens(scan_order):
    m = tiny(scan_order=scan_order)
    x = clip()
    g = torch.Generator().manual_seed(3)
    mask = torch.stack([torch.randperm(16, generator=g) < 10 for _ in range(2)])  # 6 visible per row
    out = m.forward_tokens(x, mask=mask)
    assert out.shape == (2, 7, 16)
    order = "temporal" if scan_order == "temporal_first" else "spatial"
    for b in range(2):
        keep = [0] + (1 + torch.nonzero(~mask[b])[:, 0]).tolist()
        ref = reference_tokens(m, x[b:b + 1], orders=[(order, order)] * 3, keep=keep)
        torch.testing.assert_close(out[b:b + 1], ref, rtol=1e-9, atol=1e-10)


def test_bad_masks():
    m = tiny()
    x = clip()
    with pytest.raises(ValueError, match="same number"):
        m.forward_tokens(x, mask=torch.tensor([[True] + [False] * 15, [False] * 16]))
    with pytest.raises(ValueError, match=r"shape \(B, L\) = \(2, 16\)"):
        m.forward_tokens(x, mask=torch.zeros(2, 15, dtype=torch.bool))


def test_return_layers():
    m = tiny()
    x = clip()
    normed_inputs = {}
    for i, blk in enumerate(m.layers):
        blk.mixer.register_forward_pre_hook(lambda mod, args, i=i: normed_inputs.__setitem__(i, args[0]))
    tokens, states = m.forward_tokens(x, return_layers=[0, 1, -1])
    assert sorted(states) == [-1, 0, 1]
    torch.testing.assert_close(states[0], normed_inputs[1])
    torch.testing.assert_close(states[1], normed_inputs[2])
    torch.testing.assert_close(states[-1], tokens)
    with pytest.raises(ValueError, match="out of range"):
        m.forward_tokens(x, return_layers=[3])


def test_gradient_checkpointing_gives_the_same_gradients():
    x = clip()
    grads = []
    for use_ckpt in (False, True):
        m = tiny(use_checkpoint=use_ckpt, checkpoint_num=2, drop_path_rate=0.0).train()
        m(x).square().sum().backward()
        grads.append([p.grad for p in m.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_drop_path_schedule_matches_published():
    m = tiny(drop_path_rate=0.2, depth=4)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in m.layers]
    assert rates[0] == 0.0 and rates[1] == 0.0 and rates[-1] == pytest.approx(0.2 * 2 / 3)
    assert m.drop_path.drop_prob == pytest.approx(0.2)


def test_cpu_autocast_bf16_keeps_fp32_residual():
    torch.manual_seed(0)
    m = videomamba.create_model("videomamba_tiny", **TINY).eval()
    seen = []
    m.layers[1].mixer.register_forward_pre_hook(lambda mod, args: seen.append(args[0].dtype))
    orig = m.layers[2].add_norm
    residual_dtypes = []

    def spy(hidden, residual):
        residual_dtypes.append(residual.dtype)
        return orig(hidden, residual)

    m.layers[2].add_norm = spy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(clip().float())
    assert torch.isfinite(y).all() and residual_dtypes == [torch.float32] and seen == [torch.bfloat16]


def test_gpu_autocast(gpu):
    torch.manual_seed(0)
    m = videomamba.create_model("videomamba_tiny", **TINY).to(gpu)
    x = clip().float().to(gpu)
    ref = m(x)
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cuda", dtype=dtype):
            y = m(x)
            y.float().square().sum().backward()
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y.float(), ref, rtol=0.1, atol=0.1)
    assert isinstance(m, VideoMamba)
