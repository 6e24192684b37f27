"""Feature-alignment losses shared by ``distill`` and ``masked_align`` (computed in fp32).

All take a prediction and a target of the same shape ``(..., D)`` (e.g. ``(B, N, D)``) and
return a scalar averaged over every token and the batch. The target is always L2-normalised per
token; ``l2`` also normalises the prediction (``2 - 2 cos``); ``mse`` / ``smooth_l1`` compare the
raw prediction with the normalised target (element-wise, averaged).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

AlignLoss = Literal["l2", "mse", "smooth_l1"]


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Unit L2 norm over the last dim, in fp32."""
    return F.normalize(x.float(), dim=-1, eps=eps)


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean(2 - 2 * cos(pred, target))`` over all tokens: 0 when aligned, 4 when opposite."""
    _check(pred, target)
    return (2 - 2 * (l2_normalize(pred) * l2_normalize(target)).sum(-1)).mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise MSE between ``pred`` and the normalised ``target``."""
    _check(pred, target)
    return F.mse_loss(pred.float(), l2_normalize(target))


def smooth_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Element-wise smooth-L1 (Huber, ``beta``) between ``pred`` and the normalised ``target``."""
    _check(pred, target)
    return F.smooth_l1_loss(pred.float(), l2_normalize(target), beta=beta)


ALIGN_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l2": cosine_loss,
    "mse": mse_loss,
    "smooth_l1": smooth_l1_loss,
}


def align_loss(kind: AlignLoss, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    try:
        fn = ALIGN_LOSSES[kind]
    except KeyError:
        raise ValueError(f"unknown alignment loss {kind!r}; known: {sorted(ALIGN_LOSSES)}") from None
    return fn(pred, target)


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def cosine_weight(progress: float, start: float, end: float = 0.0) -> float:
    """Cosine schedule from ``start`` (progress 0) to ``end`` (progress 1); progress is clipped."""
    p = min(max(float(progress), 0.0), 1.0)
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * p))
