"""Triton selective scan vs the float64 sequential reference: values and gradients of every input.

Two modes: ``cpu-interpret`` (the kernels under ``TRITON_INTERPRET=1`` on CPU tensors, tiny
sizes) and ``cuda`` (compiled, when a GPU is present; adds a realistic shape). A process runs
Triton in one mode, fixed when triton is first imported (tests/conftest.py sets
TRITON_INTERPRET=1 when there is no CUDA). So the cases of the other mode are skipped here, and
on a CUDA machine ``test_interpreter_cases_in_subprocess`` runs the interpreter cases in a
child process with TRITON_INTERPRET=1.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")
sst = importlib.import_module("videomamba.ops.triton")
INTERPRET = importlib.import_module("videomamba.ops.triton.runtime").INTERPRET
# the module itself (videomamba.ops re-exports a function under the same name)
ref = importlib.import_module("videomamba.ops.selective_scan_ref")

HAS_CUDA = torch.cuda.is_available()

DEVICES = [
    pytest.param("cpu-interpret", id="cpu-interpret", marks=pytest.mark.skipif(
        not INTERPRET, reason="triton runs compiled in this process; see test_interpreter_cases_in_subprocess")),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(
        INTERPRET or not HAS_CUDA, reason="needs CUDA and compiled triton (TRITON_INTERPRET unset)")),
]


@pytest.fixture(params=DEVICES)
def backend(request):
    """(module, torch device) for the execution mode."""
    return sst, torch.device("cuda" if request.param == "cuda" else "cpu")


def test_interpreter_cases_in_subprocess():
    """On a machine where this process compiles the kernels, run the interpreter cases too."""
    if INTERPRET:
        pytest.skip("the interpreter cases run in this process")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "cpu-interpret"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def _inputs(batch, dim, n, length, *, groups=(0, 0), device="cpu", seed=0, softplus=True):
    """Well-conditioned random inputs (float64, CPU); groups=(G_B, G_C), 0 = ungrouped."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    u = r(batch, dim, length)
    delta = r(batch, dim, length) * 0.5 - 1.0 if softplus else torch.rand(batch, dim, length, generator=g,
                                                                           dtype=torch.float64) * 0.5
    A = -(0.3 + torch.rand(dim, n, generator=g, dtype=torch.float64))
    B = r(batch, groups[0], n, length) if groups[0] else r(batch, n, length)
    C = r(batch, groups[1], n, length) if groups[1] else r(batch, n, length)
    return dict(u=u, delta=delta, A=A, B=B, C=C, D=r(dim), z=r(batch, dim, length), delta_bias=0.3 * r(dim))


def _close(got, want, rtol, name):
    """max |got - want| <= rtol * (max |want| + 1e-3): tolerance relative to the tensor's scale."""
    err = (got.double().cpu() - want.double().cpu()).abs().max().item()
    scale = want.abs().max().item() + 1e-3
    assert err <= rtol * scale, f"{name}: max abs err {err:.3e} > {rtol:g} * {scale:.3e}"


def _run_both(fn_tri, fn_ref, tensors, dtype, device, rtol, grad_rtol):
    """Forward + backward of both; compare output and every input's gradient."""
    names = [k for k, v in tensors.items() if v is not None]
    # inputs rounded to `dtype` first, so the reference sees exactly what the kernel sees
    low = {k: (v.to(dtype) if v is not None else None) for k, v in tensors.items()}
    x_tri = {k: (v.to(device).clone().requires_grad_() if v is not None else None) for k, v in low.items()}
    x_ref = {k: (v.double().clone().requires_grad_() if v is not None else None) for k, v in low.items()}
    y = fn_tri(x_tri)
    y_ref = fn_ref(x_ref)
    assert y.dtype == dtype and y.shape == y_ref.shape
    _close(y, y_ref, rtol, "out")
    gout = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
    (y.float() * gout.to(device).float()).sum().backward()
    (y_ref * gout.to(y_ref.device)).sum().backward()
    for k in names:
        assert x_tri[k].grad is not None, k
        assert x_tri[k].grad.dtype == x_tri[k].dtype and x_tri[k].grad.shape == x_tri[k].shape, k
        _close(x_tri[k].grad, x_ref[k].grad, grad_rtol, f"d{k}")


def _flip(t):
    return None if t is None else t.flip(-1)


# (length, groups, with_D, with_z, with_bias, softplus, reverse)
SINGLE_CASES = [
    (1, (0, 0), True, True, True, True, False),
    (5, (0, 0), False, False, False, False, False),
    (17, (2, 2), True, True, False, False, False),
    (63, (0, 0), False, True, True, True, False),
    (130, (2, 0), True, True, True, True, False),  # 130: not a multiple of the tile length
    (17, (0, 0), True, True, True, True, True),
    (63, (2, 2), True, False, True, True, True),
]


@pytest.mark.parametrize("case", SINGLE_CASES, ids=lambda c: f"L{c[0]}-g{c[1][0]}{c[1][1]}-"
                         f"{'D' if c[2] else ''}{'z' if c[3] else ''}{'b' if c[4] else ''}"
                         f"{'sp' if c[5] else ''}{'-rev' if c[6] else ''}")
def test_selective_scan_fp32(backend, case):
    mod, device = backend
    length, groups, with_D, with_z, with_bias, softplus, reverse = case
    t = _inputs(2, 6, 3, length, groups=groups, softplus=softplus, seed=length)
    t["D"] = t["D"] if with_D else None
    t["z"] = t["z"] if with_z else None
    t["delta_bias"] = t["delta_bias"] if with_bias else None

    def tri(x):
        return mod.selective_scan_triton(**x, delta_softplus=softplus, reverse=reverse)

    def want(x):
        if not reverse:
            return ref.selective_scan_ref(**x, delta_softplus=softplus)
        x = dict(x)
        for k in ("u", "delta", "B", "C", "z"):
            x[k] = _flip(x[k])
        return ref.selective_scan_ref(**x, delta_softplus=softplus).flip(-1)

    _run_both(tri, want, t, torch.float32, device, rtol=2e-5, grad_rtol=5e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_selective_scan_low_precision(backend, dtype):
    mod, device = backend
    t = _inputs(2, 8, 4, 37, seed=7)
    _run_both(lambda x: mod.selective_scan_triton(**x, delta_softplus=True),
              lambda x: ref.selective_scan_ref(**x, delta_softplus=True),
              t, dtype, device, rtol=1e-2, grad_rtol=2e-2)


@pytest.mark.parametrize("reverse", [False, True])
def test_last_state_value_and_grad(backend, reverse):
    mod, device = backend
    t = _inputs(2, 5, 3, 21, seed=3)
    x = {k: v.float().to(device).requires_grad_() for k, v in t.items()}
    xr = {k: v.clone().requires_grad_() for k, v in t.items()}
    y, last = mod.selective_scan_triton(**x, delta_softplus=True, return_last_state=True, reverse=reverse)
    assert last.dtype == torch.float32 and last.shape == (2, 5, 3)
    if reverse:
        fx = {k: (_flip(v) if k in ("u", "delta", "B", "C", "z") else v) for k, v in xr.items()}
        y_ref, last_ref = ref.selective_scan_ref(**fx, delta_softplus=True, return_last_state=True)
        y_ref = y_ref.flip(-1)
    else:
        y_ref, last_ref = ref.selective_scan_ref(**xr, delta_softplus=True, return_last_state=True)
    _close(y, y_ref, 2e-5, "out")
    _close(last, last_ref, 2e-5, "last_state")
    g = torch.Generator().manual_seed(5)
    gy, gl = torch.randn(y_ref.shape, generator=g, dtype=torch.float64), torch.randn(last_ref.shape, generator=g,
                                                                                      dtype=torch.float64)
    ((y * gy.float().to(device)).sum() + (last * gl.float().to(device)).sum()).backward()
    ((y_ref * gy).sum() + (last_ref * gl).sum()).backward()
    for k in t:
        _close(x[k].grad, xr[k].grad, 5e-5, f"d{k}")


def test_no_grad_path_and_noncontiguous_bc(backend):
    """Inference path (no autograd, no saved states) gives the same output; B/C given as views with
    a non-unit stride along L (as sliced from x_proj's output) work without copies."""
    mod, device = backend
    t = _inputs(2, 6, 4, 29, seed=11)
    x = {k: v.float().to(device) for k, v in t.items()}
    bl = torch.cat([x["B"], x["C"]], dim=1).transpose(1, 2).contiguous().transpose(1, 2)  # (B, 2N, L), L-stride 2N
    x["B"], x["C"] = bl[:, :4], bl[:, 4:]
    assert x["B"].stride(-1) != 1
    with torch.no_grad():
        y = mod.selective_scan_triton(**x, delta_softplus=True)
    _close(y, ref.selective_scan_ref(**t, delta_softplus=True), 2e-5, "out")


# (length, groups, D/bias present, dtype)
BI_CASES = [
    (1, (0, 0), True, torch.float32),
    (17, (0, 0), True, torch.float32),
    (130, (0, 0), False, torch.float32),
    (33, (2, 2), True, torch.float32),
    (45, (0, 0), True, torch.bfloat16),
]


@pytest.mark.parametrize("case", BI_CASES, ids=lambda c: f"L{c[0]}-g{c[1][0]}-{'Db' if c[2] else 'noDb'}-"
                         f"{str(c[3]).split('.')[-1]}")
def test_bi_selective_scan(backend, case):
    mod, device = backend
    length, groups, with_extras, dtype = case
    tf = _inputs(2, 6, 3, length, groups=groups, seed=100 + length)
    tb = _inputs(2, 6, 3, length, groups=groups, seed=200 + length)
    keys = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    t = {f"{k}_f": tf[k] for k in keys} | {f"{k}_b": tb[k] for k in keys} | {"z": tf["z"]}
    if not with_extras:
        t["D_b"] = t["delta_bias_f"] = None
    order = [f"{k}_f" for k in keys] + [f"{k}_b" for k in keys] + ["z"]

    def tri(x):
        return mod.bi_selective_scan_triton(*[x[k] for k in order], delta_softplus=True)

    def want(x):
        return ref.bi_selective_scan_ref(*[x[k] for k in order], delta_softplus=True)

    low = dtype != torch.float32
    _run_both(tri, want, t, dtype, device, rtol=1e-2 if low else 2e-5, grad_rtol=2e-2 if low else 5e-5)


# VIDEOMAMBA_TRITON_* overrides: one program per sequence, one segment per tile, and a backward
# whose channel blocks differ from the forward's
SCAN_CONFIGS = [
    # one segment; the backward's preload without the split tail (both lanes doing all of a tile's tail)
    {"SEGMENTS": "1", "BWD_SPLIT_TAIL": "0"},
    # one tile per segment, the summaries walking it in tiles of 4 positions and computing the unused one too
    {"SEGMENTS": "64", "SUM_BLOCK_L": "4", "SUM_SKIP": "0"},
    # blocks of their own; the backward's split head without the preload; summaries in 32-position tiles
    {"BLOCK_D": "2", "BWD_BLOCK_D": "8", "BWD_PRELOAD": "0", "SEGMENTS": "3", "SUM_BLOCK_L": "32"},
    # the state-loop kernels one state per iteration (forward) and all states at once (backward),
    # the backward walking each tile as two sub-tiles
    {"NS": "1", "BWD_NS": "4", "BLOCK_L": "8", "BWD_SUB": "2"},
    # the previous whole-state kernels, kept selectable for same-run comparisons
    {"KERNEL": "tile3d"},
    # every state lane doing all of a tile's loads and per-position work, the backward loading each
    # tile's rows at its start (the defaults split them between the lanes and preload the rows during
    # the tile before): 10 tiles in 2 segments
    {"BWD_PRELOAD": "0", "BWD_SPLIT_TAIL": "0", "FWD_SPLIT": "0", "SEGMENTS": "2"},
    # the split tail without the split head (each lane loads the whole tile); the backward's state loop unrolled,
    # its second direction loading the first's partials of dz with each tile's rows
    {"BWD_SPLIT_HEAD": "0", "SEGMENTS": "2", "BWD_UNROLL": "1", "BWD_PRELOAD_PART": "1"},
    # the same partials (and y's, in the fused mixer's backward: test_bimamba_inner) with the defaults
    {"BWD_PRELOAD_PART": "1", "SEGMENTS": "3"},
    # the forward's four state lanes sharing its loads, softplus and output
    {"NS": "4", "BLOCK_D": "8", "BLOCK_L": "16", "BWD_BLOCK_L": "8", "SEGMENTS": "2"},
]


@pytest.mark.parametrize("env", SCAN_CONFIGS, ids=lambda e: "-".join(f"{k}{v}" for k, v in e.items()))
def test_block_and_segment_overrides(backend, env, monkeypatch):
    """Segments (summaries carry the state forward and the adjoint backward between programs)
    and backward blocks of their own give the same values and gradients as the reference."""
    for k, v in env.items():
        monkeypatch.setenv(f"VIDEOMAMBA_TRITON_{k}", v)
    test_bi_selective_scan(backend, (75, (0, 0), True, torch.float32))
    test_last_state_value_and_grad(backend, True)


def test_triton_available():
    assert sst.triton_available() == (HAS_CUDA or INTERPRET)


@pytest.mark.skipif(INTERPRET or not HAS_CUDA, reason="needs CUDA and compiled triton")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bi_realistic_shape_cuda(dtype):
    """VideoMamba-Ti-like shape (d_inner 384, N 16, L = 1 + 196*8) with the GPU block sizes."""
    mod = sst
    tf = _inputs(2, 384, 16, 1569, seed=1)
    tb = _inputs(2, 384, 16, 1569, seed=2)
    keys = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    t = {f"{k}_f": tf[k] for k in keys} | {f"{k}_b": tb[k] for k in keys} | {"z": tf["z"]}
    order = [f"{k}_f" for k in keys] + [f"{k}_b" for k in keys] + ["z"]
    low = dtype != torch.float32
    _run_both(lambda x: mod.bi_selective_scan_triton(*[x[k] for k in order]),
              lambda x: ref.bi_selective_scan_ref(*[x[k].cuda() for k in order]),
              t, dtype, torch.device("cuda"), rtol=1e-2 if low else 1e-4, grad_rtol=2e-2 if low else 2e-4)


@pytest.mark.parametrize("name,value", [("BLOCK_L", "12"), ("SEGMENTS", "0"), ("BWD_NUM_WARPS", "four"),
                                        ("SUM_BLOCK_L", "24")])
def test_bad_tuning_override_names_the_variable(backend, name, value, monkeypatch):
    mod, device = backend
    monkeypatch.setenv(f"VIDEOMAMBA_TRITON_{name}", value)
    t = _inputs(1, 4, 3, 20)
    x = {k: v.float().to(device).requires_grad_() for k, v in t.items()}
    with pytest.raises(ValueError, match=f"VIDEOMAMBA_TRITON_{name}='{value}': expected a positive integer"):
        mod.selective_scan_triton(**x, delta_softplus=True).sum().backward()


@pytest.mark.parametrize("name", ["BWD_ATOMIC", "BWD_EXP_ONCE", "BWD_DBC_SCATTER", "PREFETCH", "BWD_UNROLL", "SUM_SKIP"])
def test_bad_switch_value_names_the_variable(name, monkeypatch):
    """The on/off switches take 0 or 1; another value (``true``) is an error naming the variable,
    not a silent choice of either."""
    from videomamba.ops.triton import config

    monkeypatch.setenv(f"VIDEOMAMBA_TRITON_{name}", "true")
    with pytest.raises(ValueError, match=f"VIDEOMAMBA_TRITON_{name}='true': expected 0 or 1"):
        config.scan_config(1, 8, 4, 20, (8,), torch.device("cpu"), backward=True)
    monkeypatch.setenv(f"VIDEOMAMBA_TRITON_{name}", "0")
    config.scan_config(1, 8, 4, 20, (8,), torch.device("cpu"), backward=True)


def test_prefetch_switch(monkeypatch):
    """The sloop forward's L1 prefetch of the next tile's rows: on by default (SLOOP_PREFETCH), off
    with PREFETCH=0; the backward never prefetches (slower on an H200)."""
    from videomamba.ops.triton import config

    def resolved():
        return [config.scan_config(1, 8, 4, 20, (8,), torch.device("cpu"), backward=b)["prefetch"] for b in (False, True)]

    monkeypatch.delenv("VIDEOMAMBA_TRITON_PREFETCH", raising=False)
    assert resolved() == [config.SLOOP_PREFETCH, False]
    monkeypatch.setenv("VIDEOMAMBA_TRITON_PREFETCH", "0")
    assert resolved() == [False, False]
    monkeypatch.setenv("VIDEOMAMBA_TRITON_PREFETCH", "1")
    assert resolved() == [True, False]
    monkeypatch.setenv("VIDEOMAMBA_TRITON_KERNEL", "tile3d")
    assert resolved() == [False, False]


def _resolved(key, backward, n_state=4):
    """One entry of the scan configuration resolved for a small CPU shape (the switch tests)."""
    from videomamba.ops.triton import config

    return config.scan_config(1, 8, n_state, 20, (8,), torch.device("cpu"), backward=backward)[key]


def test_preload_switch(monkeypatch):
    """The sloop backward's next-tile loads during a tile's tail: SLOOP_BWD_PRELOAD by default (on),
    BWD_PRELOAD=1 for whole tiles only (not with BWD_SUB=2), never in the forward."""
    from videomamba.ops.triton import config

    def resolved(backward=True):
        return _resolved("preload", backward)

    monkeypatch.delenv("VIDEOMAMBA_TRITON_BWD_PRELOAD", raising=False)
    assert resolved() == config.SLOOP_BWD_PRELOAD
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_PRELOAD", "1")
    assert resolved() and not resolved(backward=False)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_SUB", "2")
    assert not resolved()
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_PRELOAD", "yes")
    with pytest.raises(ValueError, match="VIDEOMAMBA_TRITON_BWD_PRELOAD='yes': expected 0 or 1"):
        resolved()


def test_split_tail_switch(monkeypatch):
    """The backward's state lanes sharing a tile's tail: SLOOP_BWD_SPLIT_TAIL by default (on), and
    BWD_SPLIT_TAIL=1 only where it has two state lanes laid out for the reduce-scatter."""
    from videomamba.ops.triton import config

    def resolved(backward=True):
        return _resolved("split_tail", backward)

    monkeypatch.delenv("VIDEOMAMBA_TRITON_BWD_SPLIT_TAIL", raising=False)
    assert resolved() == config.SLOOP_BWD_SPLIT_TAIL
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_SPLIT_TAIL", "1")
    assert resolved() and not resolved(backward=False)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_NS", "4")
    assert not resolved()
    monkeypatch.delenv("VIDEOMAMBA_TRITON_BWD_NS")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_SPLIT_HEAD", "1")
    assert _resolved("split_head", True)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_DBC_SCATTER", "0")
    assert not resolved()
    assert not _resolved("split_head", True)


def test_fwd_split_switch(monkeypatch):
    """The forward's state lanes sharing a tile's loads and output: SLOOP_FWD_SPLIT by default (on),
    FWD_SPLIT=0 off; never in the backward; with 2 or 4 state lanes only."""
    from videomamba.ops.triton import config

    def resolved(backward=False):
        return _resolved("fwd_split", backward, n_state=16)

    monkeypatch.delenv("VIDEOMAMBA_TRITON_FWD_SPLIT", raising=False)
    assert resolved() == config.SLOOP_FWD_SPLIT and not resolved(backward=True)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_FWD_SPLIT", "0")
    assert not resolved()
    monkeypatch.setenv("VIDEOMAMBA_TRITON_FWD_SPLIT", "1")
    assert resolved()
    monkeypatch.setenv("VIDEOMAMBA_TRITON_NS", "8")
    assert not resolved()


def test_bad_kernel_name_is_named(backend, monkeypatch):
    mod, device = backend
    monkeypatch.setenv("VIDEOMAMBA_TRITON_KERNEL", "fast")
    x = {k: v.float().to(device) for k, v in _inputs(1, 4, 3, 20).items()}
    with pytest.raises(ValueError, match="VIDEOMAMBA_TRITON_KERNEL='fast': expected one of"):
        mod.selective_scan_triton(**x, delta_softplus=True)


# (BWD_ATOMIC, BWD_DBC_SCATTER, BWD_BLOCK_D, dim, groups): at the interpreter's 8-position
# backward tiles, block 2 / 8 / 16 is a reduce-scatter of 1 / 3 / 4 steps leaving each lane 8 / 2 / 1
# sums; DBC_SCATTER=0: two all-reduces (tl.sum over the channel lanes); ATOMIC=1: atomic adds
DBC_PATHS = [
    ("0", "1", "2", 8, (2, 2)),
    ("0", "1", "8", 16, (2, 2)),
    ("0", "1", "16", 16, (0, 0)),
    ("0", "1", "32", 32, (0, 0)),  # 32 lanes, 16 sums per state: 4 halvings, then one all-reduce step
    ("0", "0", "2", 8, (2, 2)),
    ("1", "1", "2", 8, (2, 2)),
]


@pytest.mark.parametrize("atomic,scatter,block_d,dim,groups", DBC_PATHS,
                         ids=lambda v: v if isinstance(v, str) else None)
def test_backward_dbc_paths_agree(backend, atomic, scatter, block_d, dim, groups, monkeypatch):
    """dB/dC by per-channel-block partials (default: plain stores + one sum, no atomics; the
    block's channels summed by a reduce-scatter across lanes, or by two all-reduces) and by atomic
    adds (VIDEOMAMBA_TRITON_BWD_ATOMIC=1): each equals the float64 reference, forward and reversed
    direction, grouped B/C and several channel blocks per group (the partial sum must not mix
    groups), N = 3 < BLOCK_N (masked states)."""
    mod, device = backend
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_ATOMIC", atomic)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_DBC_SCATTER", scatter)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_BLOCK_D", block_d)
    t = _inputs(1, dim, 3, 20, groups=groups, seed=5)  # 3 tiles of 8 positions in 3 segments
    for reverse in (False, True):
        def want(x):
            if not reverse:
                return ref.selective_scan_ref(**x, delta_softplus=True)
            x = dict(x)
            for k in ("u", "delta", "B", "C", "z"):
                x[k] = _flip(x[k])
            return ref.selective_scan_ref(**x, delta_softplus=True).flip(-1)

        _run_both(lambda x: mod.selective_scan_triton(**x, delta_softplus=True, reverse=reverse), want,
                  t, torch.float32, device, rtol=1e-4, grad_rtol=2e-4)


def test_quantized_segments_fill_the_last_wave():
    """Segment counts (H200: 132 SMs x 8 resident programs = 1056): a target whose grid fills its
    last wave is kept; otherwise the count up to it with the fullest last wave, fewer on ties;
    always whole tiles. The resolved counts at the Ti/S/M shapes are those measured best on an H200."""
    from videomamba.ops.triton.config import quantized_segments

    slots = 1056
    assert quantized_segments(96, 1569, 22, slots) == 22  # Ti 64f forward: 2112 programs, 2 full waves
    assert quantized_segments(768, 99, 3, slots) == 1  # Ti 8f forward: 3 -> 2.18 waves; 1, 2, 3 fill 0.73: fewest
    assert quantized_segments(768, 197, 6, slots) == 4  # Ti 8f backward: 6 -> 4.36 waves; 4 -> 2.91 (0.97)
    assert quantized_segments(288, 785, 8, slots) == 7  # M 64f forward: 8 -> 2.18; 7 -> 1.91 (0.95)
    assert quantized_segments(288, 1569, 15, slots) == 11  # M 64f backward: 11 -> 3.0 waves exactly
    assert quantized_segments(5000, 3, 1, slots) == 1 and quantized_segments(10, 1, 50, slots) == 1
    for base, ntiles, target in ((96, 10, 9), (7, 100, 40), (300, 37, 16)):
        n = quantized_segments(base, ntiles, target, slots)
        tps = -(-ntiles // n)
        assert 1 <= n <= max(1, target) and -(-ntiles // tps) == n  # whole tiles per segment


def test_resident_programs_and_the_backward_segments_follow_its_register_cap(monkeypatch):
    """Programs per SM from registers (65,536 per SM in 256-register units per warp; at most 64 warps,
    32 programs): the forward's 2 warps at 128 and the backward's 1 warp at 255 hold 8, a backward cap
    of 192 holds 10 and 168 holds 12. The backward's segment count fills the last wave of those slots,
    and VIDEOMAMBA_TRITON_BWD_SEGMENTS sets it for the backward alone."""
    from videomamba.ops.triton import config

    rp = config.resident_programs
    assert (rp(2, 128), rp(1, 255), rp(1, 192), rp(1, 168), rp(4, 32), rp(1, 16)) == (8, 8, 10, 12, 16, 32)
    monkeypatch.setattr(config, "_sm_count", lambda index: 132)
    monkeypatch.setattr(config, "interpreting", lambda: False)
    for var in ("KERNEL", "SEGMENTS", "BWD_SEGMENTS", "MAXNREG", "BWD_MAXNREG", "BLOCK_D", "BWD_BLOCK_D",
                "NUM_WARPS", "BWD_NUM_WARPS"):
        monkeypatch.delenv(f"VIDEOMAMBA_TRITON_{var}", raising=False)

    def segs(length=12545, batch=4):
        cuda = torch.device("cuda", 0)
        fwd = config.scan_config(batch, 384, 16, length, (384,), cuda)
        bwd = config.scan_config(batch, 384, 16, length, (384,), cuda, backward=True,
                                 block_l=fwd["BLOCK_L"] // fwd["HS_SPLIT"])
        return fwd["nseg"], bwd["nseg"], bwd["maxnreg"]

    assert segs() == (22, 44, None)  # Ti 64f: 96 x 44 = 4224 = 4 waves of 1056
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_MAXNREG", "168")  # 12 per SM: 1584 slots
    f, b, cap = segs()
    waves = 96 * b / 1584
    assert (f, cap) == (22, 168) and b <= 44 and waves / -(-waves // 1) >= 0.95 and b != 44  # 44: 2.67 waves
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_SEGMENTS", "7")
    assert segs()[:2] == (22, 7)


def test_scan_config_dbc_scatter_needs_one_warp_of_exact_lanes(monkeypatch):
    """On the GPU the reduce-scatter runs only where a backward program is one warp whose lane
    layout the CUDA tests have checked (the shuffles address lanes): config.SCATTER_BLOCKS_GPU."""
    from videomamba.ops.triton import config

    monkeypatch.setattr(config, "_sm_count", lambda index: 132)
    monkeypatch.setattr(config, "interpreting", lambda: False)
    monkeypatch.setattr(config, "LANE_LAYOUT_TRITON", (config.triton.__version__,))  # as on a checked release
    for var in ("KERNEL", "BWD_NUM_WARPS", "BWD_NS", "BWD_BLOCK_D", "BWD_ATOMIC", "BWD_DBC_SCATTER", "NUM_WARPS",
                "LANE_SHUFFLES"):
        monkeypatch.delenv(f"VIDEOMAMBA_TRITON_{var}", raising=False)

    def scatter():
        return config.scan_config(4, 384, 16, 12545, (384,), torch.device("cuda", 0), backward=True,
                                  block_l=config.SLOOP_BWD_BLOCK_L)["dbc_scatter"]

    assert config.SLOOP_BWD == (16, 2, 1) and scatter()
    for var, value in (("BWD_NUM_WARPS", "2"), ("BWD_NS", "4"), ("BWD_ATOMIC", "1"), ("BWD_DBC_SCATTER", "0"),
                       ("KERNEL", "tile3d")):
        monkeypatch.setenv(f"VIDEOMAMBA_TRITON_{var}", value)
        assert not scatter(), var
        monkeypatch.delenv(f"VIDEOMAMBA_TRITON_{var}")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_BLOCK_D", "8")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_NS", "4")
    assert not scatter()  # 4 states x 8 channels: 32 lanes, but its layout not yet checked on a GPU
    monkeypatch.setattr(config, "SCATTER_BLOCKS_GPU", frozenset({(16, 2), (8, 4)}))
    assert scatter()


def test_lane_shuffles_only_on_checked_triton_releases(monkeypatch, caplog):
    """The lane-shuffle paths address lanes, so on the GPU they run only with a Triton release whose
    tile layout the CUDA tests checked (config.LANE_LAYOUT_TRITON); with another (Triton 3.8 lays the
    positions across lanes) the layout-independent reductions run, with a warning naming the switch;
    VIDEOMAMBA_TRITON_LANE_SHUFFLES=1 forces them on. The interpreter has no lanes: always on."""
    from videomamba.ops.triton import config

    monkeypatch.setattr(config, "_sm_count", lambda index: 132)
    monkeypatch.setattr(config, "interpreting", lambda: False)
    for var in ("KERNEL", "LANE_SHUFFLES", "BWD_DBC_SCATTER", "FWD_SPLIT", "BWD_SPLIT_TAIL", "BWD_SPLIT_HEAD",
                "NS", "BWD_NS", "BLOCK_D", "BWD_BLOCK_D", "NUM_WARPS", "BWD_NUM_WARPS"):
        monkeypatch.delenv(f"VIDEOMAMBA_TRITON_{var}", raising=False)

    def paths(device=torch.device("cuda", 0)):
        fwd = config.scan_config(4, 384, 16, 12545, (384,), device)
        bwd = config.scan_config(4, 384, 16, 12545, (384,), device, backward=True, block_l=fwd["BLOCK_L"] // fwd["HS_SPLIT"])
        return fwd["fwd_split"], bwd["dbc_scatter"], bwd["split_tail"], bwd["split_head"]

    monkeypatch.setattr(config, "LANE_LAYOUT_TRITON", (config.triton.__version__,))
    assert paths() == (True, True, True, True)
    monkeypatch.setattr(config, "LANE_LAYOUT_TRITON", ("0.0.",))
    config._warn_no_shuffles.cache_clear()
    with caplog.at_level(logging.WARNING, logger=config.logger.name):
        assert paths() == (False, False, False, False)
    assert "VIDEOMAMBA_TRITON_LANE_SHUFFLES" in caplog.text
    assert paths(torch.device("cpu")) == (True, True, True, True)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_LANE_SHUFFLES", "1")
    assert paths() == (True, True, True, True)


@pytest.mark.skipif(INTERPRET or not HAS_CUDA, reason="needs CUDA and compiled triton")
def test_bi_backward_is_bitwise_deterministic_cuda():
    """Without atomics (the default) two backward passes give bit-identical gradients."""
    keys = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    tf, tb = _inputs(4, 384, 16, 3137, seed=3), _inputs(4, 384, 16, 3137, seed=4)
    args = [tf[k] for k in keys] + [tb[k] for k in keys] + [tf["z"]]
    grads = []
    for _ in range(2):
        x = [a.to("cuda", torch.bfloat16 if a.dim() == 3 else torch.float32).requires_grad_() for a in args]
        sst.bi_selective_scan_triton(*x).float().square().sum().backward()
        grads.append([a.grad.clone() for a in x])
    for i, (g1, g2) in enumerate(zip(*grads)):
        assert torch.equal(g1, g2), f"input {i}"


def test_scan_config_gpu_defaults_and_register_caps(monkeypatch):
    """The GPU launch configuration, resolved without a GPU (device properties faked): the sloop
    forward runs under SLOOP_FWD_MAXNREG, the backward uncapped; env overrides win, per pass."""
    from videomamba.ops.triton import config

    monkeypatch.setattr(config, "_sm_count", lambda index: 132)
    monkeypatch.setattr(config, "interpreting", lambda: False)
    cuda = torch.device("cuda", 0)
    for var in ("KERNEL", "MAXNREG", "BWD_MAXNREG"):
        monkeypatch.delenv(f"VIDEOMAMBA_TRITON_{var}", raising=False)

    def cfg(backward):
        return config.scan_config(4, 384, 16, 12545, (384,), cuda, backward=backward, block_l=16 if backward else None)

    assert cfg(False)["maxnreg"] == config.SLOOP_FWD_MAXNREG == 128 and cfg(True)["maxnreg"] is None
    assert cfg(False)["nseg"] > 1 and cfg(False)["BLOCK_L"] == 16
    # the forward stores its states every SLOOP_BWD_BLOCK_L = 8 positions, the backward's tiles
    assert cfg(False)["HS_SPLIT"] == 16 // config.SLOOP_BWD_BLOCK_L == 2
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_BLOCK_L", "16")
    assert cfg(False)["HS_SPLIT"] == 1
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_BLOCK_L", "4")
    with pytest.raises(ValueError, match="BWD_BLOCK_L=4"):
        cfg(False)
    monkeypatch.delenv("VIDEOMAMBA_TRITON_BWD_BLOCK_L")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BLOCK_L", "32")  # the default backward tile is then half of it
    assert cfg(False)["HS_SPLIT"] == 2
    monkeypatch.delenv("VIDEOMAMBA_TRITON_BLOCK_L")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_MAXNREG", "96")
    assert cfg(False)["maxnreg"] == cfg(True)["maxnreg"] == 96
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_MAXNREG", "255")
    assert (cfg(False)["maxnreg"], cfg(True)["maxnreg"]) == (96, 255)
    monkeypatch.delenv("VIDEOMAMBA_TRITON_MAXNREG")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_KERNEL", "tile3d")
    assert cfg(False)["maxnreg"] is None


def _write_rows(buf, t):
    """t (..., L) as the first L columns of a copy of buf (..., pitch): its other columns keep buf's
    values (differentiable: the gradient reaches t)."""
    out = buf.clone()
    out[..., :t.shape[-1]] = t
    return out[..., :t.shape[-1]]


def _bi_case(length, seed, pad_to=0, dtype=torch.float32, device="cpu"):
    """Inputs of a bidirectional case and functions running it on Triton and on the reference; with
    ``pad_to``, Triton gets B and C as the first L columns of NaN-padded rows of that pitch."""
    tf = _inputs(2, 6, 4, length, seed=seed)
    tb = _inputs(2, 6, 4, length, seed=seed + 1)
    keys = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    t = {f"{k}_f": tf[k] for k in keys} | {f"{k}_b": tb[k] for k in keys} | {"z": tf["z"]}
    order = [f"{k}_f" for k in keys] + [f"{k}_b" for k in keys] + ["z"]

    def tri(x):
        x = dict(x)
        if pad_to:
            for k in ("B_f", "C_f", "B_b", "C_b"):
                pad = torch.full((*x[k].shape[:-1], pad_to), float("nan"), dtype=dtype, device=device)
                x[k] = _write_rows(pad, x[k])
        return sst.bi_selective_scan_triton(*[x[k] for k in order], delta_softplus=True)

    def want(x):
        return ref.bi_selective_scan_ref(*[x[k] for k in order], delta_softplus=True)
    return t, tri, want


@pytest.mark.parametrize("dtype,segments", [(torch.float32, "2"), (torch.bfloat16, "3"), (torch.float16, "1")],
                         ids=lambda v: str(v).split(".")[-1])
def test_bc_vector_loads(backend, dtype, segments, monkeypatch):
    """B and C rows that are 16-byte aligned and a whole number of vectors long are loaded 16 bytes
    at a time by the sloop kernels (``bc_vec_width``: 4 fp32 or 8 bf16 / fp16 positions per load),
    both directions' values and gradients matching the reference; rows whose padding would be read
    (L not a multiple of the vector, padding NaN here: the caller cannot vouch for it) take the
    scalar loads, and nothing of the padding leaks in (the switch: ``test_bc_vec_width_checks_every_row``)."""
    _mod, device = backend
    if dtype == torch.float16 and device.type == "cpu":
        pytest.skip("fp16 differs from bf16 only in the compiled PTX (CUDA)")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_SEGMENTS", segments)
    launch = importlib.import_module("videomamba.ops.triton.launch")
    vec = 16 // torch.tensor([], dtype=dtype).element_size()
    low = dtype != torch.float32
    tol = dict(rtol=1e-2 if low else 2e-5, grad_rtol=2e-2 if low else 5e-5)
    for length, pad_to, want_vec in ((48, 0, vec), (45, 48, 0)):
        t, tri, want = _bi_case(length, 300 + length, pad_to, dtype, device)
        _run_both(tri, want, t, dtype, device, **tol)
        assert (launch.LAST_LAUNCH["fwd_bc_vec"], launch.LAST_LAUNCH["bwd_bc_vec"]) == (want_vec, want_vec), length


def test_bc_vec_width_checks_every_row(monkeypatch):
    """The vector width is 0 unless every B / C row of both directions is 16-byte aligned, contiguous,
    readable to L rounded up to the vector, and either a whole number of vectors or vouched finite
    past L; the dtype sets the width."""
    launch = importlib.import_module("videomamba.ops.triton.launch")
    config = importlib.import_module("videomamba.ops.triton.config")
    monkeypatch.setattr(launch, "interpreting", lambda: True)
    cfg = config.scan_config(2, 8, 4, 21, (8, 8), torch.device("cpu"))

    def width(B, C=None, length=21, finite=True, tiles=(16, 8), dtype=torch.bfloat16):
        u = torch.zeros(2, 8, length, dtype=dtype)
        A = torch.zeros(8, 4)
        C = B if C is None else C
        d = launch.ScanDir(u, u, A, B, C, None, None, bc_pad_finite=finite)
        return launch.bc_vec_width([d, d], length, cfg, tiles)

    buf = torch.zeros(2, 20, 24, dtype=torch.bfloat16)
    assert width(buf[:, 4:8, :21]) == 8  # rows at pitch 24, 8 elements (16 bytes) apart
    assert width(buf[:, 4:8, :21], finite=False) == 0  # the padding read past L may hold anything
    assert width(buf[:, 4:8, :16], length=16, finite=False) == 8  # a whole number of vectors: no padding read
    assert width(buf[:, 4:8, 1:22]) == 0  # rows start 2 bytes past a 16-byte boundary
    assert width(torch.zeros(2, 24, 20, dtype=torch.bfloat16).transpose(1, 2)[:, 4:8, :21]) == 0  # L-stride 20
    assert width(torch.zeros(2, 4, 21, dtype=torch.bfloat16)) == 0  # pitch 21
    assert width(buf[:, 16:20, :21]) == 8
    assert width(torch.zeros(2, 20, 24, dtype=torch.bfloat16)[:, 16:20, 3:24], length=21) == 0  # misaligned
    tail = torch.zeros(2 * 20 * 24 - 3, dtype=torch.bfloat16)  # the last row's padding cut off
    assert width(tail.as_strided((2, 4, 21), (480, 24, 1), 16 * 24)) == 0
    assert width(buf[:, 4:8, :21], tiles=(16, 4)) == 0  # a 4-position tile is half a vector
    f32 = torch.zeros(2, 20, 24)
    assert width(f32[:, 4:8, :21], dtype=torch.float32) == 4
    assert width(f32[:, 4:8, :21], buf[:, 4:8, :21]) == 0  # mixed dtypes
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BC_VEC", "0")
    assert width(buf[:, 4:8, :21]) == 0
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BC_VEC", "yes")
    with pytest.raises(ValueError, match="VIDEOMAMBA_TRITON_BC_VEC"):
        width(buf[:, 4:8, :21])
