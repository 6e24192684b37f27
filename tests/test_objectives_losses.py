"""Alignment losses against hand computations on tiny examples."""

from __future__ import annotations

import math

import pytest
import torch

from videomamba.objectives.losses import align_loss, cosine_loss, cosine_weight, mse_loss, smooth_l1_loss

PRED = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (B=1, N=2, D=2)
TARGET = torch.tensor([[[1.0, 1.0], [0.0, -2.0]]])
S = 1 / math.sqrt(2)


def test_cosine_hand():
    # token 0: cos = 1/sqrt2 -> 2 - sqrt2; token 1: cos = -1 -> 4
    assert cosine_loss(PRED, TARGET).item() == pytest.approx(((2 - 2 * S) + 4) / 2)
    assert cosine_loss(3 * TARGET, TARGET).item() == pytest.approx(0.0, abs=1e-6)  # scale invariant
    assert align_loss("l2", PRED, TARGET) == cosine_loss(PRED, TARGET)


def test_mse_hand():
    # target normalised: [S, S], [0, -1]; squared errors (1-S)^2, S^2, 0, 4
    expected = ((1 - S) ** 2 + S**2 + 0 + 4) / 4
    assert mse_loss(PRED, TARGET).item() == pytest.approx(expected)
    assert align_loss("mse", PRED, TARGET) == mse_loss(PRED, TARGET)


def test_smooth_l1_hand():
    # |errors| 1-S, S, 0, 2 -> 0.5 e^2 below 1, |e| - 0.5 above
    expected = (0.5 * (1 - S) ** 2 + 0.5 * S**2 + 0 + 1.5) / 4
    assert smooth_l1_loss(PRED, TARGET).item() == pytest.approx(expected)
    assert align_loss("smooth_l1", PRED, TARGET) == smooth_l1_loss(PRED, TARGET)


def test_losses_are_fp32_and_checked():
    assert cosine_loss(PRED.bfloat16(), TARGET.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError, match="shape"):
        cosine_loss(PRED, TARGET[:, :1])
    with pytest.raises(ValueError, match="unknown"):
        align_loss("l1", PRED, TARGET)


def test_cosine_weight():
    assert cosine_weight(0.0, 2.0, 0.5) == pytest.approx(2.0)
    assert cosine_weight(0.5, 2.0, 0.5) == pytest.approx(1.25)
    assert cosine_weight(1.0, 2.0, 0.5) == pytest.approx(0.5)
    assert cosine_weight(7.0, 2.0) == pytest.approx(0.0)  # clipped
