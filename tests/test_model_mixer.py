"""BiMamba mixer vs a hand-written float64 reference of the published flip-scan-flip mixer."""

from __future__ import annotations

import pytest
import torch

from videomamba.modules import BiMamba
from vm_reference import mixer_ref


def assert_same_values_and_grads(m, h, y, y_ref):
    """``y`` equals ``y_ref``, and so do their gradients w.r.t. the input ``h`` and every parameter."""
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(y)
    params = [h] + list(m.parameters())
    g = torch.autograd.grad((y * w).sum(), params, retain_graph=True)
    g_ref = torch.autograd.grad((y_ref * w).sum(), params, retain_graph=True)
    for name, a, b in zip(["input"] + [n for n, _ in m.named_parameters()], g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("length", [1, 9, 40])
def test_mixer_matches_published_flip_scan_flip(length):
    torch.manual_seed(length)
    m = BiMamba(24, backend="torch").double()
    with torch.no_grad():  # break the symmetric init so both branches differ
        for p in (m.A_b_log, m.D_b, m.conv1d_b.bias):
            p.add_(0.3 * torch.randn_like(p))
    h = torch.randn(2, length, 24, dtype=torch.float64, requires_grad=True)
    y = m(h)
    y_ref = mixer_ref(m, h)
    assert_same_values_and_grads(m, h, y, y_ref)


def test_mixer_backward_index():
    torch.manual_seed(0)
    m = BiMamba(16, backend="torch").double()
    h = torch.randn(1, 11, 16, dtype=torch.float64)
    perm = torch.randperm(11)
    torch.testing.assert_close(m(h, index_b=perm), mixer_ref(m, h, perm), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m(h, index_b=torch.arange(11)), m(h), rtol=1e-10, atol=1e-12)


def test_mixer_backends_agree():
    torch.manual_seed(0)
    m = BiMamba(16, backend="torch").double()
    h = torch.randn(2, 13, 16, dtype=torch.float64)
    y = m(h)
    m.backend = "reference"
    torch.testing.assert_close(m(h), y, rtol=1e-10, atol=1e-12)


def test_mixer_parameter_names_and_shapes():
    m = BiMamba(192)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (768, 192), "out_proj.weight": (192, 384),
        "conv1d.weight": (384, 1, 4), "conv1d.bias": (384,), "x_proj.weight": (44, 384),
        "dt_proj.weight": (384, 12), "dt_proj.bias": (384,), "A_log": (384, 16), "D": (384,),
        "conv1d_b.weight": (384, 1, 4), "conv1d_b.bias": (384,), "x_proj_b.weight": (44, 384),
        "dt_proj_b.weight": (384, 12), "dt_proj_b.bias": (384,), "A_b_log": (384, 16), "D_b": (384,),
    }


@pytest.mark.parametrize("index", ["none", "shared", "per_row"])
def test_directional_path_equals_the_bidirectional_one(index):
    """The per-direction path (mamba-ssm's fused ``mamba_inner_fn`` on CUDA, composed from the
    same ops here) gives the bidirectional scan's values and gradients, also for a backward
    scan order given by index_b."""
    torch.manual_seed(1)
    m = BiMamba(16, backend="torch").double()
    with torch.no_grad():
        for p in (m.A_b_log, m.D_b, m.conv1d_b.bias, m.out_proj.weight):
            p.add_(0.3 * torch.randn_like(p))
    m.out_proj.bias = torch.nn.Parameter(torch.randn(16, dtype=torch.float64))  # bias counted once
    h = torch.randn(2, 13, 16, dtype=torch.float64, requires_grad=True)
    index_b = {"none": None, "shared": torch.randperm(13),
               "per_row": torch.stack([torch.randperm(13) for _ in range(2)])}[index]
    y, y_dir = m(h, index_b=index_b), m.forward_directional(h, index_b=index_b)
    assert_same_values_and_grads(m, h, y_dir, y)
