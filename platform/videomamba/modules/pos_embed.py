"""Resizing learned position embeddings (checkpoint loading and other input sizes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _wide(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def resize_spatial_pos_embed(
    pos_embed: torch.Tensor, new_size: tuple[int, int], old_size: tuple[int, int] | None = None,
    num_prefix_tokens: int = 1, mode: str = "bicubic",
) -> torch.Tensor:
    """(1, prefix + h*w, D) -> (1, prefix + H*W, D): the grid part is interpolated (bicubic,
    ``align_corners=False``, in >= fp32), the prefix (cls) tokens are kept. ``old_size`` defaults
    to a square grid."""
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    n, dim = grid.shape[1], grid.shape[2]
    if old_size is None:
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"cannot infer a square grid from {n} position embeddings; pass old_size")
        old_size = (side, side)
    new_size = tuple(int(s) for s in new_size)
    if tuple(old_size) == new_size:
        return pos_embed
    grid = grid.reshape(1, old_size[0], old_size[1], dim).permute(0, 3, 1, 2).to(_wide(grid.dtype))
    grid = F.interpolate(grid, size=new_size, mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_size[0] * new_size[1], dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


def resize_temporal_pos_embed(temporal_pos_embed: torch.Tensor, new_len: int) -> torch.Tensor:
    """(1, T, D) -> (1, new_len, D), linear interpolation (``align_corners=False``) in >= fp32."""
    if temporal_pos_embed.shape[1] == new_len:
        return temporal_pos_embed
    x = temporal_pos_embed.permute(0, 2, 1).to(_wide(temporal_pos_embed.dtype))
    x = F.interpolate(x, size=int(new_len), mode="linear", align_corners=False)
    return x.permute(0, 2, 1).to(temporal_pos_embed.dtype)
