"""Depthwise causal conv1d (the short conv of the Mamba mixer): PyTorch path, a loop
reference for tests, and dispatch to the ``causal_conv1d`` CUDA package."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["causal_conv1d_torch", "causal_conv1d_ref", "causal_conv1d_cuda"]

_ACTIVATIONS = (None, "silu", "swish")


def _activate(y: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    return y if activation is None else F.silu(y)


def causal_conv1d_torch(x, weight, bias=None, activation=None, reverse=False):
    """x (B, D, L), weight (D, K), bias (D,) -> (B, D, L).

    Causal: ``y_t = sum_k w_k x_{t-K+1+k}``; ``reverse=True`` is the anti-causal conv
    ``y_t = sum_k w_k x_{t+K-1-k}`` (= flip -> causal conv -> flip)."""
    k = weight.shape[-1]
    if reverse:
        y = F.conv1d(F.pad(x, (0, k - 1)), weight.flip(-1).unsqueeze(1), bias, groups=x.shape[1])
    else:
        y = F.conv1d(F.pad(x, (k - 1, 0)), weight.unsqueeze(1), bias, groups=x.shape[1])
    return _activate(y, activation)


def causal_conv1d_ref(x, weight, bias=None, activation=None, reverse=False):
    """Tap-by-tap reference of :func:`causal_conv1d_torch` (tests)."""
    if reverse:
        return causal_conv1d_ref(x.flip(-1), weight, bias, activation).flip(-1)
    length, k = x.shape[-1], weight.shape[-1]
    xp = F.pad(x, (k - 1, 0))
    y = sum(weight[:, j, None] * xp[..., j:j + length] for j in range(k))
    if bias is not None:
        y = y + bias[:, None]
    return _activate(y, activation)


def causal_conv1d_cuda(x, weight, bias=None, activation=None, reverse=False):
    """The ``causal_conv1d`` package's kernel (CUDA only); reverse by flipping."""
    from causal_conv1d import causal_conv1d_fn

    if activation == "swish":
        activation = "silu"
    if reverse:
        return causal_conv1d_fn(x.flip(-1).contiguous(), weight, bias, activation=activation).flip(-1)
    return causal_conv1d_fn(x.contiguous(), weight, bias, activation=activation)
