"""Triton depthwise causal conv1d (+ SiLU) vs the tap-loop reference: values and gradients of x,
weight and bias, one direction or both BiMamba directions in one launch.

Runs the kernels under ``TRITON_INTERPRET=1`` on the CPU (tests/conftest.py sets it without CUDA;
small blocks, so short sequences span several position and channel blocks), compiled on a GPU
(``cuda`` cases; there the interpreter cases run in a child process), as tests/test_ops_triton.py.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")
tconv = importlib.import_module("videomamba.ops.triton.causal_conv1d")
INTERPRET = importlib.import_module("videomamba.ops.triton.runtime").INTERPRET
from videomamba import ops  # noqa: E402
from videomamba.ops.bimamba_inner import in_proj_bdl  # noqa: E402
from videomamba.ops.causal_conv1d import causal_conv1d_ref  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
pytestmark = pytest.mark.skipif(not (INTERPRET or HAS_CUDA), reason="triton needs CUDA or TRITON_INTERPRET=1")
DEVICE = torch.device("cpu" if INTERPRET else "cuda")


def test_interpreter_cases_in_subprocess():
    """On a machine where this process compiles the kernels, run the interpreter cases too."""
    if INTERPRET:
        pytest.skip("the interpreter cases run in this process")
    env = dict(os.environ, TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def _rand(*shape, seed, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(DEVICE)


def _leaf(t):
    return t.detach().clone().requires_grad_() if t is not None else None


def _grads(fn, inputs, seed=7, cot_dtype=torch.float64):
    """fn(*inputs) -> output or tuple; returns (outputs, d(sum <out, g>)/d inputs) with fixed g
    (rounded to ``cot_dtype``: a bf16 output's incoming gradient is bf16, give the reference the same)."""
    leaves = [_leaf(t) for t in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.double() * _rand(*o.shape, seed=seed + i).to(cot_dtype).double()).sum() for i, o in enumerate(outs))
    wrt = [t for t in leaves if t is not None]
    return outs, torch.autograd.grad(loss, wrt)


def _assert_close(got, want, tol, name):
    err = (got.double() - want.double()).abs().max().item() if got.numel() else 0.0
    scale = want.double().abs().max().item() + 1e-3 if want.numel() else 1.0
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert err <= tol * scale, f"{name}: max abs err {err:.3e} > {tol:g} * {scale:.3e}"


def _check_vs_ref(x, w, b, activation, reverse, tol=1e-12):
    def tri(x_, w_, b_=None):
        return tconv.causal_conv1d_triton(x_, w_, b_, activation, reverse)

    def ref(x_, w_, b_=None):
        return causal_conv1d_ref(x_, w_, b_, activation, reverse)

    (y,), g = _grads(tri, (x, w, b))
    (y_ref,), g_ref = _grads(ref, (x, w, b))
    assert y.dtype == x.dtype and y.is_contiguous()
    _assert_close(y, y_ref, tol, "y")
    for name, a, r in zip(("dx", "dweight", "dbias"), g, g_ref):
        assert a.dtype == r.dtype, name
        _assert_close(a, r, tol, name)


# (length, K, reverse, bias, activation): L < K, one whole block, L not a multiple of the block (16
# in the interpreter), and a 3-tap conv
CASES = [(2, 4, False, True, "silu"), (3, 4, True, False, None), (16, 4, False, False, "silu"),
         (37, 4, False, True, None), (37, 4, True, True, "silu"), (21, 3, True, True, "silu")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"L{c[0]}-K{c[1]}{'-rev' if c[2] else ''}"
                         f"{'-bias' if c[3] else ''}-{c[4]}")
def test_values_and_grads_float64(case):
    length, k, reverse, with_bias, activation = case
    x = _rand(2, 3, length, seed=length)
    w, b = _rand(3, k, seed=1), _rand(3, seed=2) if with_bias else None
    _check_vs_ref(x, w, b, activation, reverse)


def _layouts(batch, dim, length, seed):
    """x (B, D, L) as the model hands it to the conv: a channel chunk of a (B, 2D, L) tensor (the x
    half of ``in_proj_bdl``'s xz), the x half of an xz made by one GEMM over (B L) (mamba-ssm's
    layout, strides (L, B L, 1)), and an L-stride != 1 view."""
    wide = _rand(batch, 2 * dim, length, seed=seed)
    hidden, wproj = _rand(batch, length, 5, seed=seed + 1), _rand(2 * dim, 5, seed=seed + 2)
    xz = (wproj @ hidden.reshape(-1, 5).t()).view(2 * dim, batch, length).transpose(0, 1)
    blc = _rand(batch, length, dim, seed=seed + 3).transpose(1, 2)
    out = {"chunk": wide[:, dim:], "in_proj": xz.chunk(2, dim=1)[0], "l_stride": blc}
    assert out["in_proj"].stride() == (length, batch * length, 1)
    assert all(not t.is_contiguous() for t in out.values())
    return out


@pytest.mark.parametrize("reverse", [False, True])
def test_noncontiguous_inputs_read_in_place(reverse):
    w, b = _rand(3, 4, seed=11), _rand(3, seed=12)
    for name, x in _layouts(2, 3, 19, seed=30).items():
        _check_vs_ref(x, w, b, "silu", reverse)
        # the same values as from a contiguous copy (no hidden dependence on the strides)
        y = tconv.causal_conv1d_triton(x, w, b, "silu", reverse)
        assert torch.equal(y, tconv.causal_conv1d_triton(x.contiguous(), w, b, "silu", reverse)), name
    # an incoming gradient with L-stride != 1 (autograd passes it on as it is)
    x = _leaf(_layouts(2, 3, 19, seed=31)["chunk"])
    dy = _rand(2, 19, 3, seed=32).transpose(1, 2)
    (dx,) = torch.autograd.grad(tconv.causal_conv1d_triton(x, w, b, "silu", reverse), x, dy)
    xr = _leaf(x)
    (dx_ref,) = torch.autograd.grad(causal_conv1d_ref(xr, w, b, "silu", reverse), xr, dy)
    _assert_close(dx, dx_ref, 1e-12, "dx (strided dy)")


def _bi_inputs(length, seed, bias=True, dtype=torch.float64):
    x = _layouts(2, 3, length, seed)["in_proj"].to(dtype)
    wf, wb = _rand(3, 4, seed=seed + 5), _rand(3, 4, seed=seed + 6)
    bf, bb = (_rand(3, seed=seed + 7), _rand(3, seed=seed + 8)) if bias else (None, None)
    return x, wf, bf, wb, bb


@pytest.mark.parametrize("length,bias,activation", [(37, True, "silu"), (3, False, None)])
def test_bidirectional_matches_two_calls_and_reference(length, bias, activation):
    """One launch for both directions = the causal and the anti-causal conv of the same x; dx is
    the sum of both directions' contributions."""
    x, wf, bf, wb, bb = _bi_inputs(length, seed=40, bias=bias)

    def bi(x_, wf_, bf_, wb_, bb_):
        return tconv.bi_causal_conv1d_triton(x_, wf_, bf_, wb_, bb_, activation)

    def two(fn):
        return lambda x_, wf_, bf_, wb_, bb_: (fn(x_, wf_, bf_, activation, False), fn(x_, wb_, bb_, activation, True))

    outs, g = _grads(bi, (x, wf, bf, wb, bb))
    outs_sep, g_sep = _grads(two(tconv.causal_conv1d_triton), (x, wf, bf, wb, bb))
    outs_ref, g_ref = _grads(two(causal_conv1d_ref), (x, wf, bf, wb, bb))
    for name, a, s, r in zip(("y_f", "y_b"), outs, outs_sep, outs_ref):
        _assert_close(a, s, 1e-12, name + " (vs two calls)")
        _assert_close(a, r, 1e-12, name)
    names = ["dx", "dw_f"] + ["db_f"] * bias + ["dw_b"] + ["db_b"] * bias
    for name, a, s, r in zip(names, g, g_sep, g_ref):
        _assert_close(a, s, 1e-12, name + " (vs two calls)")
        _assert_close(a, r, 1e-12, name)


def test_bidirectional_one_output_used():
    """Only y_b reaches the loss: dx is y_b's alone and the causal direction's weights get zeros."""
    x, wf, bf, wb, bb = _bi_inputs(20, seed=50)
    leaves = [_leaf(t) for t in (x, wf, bf, wb, bb)]
    _y_f, y_b = tconv.bi_causal_conv1d_triton(*leaves, "silu")
    g = _rand(*y_b.shape, seed=3)
    (y_b * g).sum().backward()
    xr, wbr, bbr = _leaf(x), _leaf(wb), _leaf(bb)
    (causal_conv1d_ref(xr, wbr, bbr, "silu", reverse=True) * g).sum().backward()
    for a, r, name in ((leaves[0], xr, "dx"), (leaves[3], wbr, "dw_b"), (leaves[4], bbr, "db_b")):
        _assert_close(a.grad, r.grad, 1e-12, name)
    assert torch.equal(leaves[1].grad, torch.zeros_like(wf)) and torch.equal(leaves[2].grad, torch.zeros_like(bf))


def test_bf16_activations_fp32_weights():
    """What the model runs: bf16 x, fp32 weights; output and dx in bf16, dweight/dbias in fp32,
    fp32 accumulation (close to the float64 reference of the same rounded inputs; the incoming
    gradient is rounded to bf16 like the output, hence 5e-3 on dweight/dbias)."""
    x, wf, bf, wb, bb = _bi_inputs(37, seed=60, dtype=torch.bfloat16)
    wf, bf, wb, bb = (t.float() for t in (wf, bf, wb, bb))
    outs, g = _grads(lambda *a: tconv.bi_causal_conv1d_triton(*a, "silu"), (x, wf, bf, wb, bb))
    assert [o.dtype for o in outs] == [torch.bfloat16] * 2
    assert [t.dtype for t in g] == [torch.bfloat16] + [torch.float32] * 4

    def ref(x_, wf_, bf_, wb_, bb_):
        return (causal_conv1d_ref(x_, wf_, bf_, "silu"), causal_conv1d_ref(x_, wb_, bb_, "silu", reverse=True))

    outs_ref, g_ref = _grads(ref, [t.double() for t in (x, wf, bf, wb, bb)])
    for name, a, r in zip(("y_f", "y_b", "dx", "dw_f", "db_f", "dw_b", "db_b"), [*outs, *g], [*outs_ref, *g_ref]):
        _assert_close(a, r, 1e-2 if a.dtype == torch.bfloat16 else 5e-3, name)


def test_autocast_casts_activations_keeps_weights():
    x, w, b = _rand(1, 3, 9, seed=70, dtype=torch.float32), _rand(3, 4, seed=71).float(), _rand(3, seed=72).float()
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        y = tconv.causal_conv1d_triton(x, w, b, "silu")
    assert y.dtype == torch.bfloat16
    _assert_close(y, causal_conv1d_ref(x.bfloat16().double(), w.double(), b.double(), "silu"), 1e-2, "y")


def test_backward_is_bitwise_deterministic():
    """dweight/dbias are per-program partial rows summed in a fixed order (no atomics): two backward
    passes give identical bits. (In the interpreter programs run one after another, so this can only
    fail compiled; the CUDA case below uses a realistic shape.)"""
    x, wf, bf, wb, bb = _bi_inputs(45, seed=80, dtype=torch.float32)
    runs = [_grads(lambda *a: tconv.bi_causal_conv1d_triton(*a, "silu"), (x, wf.float(), bf.float(), wb.float(),
                                                                          bb.float()))[1] for _ in range(2)]
    for i, (a, r) in enumerate(zip(*runs)):
        assert torch.equal(a, r), f"gradient {i}"


@pytest.mark.parametrize("env", [{"BLOCK_L": "32", "BLOCK_D": "1"},
                                 {"BWD_BLOCK_L": "8", "BWD_BLOCK_D": "4", "NUM_WARPS": "2"},
                                 {"BWD_KERNEL": "generic"}, {"BWD_LTILES": "3", "BWD_BLOCK_L": "4"}],
                         ids=lambda e: "-".join(f"{k}{v}" for k, v in e.items()))
def test_block_overrides(env, monkeypatch):
    """Tuning overrides (the forward's and the backward's blocks chosen apart, the generic-K
    backward kernel, position tiles grouped by three per program, the last group short) give the same
    values; a 3-tap conv on both backward kernels."""
    for k, v in env.items():
        monkeypatch.setenv(f"VIDEOMAMBA_TRITON_CONV_{k}", v)
    x, wf, bf, wb, bb = _bi_inputs(37, seed=90)
    outs, g = _grads(lambda *a: tconv.bi_causal_conv1d_triton(*a, "silu"), (x, wf, bf, wb, bb))

    def ref(x_, wf_, bf_, wb_, bb_):
        return (causal_conv1d_ref(x_, wf_, bf_, "silu"), causal_conv1d_ref(x_, wb_, bb_, "silu", reverse=True))

    outs_ref, g_ref = _grads(ref, (x, wf, bf, wb, bb))
    for i, (a, r) in enumerate(zip([*outs, *g], [*outs_ref, *g_ref])):
        _assert_close(a, r, 1e-12, f"output/grad {i}")
    _check_vs_ref(x, wf[:, 1:], bf, "silu", reverse=True)


def test_bad_override_names_the_variable(monkeypatch):
    monkeypatch.setenv("VIDEOMAMBA_TRITON_CONV_BLOCK_L", "100")
    with pytest.raises(ValueError, match="VIDEOMAMBA_TRITON_CONV_BLOCK_L='100': expected a positive integer"):
        tconv.causal_conv1d_triton(_rand(1, 2, 5, seed=0), _rand(2, 4, seed=1))
    monkeypatch.delenv("VIDEOMAMBA_TRITON_CONV_BLOCK_L")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_CONV_BWD_KERNEL", "fast")
    with pytest.raises(ValueError, match="VIDEOMAMBA_TRITON_CONV_BWD_KERNEL='fast': expected one of"):
        tconv.causal_conv1d_triton(_rand(1, 2, 5, seed=0), _rand(2, 4, seed=1))
    monkeypatch.delenv("VIDEOMAMBA_TRITON_CONV_BWD_KERNEL")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_CONV_BWD_LTILES", "0")
    x = _rand(1, 2, 5, seed=0).requires_grad_()
    with pytest.raises(ValueError, match="VIDEOMAMBA_TRITON_CONV_BWD_LTILES='0': expected a positive integer"):
        tconv.causal_conv1d_triton(x, _rand(2, 4, seed=1), activation="silu").sum().backward()


def test_bad_inputs_raise_clearly():
    x = _rand(1, 3, 5, seed=0)
    with pytest.raises(ValueError, match="activation"):
        tconv.causal_conv1d_triton(x, _rand(3, 4, seed=1), activation="relu")
    with pytest.raises(ValueError, match=r"weight must be \(D, K\) with D = 3"):
        tconv.causal_conv1d_triton(x, _rand(3, 1, 4, seed=1))
    with pytest.raises(ValueError, match=r"bias must be \(D,\)"):
        tconv.causal_conv1d_triton(x, _rand(3, 4, seed=1), _rand(4, seed=2))


def test_dispatch_triton_backend_uses_the_kernel(monkeypatch):
    x, w, b = _rand(2, 3, 11, seed=100), _rand(3, 4, seed=101), _rand(3, seed=102)
    calls = []
    real = tconv._fwd
    monkeypatch.setattr(tconv, "_fwd", lambda *a: calls.append(1) or real(*a))
    for reverse in (False, True):
        y = ops.causal_conv1d_fn(x, w, b, activation="silu", reverse=reverse, backend="triton")
        _assert_close(y, causal_conv1d_ref(x, w, b, "silu", reverse), 1e-12, "y")
    assert len(calls) == 2


@pytest.mark.skipif(INTERPRET or not HAS_CUDA, reason="needs CUDA and compiled triton")
def test_realistic_shape_bf16_and_deterministic_cuda():
    """VideoMamba-Ti's conv at 8 frames (d_inner 384, L = 1 + 196 * 8) on the GPU blocks, bf16
    x in the in_proj layout: close to the float64 reference; two backward passes bitwise equal."""
    batch, dim, length = 2, 384, 1569
    xz = in_proj_bdl(_rand(batch, length, 192, seed=1).bfloat16(), _rand(2 * dim, 192, seed=2).bfloat16() / 14)
    x = xz.chunk(2, dim=1)[0]
    params = [t.float() for t in (_rand(dim, 4, seed=3), _rand(dim, seed=4), _rand(dim, 4, seed=5), _rand(dim, seed=6))]
    runs = [_grads(lambda *a: tconv.bi_causal_conv1d_triton(*a, "silu"), (x, *params), cot_dtype=torch.bfloat16)
            for _ in range(2)]
    for a, r in zip([*runs[0][0], *runs[0][1]], [*runs[1][0], *runs[1][1]]):
        assert torch.equal(a, r)

    def ref(x_, wf_, bf_, wb_, bb_):
        return (causal_conv1d_ref(x_, wf_, bf_, "silu"), causal_conv1d_ref(x_, wb_, bb_, "silu", reverse=True))

    outs_ref, g_ref = _grads(ref, [t.double() for t in (x, *params)], cot_dtype=torch.bfloat16)
    for i, (a, r) in enumerate(zip([*runs[0][0], *runs[0][1]], [*outs_ref, *g_ref])):
        _assert_close(a, r, 1e-2 if a.dtype == torch.bfloat16 else 1e-4, f"output/grad {i}")


def test_conv_bench_cpu_pieces(monkeypatch):
    """bench/conv_kernels (run by hand on a GPU): sweep parsing rejects unknown names, the sweep
    sets VIDEOMAMBA_TRITON_CONV_* and restores them, ratios are baseline ms / row ms per shape,
    one impl's step and agreement run (here on the interpreter), and the report lists errors."""
    from videomamba.bench import conv_kernels as ck
    from videomamba.bench.floor import peaks_for

    assert ck.parse_sweep("block_l=1024,NUM_WARPS=8; BWD_BLOCK_D=4;BWD_KERNEL=generic") == [
        {"BLOCK_L": 1024, "NUM_WARPS": 8}, {"BWD_BLOCK_D": 4}, {"BWD_KERNEL": "generic"}]
    with pytest.raises(ValueError, match="BWD_BLOCK_L"):
        ck.parse_sweep("SEGMENTS=2")
    monkeypatch.delenv("VIDEOMAMBA_TRITON_CONV_BLOCK_L", raising=False)
    with ck.triton_env(ck.env_names({"BLOCK_L": 32})):
        assert os.environ["VIDEOMAMBA_TRITON_CONV_BLOCK_L"] == "32"
    assert "VIDEOMAMBA_TRITON_CONV_BLOCK_L" not in os.environ
    fl = ck.floor_ms(384, 32, 1569, peaks_for("NVIDIA H200"))
    rows = [dict(shape="ti-8f", d_inner=384, batch=32, L=1569, impl="torch", config="-", fwd_ms=2.0, fwd_bwd_ms=6.0,
                 floor_ms=fl),
            dict(shape="ti-8f", d_inner=384, batch=32, L=1569, impl="ours_bi", config={"BLOCK_L": 1024}, fwd_ms=0.5,
                 fwd_bwd_ms=1.5, floor_ms=fl, resolved={"fwd": {"BLOCK_D": 2, "BLOCK_L": 1024, "num_warps": 4}}),
            dict(shape="ti-8f", impl="ours_bi", config={"BLOCK_D": 1}, error="OutOfResources: shared memory")]
    ck._ratios(rows)
    assert rows[1]["fwd_x_torch"] == pytest.approx(4.0) and rows[1]["fwd_bwd_x_torch"] == pytest.approx(4.0)
    assert rows[1]["fwd_bwd_floor_x"] == pytest.approx(1.5 / fl["fwd_bwd"]) and "fwd_x_cc1d" not in rows[1]
    text = ck.report({"date": "d", "env": {"device": "H200"}, "rows": rows, "agreement": {}})
    assert "| BLOCK_L=1024 | 2, 1024, 4 |" in text and "| 4.00 |" in text and "OutOfResources" in text
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2 * 9, generator=g).bfloat16().view(6, 2, 9).permute(1, 0, 2)[:, :3].to(DEVICE)
    inp = {"x": x} | {f"{p}_{t}": v for t in "fb" for p, v in (("w", _rand(3, 4, seed=1).float()),
                                                               ("b", _rand(3, seed=2).float()),
                                                               ("dy", _rand(2, 3, 9, seed=3).bfloat16()))}
    fwd, fwd_bwd = ck.step_fns(inp, "ours_bi")
    fwd()
    fwd_bwd()
    assert ck.agreement(inp, "ours_bi")["grad_rel_max"] < 2e-2
