"""RMSNorm (weight only) and the fused residual add + RMSNorm of the Mamba blocks."""

from __future__ import annotations

import torch
from torch import nn


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: at least float32 (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x * rsqrt(mean(x^2) + eps) * weight over the last dim, computed in >= fp32; x's dtype out."""
    acc = _acc_dtype(x.dtype)
    xf = x.to(acc)
    out = xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight.to(acc)
    return out.to(x.dtype)


def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused ``residual = residual + x; out = RMSNorm(residual)`` (mamba's ``rms_norm_fn`` with
    ``prenorm=True, residual_in_fp32=True``). The residual stream is kept in >= fp32; ``out``
    has x's dtype. ``residual=None`` starts the stream at x. Returns (out, residual)."""
    acc = _acc_dtype(x.dtype)
    residual = x.to(acc) if residual is None else residual.to(acc) + x.to(acc)
    out = residual * torch.rsqrt(residual.square().mean(-1, keepdim=True) + eps) * weight.to(acc)
    return out.to(x.dtype), residual


class RMSNorm(nn.Module):
    """RMSNorm with a weight and no bias (state-dict key ``weight`` only)."""

    def __init__(self, dim: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        """(..., dim) -> same; with ``residual``: the fused add + norm, returns (out, residual)."""
        if residual is None:
            return rms_norm(x, self.weight, self.eps)
        return add_rms_norm(x, residual, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
