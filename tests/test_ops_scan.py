"""videomamba.ops: chunked torch selective scan and the bidirectional op vs the sequential
float64 reference (values and gradients of every input)."""

from __future__ import annotations

import pytest
import torch

from videomamba import ops
from videomamba.ops import selective_scan_ref as ref_mod
from videomamba.ops import selective_scan_torch as torch_mod

F64 = torch.float64


def _inputs(batch, dim, n, length, groups=0, dtype=F64, delta_scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    bc_shape = (batch, groups, n, length) if groups else (batch, n, length)
    return dict(
        u=r(batch, dim, length), delta=r(batch, dim, length) * delta_scale,
        A=-torch.rand(dim, n, generator=g, dtype=dtype) * 4 - 0.1,
        B=r(*bc_shape), C=r(*bc_shape), D=r(dim), z=r(batch, dim, length), delta_bias=r(dim) * 0.5,
    )


def _grads(fn, inp, weights):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inp.items()}
    out = fn(**leaves)
    outs = out if isinstance(out, tuple) else (out,)
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return outs, dict(zip(leaves, grads))


@pytest.mark.parametrize("length", [1, 7, 33, 130])
@pytest.mark.parametrize("groups", [0, 2])
@pytest.mark.parametrize("reverse", [False, True])
def test_torch_scan_matches_reference_values_and_grads(length, groups, reverse):
    inp = _inputs(2, 6, 4, length, groups)

    def ref(**kw):
        if not reverse:
            return ref_mod.selective_scan_ref(**kw, delta_softplus=True, return_last_state=True)
        flip = {k: (v.flip(-1) if k in ("u", "delta", "B", "C", "z") else v) for k, v in kw.items()}
        y, h = ref_mod.selective_scan_ref(**flip, delta_softplus=True, return_last_state=True)
        return y.flip(-1), h

    def fast(**kw):
        return ops.selective_scan_fn(**kw, delta_softplus=True, return_last_state=True,
                                     backend="torch", reverse=reverse)

    w = (torch.randn(2, 6, length, dtype=F64), torch.randn(2, 6, 4, dtype=F64))
    (y_r, h_r), g_r = _grads(ref, inp, w)
    (y_t, h_t), g_t = _grads(fast, inp, w)
    torch.testing.assert_close(y_t, y_r, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h_t, h_r, rtol=1e-10, atol=1e-10)
    for name in inp:  # u, delta, A, B, C, D, z, delta_bias
        torch.testing.assert_close(g_t[name], g_r[name], rtol=1e-9, atol=1e-9, msg=f"grad of {name}")


def test_optional_inputs_absent():
    inp = _inputs(1, 4, 3, 19)
    for k in ("D", "z", "delta_bias"):
        inp.pop(k)
    y_r = ref_mod.selective_scan_ref(**inp)
    y_t = ops.selective_scan_fn(**inp, backend="torch")
    torch.testing.assert_close(y_t, y_r, rtol=1e-10, atol=1e-10)


def test_many_segments_and_chunks(monkeypatch):
    """Tiny segment budget: several segments (state carried in forward, adjoint in backward)."""
    monkeypatch.setattr(torch_mod, "_ENV_SEGMENT", "1")
    length = 300
    assert torch_mod._segment_len(1, 4, 3, length, torch.device("cpu")) < length
    inp = _inputs(1, 4, 3, length, groups=2)
    w = (torch.randn(1, 4, length, dtype=F64), torch.randn(1, 4, 3, dtype=F64))
    (y_r, h_r), g_r = _grads(lambda **kw: ref_mod.selective_scan_ref(**kw, delta_softplus=True,
                                                                      return_last_state=True), inp, w)
    (y_t, h_t), g_t = _grads(lambda **kw: torch_mod.selective_scan_torch(**kw, delta_softplus=True,
                                                                         return_last_state=True), inp, w)
    torch.testing.assert_close(y_t, y_r, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h_t, h_r, rtol=1e-10, atol=1e-10)
    for name in inp:
        torch.testing.assert_close(g_t[name], g_r[name], rtol=1e-9, atol=1e-9, msg=f"grad of {name}")


def test_fp32_close_to_float64_reference():
    inp = _inputs(2, 16, 16, 700, seed=3)
    y_ref = ref_mod.selective_scan_ref(**inp, delta_softplus=True)
    y32 = ops.selective_scan_fn(**{k: v.float() for k, v in inp.items()}, delta_softplus=True, backend="torch")
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y_ref, rtol=1e-5, atol=1e-5 * y_ref.abs().max().item())


@pytest.mark.parametrize("scale", [30.0, 1e3])
def test_large_delta_is_stable(scale):
    """delta * A down to ~ -1e5 per step: exp underflows to 0, nothing overflows or NaNs."""
    inp = _inputs(1, 8, 16, 150, delta_scale=scale, seed=4)
    inp["delta"] = inp["delta"].abs()
    ref = ref_mod.selective_scan_ref(**inp, delta_softplus=True)
    leaves = {k: v.float().requires_grad_() for k, v in inp.items()}
    y = ops.selective_scan_fn(**leaves, delta_softplus=True, backend="torch")
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    y.sum().backward()
    assert all(torch.isfinite(v.grad).all() for v in leaves.values())


def test_low_precision_input_keeps_dtype_and_accumulates_in_fp32():
    inp = _inputs(1, 8, 4, 64, seed=5)
    y_ref = ref_mod.selective_scan_ref(**inp, delta_softplus=True)
    y = ops.selective_scan_fn(**{k: v.to(torch.bfloat16) for k, v in inp.items()}, delta_softplus=True)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.double(), y_ref, rtol=0.05, atol=0.05 * y_ref.abs().max().item())


def test_bi_scan_matches_reference_values_and_grads():
    f = _inputs(2, 6, 4, 45, seed=6)
    b = _inputs(2, 6, 4, 45, groups=3, seed=7)
    names = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    inp = {**{k + "_f": f[k] for k in names}, **{k + "_b": b[k] for k in names}, "z": f["z"]}

    def run(fn, **kw):
        return fn(*(kw[k + "_f"] for k in names), *(kw[k + "_b"] for k in names), kw["z"], delta_softplus=True)

    w = (torch.randn(2, 6, 45, dtype=F64),)
    (y_r,), g_r = _grads(lambda **kw: run(ref_mod.bi_selective_scan_ref, **kw), inp, w)
    (y_t,), g_t = _grads(lambda **kw: run(lambda *a, **k: ops.bi_selective_scan_fn(*a, **k, backend="torch"), **kw),
                         inp, w)
    torch.testing.assert_close(y_t, y_r, rtol=1e-10, atol=1e-10)
    for name in inp:
        torch.testing.assert_close(g_t[name], g_r[name], rtol=1e-9, atol=1e-9, msg=f"grad of {name}")


@pytest.mark.parametrize("per_row", [False, True])
def test_bi_scan_with_backward_index(per_row):
    """index_b: the backward inputs are laid out in index_b order and scanned last-to-first;
    equals flip-scan-flip in that order, scattered back."""
    length = 23
    f, b = _inputs(2, 4, 3, length, seed=8), _inputs(2, 4, 3, length, seed=9)
    gen = torch.Generator().manual_seed(0)
    index = (torch.stack([torch.randperm(length, generator=gen) for _ in range(2)]) if per_row
             else torch.randperm(length, generator=gen))
    names = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    y = ops.bi_selective_scan_fn(*(f[k] for k in names), *(b[k] for k in names), f["z"], backend="torch",
                                 index_b=index)
    y_f = ref_mod.selective_scan_ref(*(f[k] for k in names[:6]), f["z"], f["delta_bias"], True)
    idx = index if per_row else index.expand(2, -1)
    z_b = torch.gather(f["z"], -1, idx[:, None].expand(-1, 4, -1))
    y_b = ref_mod.selective_scan_ref(b["u"].flip(-1), b["delta"].flip(-1), b["A"], b["B"].flip(-1),
                                     b["C"].flip(-1), b["D"], z_b.flip(-1), b["delta_bias"], True).flip(-1)
    y_b_tokens = torch.zeros_like(y_b).scatter_(-1, idx[:, None].expand(-1, 4, -1), y_b)
    torch.testing.assert_close(y, y_f + y_b_tokens, rtol=1e-10, atol=1e-10)


def test_reference_backend_dispatch_and_reverse():
    inp = _inputs(1, 4, 3, 17, seed=10)
    y_r = ops.selective_scan_fn(**inp, backend="reference", reverse=True)
    y_t = ops.selective_scan_fn(**inp, backend="torch", reverse=True)
    torch.testing.assert_close(y_t, y_r, rtol=1e-10, atol=1e-10)


def test_backend_validation():
    inp = _inputs(1, 4, 3, 5)
    with pytest.raises(ValueError, match="valid backends: auto, torch, triton, mamba_ssm, reference"):
        ops.selective_scan_fn(**inp, backend="cuda")
    assert ops.resolve_backend("auto", "cpu") == "torch"
    assert {"torch", "reference"} <= set(ops.available_backends())
    if "mamba_ssm" not in ops.available_backends():
        with pytest.raises(RuntimeError, match="mamba_ssm"):
            ops.selective_scan_fn(**inp, backend="mamba_ssm")
    status = ops.backend_status()
    assert set(status) == {"torch", "triton", "mamba_ssm", "reference"}
