"""Tubelet (3D patch) embedding."""

from __future__ import annotations

import torch
from timm.layers import to_2tuple
from torch import nn


class PatchEmbed(nn.Module):
    """(B, C, T, H, W) -> (B, D, T/k, H/p, W/p) with ``Conv3d(kernel = stride = (k, p, p))``.
    ``img_size`` is the construction size (defines the default grid)."""

    def __init__(self, img_size=224, patch_size=16, kernel_size=1, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = to_2tuple(img_size)
        self.patch_size = to_2tuple(patch_size)
        self.tubelet_size = int(kernel_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=(self.tubelet_size, *self.patch_size),
                              stride=(self.tubelet_size, *self.patch_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
