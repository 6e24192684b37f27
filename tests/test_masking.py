"""Masking generators: exact ratio, shape and structure of every mask type."""

from __future__ import annotations

import pytest
import torch

from videomamba.objectives.masking import (
    MASK_GENERATORS,
    attention_mask,
    effective_ratio,
    flatten_mask,
    hidden_count,
    is_exact,
    make_mask,
    num_hidden,
)

GRID = (4, 8, 8)  # T', H', W'
B = 6


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", [*MASK_GENERATORS, "attention"])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_exact_ratio_and_shape(kind, ratio):
    attn = torch.rand(B, *GRID, generator=_gen(1)) if kind == "attention" else None
    m = make_mask(kind, B, GRID, ratio, attention=attn, generator=_gen())
    assert m.shape == (B, *GRID) and m.dtype == torch.bool
    assert is_exact(kind, GRID, ratio)
    per_sample = m.flatten(1).sum(1)
    assert per_sample.tolist() == [hidden_count(kind, GRID, ratio)] * B
    assert per_sample[0].item() == ratio * m[0].numel()  # exactly the requested ratio
    flat = flatten_mask(m)
    assert flat.shape == (B, 4 * 8 * 8) and (flat.sum(1) == flat.sum(1)[0]).all()


def test_flatten_is_canonical_spatial_first():
    m = torch.zeros(1, *GRID, dtype=torch.bool)
    m[0, 2, 3, 5] = True
    t, h, w = GRID
    assert flatten_mask(m)[0].nonzero().item() == 2 * h * w + 3 * w + 5


def test_random_differs_between_samples():
    m = make_mask("random", B, GRID, 0.5, generator=_gen())
    assert not all(torch.equal(m[0], m[i]) for i in range(1, B))


def test_tube_identical_across_frames():
    m = make_mask("tube", B, GRID, 0.75, generator=_gen())
    assert (m == m[:, :1]).all()
    assert m[:, 0].flatten(1).sum(1).tolist() == [48] * B


def _whole_rows(m: torch.Tensor) -> bool:
    return bool(((m.all(-1)) | (~m.any(-1))).all())


def test_clip_row_whole_rows_same_every_frame():
    m = make_mask("clip_row", B, GRID, 0.75, generator=_gen())
    assert _whole_rows(m)
    assert (m == m[:, :1]).all()
    assert m[:, 0, :, 0].sum(1).tolist() == [6] * B


def test_frame_row_whole_rows_drawn_per_frame():
    m = make_mask("frame_row", B, GRID, 0.5, generator=_gen())
    assert _whole_rows(m)
    assert (m[..., 0].sum(-1) == 4).all()  # 4 of 8 rows in EVERY frame
    differs = [not (m[b] == m[b, :1]).all() for b in range(B)]
    assert all(differs)  # drawn anew: some frame differs from the first in every sample


def test_attention_keeps_attended_tokens():
    attn = torch.zeros(B, *GRID)
    attn[:, :, :2] = torch.rand(B, 4, 2, 8, generator=_gen(2)) + 0.1  # only rows 0-1 attended (64 tokens)
    m = attention_mask(attn, 0.75, generator=_gen())  # keeps 64 tokens
    assert (m.flatten(1).sum(1) == 192).all()
    assert (~m[:, :, :2]).all() and m[:, :, 2:].all()  # the kept tokens are exactly the attended ones


def test_attention_is_weighted_sampling():
    attn = torch.ones(1, *GRID)
    attn[0, 0, 0, 0] = 1000.0  # dominant token: (almost) always kept
    attn[0, 3, 7, 7] = 1e-6  # negligible token: (almost) never kept
    kept = torch.zeros(GRID)
    for s in range(50):
        kept += ~attention_mask(attn, 0.5, generator=_gen(s))[0]
    assert kept[0, 0, 0] == 50 and kept[3, 7, 7] <= 1


def test_attention_needs_a_map():
    with pytest.raises(ValueError, match="attention"):
        make_mask("attention", B, GRID, 0.5)
    with pytest.raises(ValueError, match="does not match"):
        make_mask("attention", B, GRID, 0.5, attention=torch.rand(B, 2, 8, 8))


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.2, 1.5])
def test_ratio_validated(ratio):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        make_mask("random", B, GRID, ratio)


def test_rounding_reported():
    grid = (8, 14, 14)
    assert num_hidden(0.8, 14) == 11
    assert not is_exact("clip_row", grid, 0.8)
    assert effective_ratio("clip_row", grid, 0.8) == pytest.approx(11 / 14)
    m = make_mask("clip_row", 2, grid, 0.8, generator=_gen())
    assert (m.flatten(1).float().mean(1) == 11 / 14).all()
    assert num_hidden(0.01, 4) == 1 and num_hidden(0.99, 4) == 3  # never all or nothing


def test_mask_config_validates_ratio():
    from pydantic import ValidationError

    from videomamba.objectives import MaskConfig

    for bad in (0, 1, 1.2):
        with pytest.raises(ValidationError):
            MaskConfig(type="random", ratio=bad)
    with pytest.raises(ValidationError):
        MaskConfig(type="checkerboard", ratio=0.5)
