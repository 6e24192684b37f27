"""Token sequences reordered or subset by an index: one helper for every place that gathers tokens
along the sequence (scan orders, visible tokens of a mask, a teacher's tokens at the student's
positions, a scan direction's output put back in token order)."""

from __future__ import annotations

import torch


def take_tokens(x: torch.Tensor, index: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``x`` gathered along its sequence dimension ``dim`` (default 1: tokens ``(B, L, D)``) by
    ``index``: ``(L',)`` shared by the batch (``index_select``) or ``(B, L')`` per sample
    (``gather``). Returns ``x`` with ``L'`` at ``dim``, e.g. ``(B, L', D)``: position ``j`` holds
    token ``index[..., j]``. Raises RuntimeError (torch's) for an index outside ``[0, L)``."""
    if index.dim() == 1:
        return x.index_select(dim, index)
    dim = dim % x.dim()
    shape = [1] * x.dim()
    shape[0], shape[dim] = index.shape[0], index.shape[1]
    sizes = list(x.shape)
    sizes[0], sizes[dim] = index.shape[0], index.shape[1]
    return torch.gather(x, dim, index.reshape(shape).expand(sizes))
