"""videomamba.ops.causal_conv1d_fn: causal and anti-causal depthwise conv vs references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from videomamba import ops


@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("length", [1, 3, 17])
def test_causal_conv_matches_published_conv1d_and_reference(activation, length):
    g = torch.Generator().manual_seed(length)
    x = torch.randn(2, 5, length, generator=g, dtype=torch.float64)
    conv = torch.nn.Conv1d(5, 5, 4, groups=5, padding=3).double()  # the published module
    expected = conv(x)[..., :length]
    if activation:
        expected = F.silu(expected)
    w = conv.weight[:, 0]
    for backend in ("torch", "reference"):
        y = ops.causal_conv1d_fn(x, w, conv.bias, activation=activation, backend=backend)
        torch.testing.assert_close(y, expected)
        # reverse = flip -> conv -> flip
        y_rev = ops.causal_conv1d_fn(x, w, conv.bias, activation=activation, reverse=True, backend=backend)
        exp_rev = conv(x.flip(-1))[..., :length].flip(-1)
        torch.testing.assert_close(y_rev, F.silu(exp_rev) if activation else exp_rev)


def test_causal_conv_gradients():
    x = torch.randn(1, 3, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    for reverse in (False, True):
        grads = [torch.autograd.grad(ops.causal_conv1d_fn(x, w, b, reverse=reverse, backend=be).sum(), (x, w, b))
                 for be in ("torch", "reference")]
        for a, r in zip(*grads):
            torch.testing.assert_close(a, r)


def test_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        ops.causal_conv1d_fn(torch.randn(1, 2, 3), torch.randn(2, 4), activation="relu")
