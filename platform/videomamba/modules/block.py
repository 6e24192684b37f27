"""Pre-norm residual block of VideoMamba (mamba-ssm ``Block`` with fused add + RMSNorm)."""

from __future__ import annotations

import torch
from timm.layers import DropPath
from torch import nn
from torch.utils.checkpoint import checkpoint

from .norm import RMSNorm, add_rms_norm


class Block(nn.Module):
    """``residual = residual + drop_path(hidden); hidden = mixer(RMSNorm(residual))``.

    The residual stream is kept in >= fp32. The first block (``residual=None``) starts the
    stream at its input, without drop path (as published). The mixer is called as
    ``mixer(hidden, index_b)``, or ``mixer(hidden, index_b, recompute=False)`` when checkpointed.
    """

    def __init__(self, dim: int, mixer: nn.Module, drop_path: float = 0.0, norm_eps: float = 1e-5):
        super().__init__()
        self.mixer = mixer
        self.norm = RMSNorm(dim, eps=norm_eps)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def add_norm(self, hidden: torch.Tensor, residual: torch.Tensor | None):
        """(hidden, residual) (B, L, D) -> (normed mixer input, updated fp32 residual)."""
        if residual is not None:
            hidden = self.drop_path(hidden)
        return add_rms_norm(hidden, residual, self.norm.weight, self.norm.eps)

    def mix(self, normed: torch.Tensor, index_b: torch.Tensor | None = None, use_checkpoint: bool = False):
        """The mixer, optionally with gradient checkpointing (recomputed in backward). A
        checkpointed mixer is asked not to recompute inside itself as well (``recompute=False``:
        the activations it keeps live only while the block is recomputed)."""
        if use_checkpoint and torch.is_grad_enabled():
            return checkpoint(self.mixer, normed, index_b, recompute=False, use_reentrant=False)
        return self.mixer(normed, index_b)

    def forward(self, hidden, residual=None, index_b=None, use_checkpoint: bool = False):
        """(B, L, D) x2 -> (mixer output, residual)."""
        normed, residual = self.add_norm(hidden, residual)
        return self.mix(normed, index_b, use_checkpoint), residual
