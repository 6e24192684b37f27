"""Token masks for masked modeling (Unmasked-Teacher style), over the token grid ``(T', H', W')``
``= (T/k, H/p, W/p)``.

Every generator returns a bool tensor ``(B, T', H', W')`` (True = hidden) that hides EXACTLY
``num_hidden(ratio, units)`` of its masking units in every sample, so all rows of the flattened
``(B, L)`` mask (:func:`flatten_mask`, canonical spatial-first order ``t, h, w``) hide the same
number of tokens, as ``VideoMamba.forward_tokens(mask=...)`` requires:

- ``random``: units are single tokens (``L = T'H'W'`` of them);
- ``tube``: units are spatial positions, hidden in every frame (``H'W'`` units);
- ``clip_row``: units are whole patch rows, the same rows in every frame (``H'`` units);
- ``frame_row``: whole rows drawn anew in every frame (``H'`` units per frame);
- ``attention``: tokens, kept by multinomial sampling without replacement on the teacher's cls
  attention (``L`` units); needs the attention map.

When ``ratio * units`` is not an integer the count is rounded (and kept in ``[1, units - 1]``);
:func:`effective_ratio` gives the fraction actually hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from einops import rearrange, repeat

Grid = tuple[int, int, int]
MaskType = Literal["random", "tube", "clip_row", "frame_row", "attention"]


def check_ratio(ratio: float) -> float:
    """``ratio`` must lie in the open interval (0, 1)."""
    if not 0.0 < float(ratio) < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    return float(ratio)


def num_hidden(ratio: float, units: int) -> int:
    """Units hidden for ``ratio``: ``round(ratio * units)`` clipped to ``[1, units - 1]``."""
    check_ratio(ratio)
    if units < 2:
        raise ValueError(f"cannot mask a ratio in (0, 1) of {units} unit(s): need at least 2")
    return min(max(int(round(ratio * units)), 1), units - 1)


def _units(kind: str, grid: Grid) -> tuple[int, int]:
    """(units that are drawn among, tokens per unit) of a mask type."""
    t, h, w = grid
    return {
        "random": (t * h * w, 1),
        "attention": (t * h * w, 1),
        "tube": (h * w, t),
        "clip_row": (h, t * w),
        "frame_row": (h, w),
    }[kind]


def effective_ratio(kind: str, grid: Grid, ratio: float) -> float:
    """The fraction of tokens a ``kind`` mask of ``ratio`` actually hides on ``grid``."""
    units, _ = _units(kind, grid)
    return num_hidden(ratio, units) / units


def _choose(rows: int, units: int, hidden: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """(rows, units) bool: exactly ``hidden`` True per row, uniformly at random."""
    noise = torch.rand(rows, units, generator=generator, device="cpu")
    rank = noise.argsort(dim=1).argsort(dim=1)  # a random permutation per row
    return (rank < hidden).to(device)


def random_mask(batch_size: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """Independent tokens: ``(B, T', H', W')`` hiding ``num_hidden(ratio, T'H'W')`` per sample."""
    t, h, w = grid
    m = _choose(batch_size, t * h * w, num_hidden(ratio, t * h * w), generator, device)
    return rearrange(m, "b (t h w) -> b t h w", t=t, h=h, w=w)


def tube_mask(batch_size: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """The same spatial positions in every frame: ``num_hidden(ratio, H'W')`` tubes per sample."""
    t, h, w = grid
    m = _choose(batch_size, h * w, num_hidden(ratio, h * w), generator, device)
    return repeat(m, "b (h w) -> b t h w", t=t, h=h, w=w)


def clip_row_mask(batch_size: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """Whole patch rows, the same rows in every frame: ``num_hidden(ratio, H')`` rows per sample."""
    t, h, w = grid
    m = _choose(batch_size, h, num_hidden(ratio, h), generator, device)
    return repeat(m, "b h -> b t h w", t=t, w=w)


def frame_row_mask(batch_size: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """Whole patch rows drawn anew in each frame: ``num_hidden(ratio, H')`` rows per frame."""
    t, h, w = grid
    m = _choose(batch_size * t, h, num_hidden(ratio, h), generator, device)
    return repeat(m, "(b t) h -> b t h w", b=batch_size, t=t, w=w)


def attention_mask(attention: torch.Tensor, ratio: float, *, generator=None) -> torch.Tensor:
    """Keep ``L - num_hidden(ratio, L)`` tokens drawn by multinomial sampling WITHOUT replacement
    on the teacher's cls attention ``(B, T', H', W')`` (non-negative; need not be normalised);
    the rest are hidden. Returns ``(B, T', H', W')`` bool on the attention's device."""
    if attention.dim() != 4:
        raise ValueError(f"attention must be (B, T', H', W'), got shape {tuple(attention.shape)}")
    b, t, h, w = attention.shape
    n = t * h * w
    keep = n - num_hidden(ratio, n)
    probs = rearrange(attention.detach().float(), "b t h w -> b (t h w)").clamp_min(0).cpu()
    probs = probs + 1e-12 * (probs.sum(1, keepdim=True) == 0)  # an all-zero row -> uniform
    kept = torch.multinomial(probs, keep, replacement=False, generator=generator)
    m = torch.ones(b, n, dtype=torch.bool)
    m.scatter_(1, kept, False)
    return rearrange(m, "b (t h w) -> b t h w", t=t, h=h, w=w).to(attention.device)


#: mask type -> generator ``(batch_size, grid, ratio, *, generator, device) -> (B, T', H', W')``
MASK_GENERATORS: dict[str, Callable[..., torch.Tensor]] = {
    "random": random_mask,
    "tube": tube_mask,
    "clip_row": clip_row_mask,
    "frame_row": frame_row_mask,
}


def make_mask(
    kind: MaskType,
    batch_size: int,
    grid: Grid,
    ratio: float,
    *,
    attention: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Dispatch on ``kind``; ``attention`` ``(B, T', H', W')`` is required for ``"attention"``."""
    if kind == "attention":
        if attention is None:
            raise ValueError("mask type 'attention' needs the teacher's cls attention map")
        if tuple(attention.shape) != (batch_size, *grid):
            raise ValueError(f"attention map {tuple(attention.shape)} does not match (B, *grid) = {(batch_size, *grid)}")
        return attention_mask(attention, ratio, generator=generator).to(device or attention.device)
    if kind not in MASK_GENERATORS:
        raise ValueError(f"unknown mask type {kind!r}; known: {sorted([*MASK_GENERATORS, 'attention'])}")
    return MASK_GENERATORS[kind](batch_size, grid, ratio, generator=generator, device=device)


def flatten_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, T', H', W')`` -> ``(B, L)`` in canonical spatial-first token order."""
    return rearrange(mask, "b t h w -> b (t h w)")


def hidden_count(kind: str, grid: Grid, ratio: float) -> int:
    """Tokens a ``kind`` mask hides per sample on ``grid``."""
    units, per_unit = _units(kind, grid)
    count = num_hidden(ratio, units) * per_unit
    return count * grid[0] if kind == "frame_row" else count


def is_exact(kind: str, grid: Grid, ratio: float) -> bool:
    """Whether ``ratio`` is hit exactly on ``grid`` (no rounding of the unit count)."""
    units, _ = _units(kind, grid)
    return math.isclose(ratio * units, round(ratio * units), abs_tol=1e-9) and 1 <= round(ratio * units) < units
