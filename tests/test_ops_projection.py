"""The channel-major projections (``ops.projection``): values and gradients of F.linear's, no layout
copies in the forward or the backward, autocast dtypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from videomamba.ops.projection import channel_linear, linear_from_bdl, linear_to_bdl

_COPIES = ("aten::copy_", "aten::clone", "aten::contiguous", "aten::_reshape_copy", "aten::cat")

CASES = {
    "to_bdl": (lambda x, w, b: linear_to_bdl(x, w, b), lambda x, w, b: F.linear(x, w, b).transpose(1, 2), (2, 7, 5)),
    "from_bdl": (lambda y, w, b: linear_from_bdl(y, w, b), lambda y, w, b: F.linear(y.transpose(1, 2), w, b), (2, 5, 7)),
    "channel": (lambda x, w, b: channel_linear(x, w), lambda x, w, b: torch.einsum("oi,bil->bol", w, x), (2, 5, 7)),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_projection_values_and_gradients(kind):
    fn, ref, shape = CASES[kind]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True) if kind != "channel" else None
    inputs = (x, w) if b is None else (x, w, b)
    assert torch.autograd.gradcheck(lambda *a: fn(*a, *([None] if b is None else [])), inputs)
    out, expect = fn(x, w, b), ref(x, w, b)
    torch.testing.assert_close(out, expect, rtol=1e-12, atol=1e-12)
    assert out.is_contiguous()
    cot = torch.randn(out.shape, dtype=out.dtype, generator=g)
    for a, e in zip(torch.autograd.grad((out * cot).sum(), inputs), torch.autograd.grad((expect * cot).sum(), inputs)):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", list(CASES))
def test_projection_copies_no_activation(kind):
    """Forward + backward run GEMMs and reductions only: no copy of an activation to change its
    layout (``torch.matmul(w, x)`` with x (B, I, L) copies x transposed, and again in its backward).
    The input is a channel slice of a larger tensor, as the mixer's x is of xz."""
    fn, _ref, shape = CASES[kind]
    big = torch.randn(shape[0], shape[1] + 4, shape[2]) if kind != "to_bdl" else torch.randn(*shape[:2], shape[2] + 4)
    x = (big[:, 2:2 + shape[1]] if kind != "to_bdl" else big[..., 2:2 + shape[2]]).requires_grad_()
    x.retain_grad() if not x.is_leaf else None
    w = torch.randn(3, shape[1] if kind != "to_bdl" else shape[2], requires_grad=True)
    b = torch.randn(3, requires_grad=True) if kind != "channel" else None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out = fn(x, w, b)
        out.backward(torch.ones_like(out))
    copies = [e.name for e in prof.events() if e.name in _COPIES]
    assert copies == [], copies
    assert x.grad.shape == x.shape


def test_projection_under_autocast_keeps_input_dtypes_for_grads():
    x = torch.randn(2, 7, 5, requires_grad=True)
    w = torch.randn(3, 5, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = linear_to_bdl(x, w, b)
        ref = F.linear(x, w, b).transpose(1, 2)
    assert y.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), F.linear(x, w, b).transpose(1, 2), rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert (x.grad.dtype, w.grad.dtype, b.grad.dtype) == (torch.float32,) * 3


@pytest.mark.parametrize("small_batch", [1, 1000], ids=["batched-gemm", "gemm-per-clip"])
def test_weight_gradient_both_gemm_forms(small_batch, monkeypatch):
    from videomamba.ops import projection

    monkeypatch.setattr(projection, "SMALL_BATCH", small_batch)
    test_projection_values_and_gradients("channel")
    test_projection_values_and_gradients("to_bdl")
    test_projection_values_and_gradients("from_bdl")
