"""Both BiMamba directions after in_proj as one op: the Triton form that recomputes the conv and
projections in the backward (saving only xz, the weights and the scan's tile states) against the
composed form, values and every gradient, fp32 and under bf16 autocast; and what each saves."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")
from videomamba.modules import BiMamba  # noqa: E402
from videomamba.ops import bimamba_inner_fn  # noqa: E402
from videomamba.ops.triton import BiMambaInnerTriton, BiMambaTriton, triton_available  # noqa: E402
from videomamba.ops.triton.runtime import INTERPRET  # noqa: E402

pytestmark = pytest.mark.skipif(not triton_available(), reason="triton needs CUDA or TRITON_INTERPRET=1")
DEVICE = "cpu" if INTERPRET else "cuda"


def _inputs(batch=2, d_inner=8, n=4, length=37, dt_rank=2, k=4, seed=0):
    """xz and per-direction params (conv_w, conv_b, x_proj_w, dt_proj_w, A, D, delta_bias), leaves."""
    g = torch.Generator().manual_seed(seed)

    def r(*s, scale=1.0):
        return (torch.randn(*s, generator=g) * scale).to(DEVICE).requires_grad_()

    xz = r(batch, 2 * d_inner, length)
    dirs = []
    for _ in range(2):
        A = (-(0.5 + torch.rand(d_inner, n, generator=g))).to(DEVICE).requires_grad_()
        dirs.append((r(d_inner, 1, k, scale=0.5), r(d_inner, scale=0.1), r(dt_rank + 2 * n, d_inner, scale=0.5),
                     r(d_inner, dt_rank, scale=0.5), A, r(d_inner), r(d_inner, scale=0.3)))
    return xz, dirs


def _values_and_grads(xz, dirs, recompute, autocast=False):
    with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
        y = bimamba_inner_fn(xz, dirs[0], dirs[1], backend="triton", recompute=recompute)
    leaves = [xz, *dirs[0], *dirs[1]]
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(9)).to(DEVICE)
    grads = torch.autograd.grad((y.float() * w).sum(), leaves)
    return y, grads, y.grad_fn


NAMES = ["xz"] + [f"{n}_{d}" for d in "fb" for n in ("conv_w", "conv_b", "x_proj_w", "dt_proj_w", "A", "D", "bias")]


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_recompute_matches_composed(autocast):
    xz, dirs = _inputs()
    y, g, fn = _values_and_grads(xz, dirs, recompute=None, autocast=autocast)  # the default picks recompute
    y_ref, g_ref, fn_ref = _values_and_grads(xz, dirs, recompute=False, autocast=autocast)
    assert type(fn).__name__ == "BiMambaInnerTritonBackward" and type(fn_ref).__name__ != type(fn).__name__
    assert y.dtype == y_ref.dtype == (torch.bfloat16 if autocast else torch.float32)
    tol = 2e-2 if autocast else 1e-5
    scale = y_ref.float().abs().max()
    assert (y.float() - y_ref.float()).abs().max() <= tol * scale
    for name, a, b in zip(NAMES, g, g_ref):
        assert a is not None and a.shape == b.shape and a.dtype == b.dtype, name
        err = (a.float() - b.float()).abs().max()
        assert err <= tol * (b.float().abs().max() + 1e-6), f"d{name}: {err:.3e}"


def _saved_bytes(fn) -> int:
    """Bytes of the distinct storages autograd saves while ``fn()`` runs."""
    seen: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_recompute_saves_less_and_module_uses_it(monkeypatch):
    xz, dirs = _inputs(d_inner=16, length=64)
    params = [tuple(p.detach() for p in d) for d in dirs]  # weights are parameters, not activations
    xz_leaf = xz.detach().requires_grad_()
    saved = {r: _saved_bytes(lambda r=r: bimamba_inner_fn(xz_leaf, *params, backend="triton", recompute=r))
             for r in (True, False)}
    batch, _, length = xz.shape
    act = xz.numel() * xz.element_size() // 2  # one (B, d_inner, L) tensor
    from videomamba.ops.triton.config import scan_config

    cfg = scan_config(batch, 16, 4, length, (16, 16), xz.device)
    every = cfg["BLOCK_L"] // cfg["HS_SPLIT"]  # the forward stores a state every `every` positions
    tile_states = 2 * batch * 16 * -(-length // every) * 4 * 4  # fp32 (N,) state per direction, (b, d)
    weights = sum(p.numel() * p.element_size() for d in params for p in d)
    # recompute: xz (2 activations), tile states, weights; composed: conv in/out, deltas, z, scan inputs, ...
    assert saved[True] <= 2 * act + tile_states + weights, (saved, act, tile_states, weights)
    assert saved[False] >= 6 * act and saved[True] < 0.5 * saved[False], (saved, act)

    calls = []
    apply = BiMambaTriton.apply
    monkeypatch.setattr(BiMambaTriton, "apply", lambda *a: calls.append(len(a)) or apply(*a))
    m = BiMamba(8, d_state=4, backend="triton").to(DEVICE)
    h = torch.randn(2, 20, 8, device=DEVICE, requires_grad=True)
    y = m(h)
    assert calls == [20]  # the mixer is one recomputing function (in_proj .. out_proj, ops.bimamba_fn)
    with torch.no_grad():
        m(h)  # nothing to save without autograd: the composed form
    assert calls == [20]
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_recompute_needs_triton_and_no_index():
    xz, dirs = _inputs()
    with pytest.raises(ValueError, match="recompute=True needs backend 'triton'"):
        bimamba_inner_fn(xz, dirs[0], dirs[1], backend="torch", recompute=True)
    with pytest.raises(ValueError, match="index_b set"):
        bimamba_inner_fn(xz, dirs[0], dirs[1], backend="triton", recompute=True, index_b=torch.arange(37))


def test_checkpointed_block_does_not_recompute_twice(monkeypatch):
    """A block that checkpoints its mixer asks it not to recompute inside as well; values and
    gradients are those of the plain (recomputing) mixer."""
    from videomamba.modules.block import Block

    calls = []
    apply = BiMambaTriton.apply
    monkeypatch.setattr(BiMambaTriton, "apply", lambda *a: calls.append(len(a)) or apply(*a))
    torch.manual_seed(0)
    blk = Block(8, BiMamba(8, d_state=4, backend="triton")).to(DEVICE)
    x = torch.randn(2, 20, 8, device=DEVICE)
    out = {}
    for ckpt in (False, True):
        h = x.clone().requires_grad_()
        y = blk.mix(h, None, use_checkpoint=ckpt)
        grads = torch.autograd.grad(y.square().sum(), [h, *blk.mixer.parameters()])
        out[ckpt] = (y, grads)
    assert calls == [20]  # the plain call only
    torch.testing.assert_close(out[True][0], out[False][0], rtol=1e-5, atol=1e-6)
    for a, b in zip(out[True][1], out[False][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_mixer_padded_rows(monkeypatch, autocast=False, save_states=False):
    """BiMambaTriton with its (B, C, L) activations in rows padded to a multiple of 8 (what CUDA
    gets; here forced on the CPU, L = 21 -> 24): the pad columns stay out of every result, so the
    values and every gradient match the unpadded composed ops to rounding (fp32; the bf16 and
    kept-states forms share this code and are compared bitwise unpadded in test_saved_activations)."""
    from videomamba.modules import BiMamba
    from videomamba.ops import bimamba_fn
    from videomamba.ops.triton import bimamba_inner as tb

    monkeypatch.setitem(tb.ROW_ALIGN, DEVICE, 8)
    assert tb.row_pitch(21, torch.device(DEVICE)) == 24 and tb.row_pitch(24, torch.device(DEVICE)) == 24
    torch.manual_seed(0)
    m = BiMamba(8, d_state=4, backend="triton", bias=True).to(DEVICE)
    with torch.no_grad():
        m.out_proj.weight.normal_()
        m.in_proj.bias.normal_()  # the pad columns of xz hold the bias: it must not leak into anything
    h = torch.randn(1, 21, 8, device=DEVICE, requires_grad=True)
    cot = torch.randn(1, 21, 8, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    res = {}
    for fused in (True, False):
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
            y = (bimamba_fn(h, m.in_proj.weight, m.in_proj.bias, m._direction_params(False), m._direction_params(True),
                            m.out_proj.weight, m.out_proj.bias, save_states=save_states)
                 if fused else m(h, recompute=False))
        res[fused] = (y, torch.autograd.grad((y.float() * cot).sum(), [h, *m.parameters()]))
        if fused:  # the scan loaded B and C 16 bytes at a time, reading x_proj's pad columns (zero)
            from videomamba.ops.triton.config import LAST_LAUNCH
            vec = 8 if autocast else 4
            assert (LAST_LAUNCH["fwd_bc_vec"], LAST_LAUNCH["bwd_bc_vec"]) == (vec, vec)
    tol = dict(rtol=2e-2, atol=2e-2) if autocast else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(res[True][0].float(), res[False][0].float(), **tol)
    for name, a, b in zip(["input"] + [n for n, _ in m.named_parameters()], res[True][1], res[False][1]):
        assert a.dtype == b.dtype, name
        scale = b.abs().max().item() + 1e-6
        torch.testing.assert_close(a / scale, b / scale, **tol, msg=f"d{name}")


def test_fused_mixer_padded_rows_bf16_recompute_no_preload(monkeypatch):
    """The same with the backward loading each tile's rows at its start and both state lanes doing
    all of its tail (VIDEOMAMBA_TRITON_BWD_PRELOAD=0, BWD_SPLIT_TAIL=0; the defaults preload them
    during the tile before and split the tail's dz, y and partials between the lanes); one segment,
    so each program walks several tiles."""
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_PRELOAD", "0")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_SPLIT_TAIL", "0")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_SEGMENTS", "1")
    test_fused_mixer_padded_rows(monkeypatch, autocast=True, save_states=False)


def test_fused_mixer_padded_rows_bf16_recompute_no_split_head(monkeypatch):
    """The same with each of the backward's state lanes loading and preparing all of a tile's rows
    (VIDEOMAMBA_TRITON_BWD_SPLIT_HEAD=0; the default shares them, taking z's gate, dz and y from
    the lane's own half) and every forward state lane doing all of a tile (FWD_SPLIT=0; the default
    shares the loads and the gated output of both directions, and the states-only re-run's loads)."""
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_SPLIT_HEAD", "0")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_FWD_SPLIT", "0")
    monkeypatch.setenv("VIDEOMAMBA_TRITON_SEGMENTS", "1")
    test_fused_mixer_padded_rows(monkeypatch, autocast=True, save_states=False)


def test_fused_mixer_rerun_reuses_segment_summaries(monkeypatch):
    """BiMambaTriton's backward re-runs the forward scan kernel but not its segment-summary launch:
    the forward keeps the summaries (a few per (batch, channel)); the gradients are the composed
    ones (test_saved_activations checks them bitwise), so only the launches are counted here."""
    from videomamba.ops.triton import launch

    class _Counted:  # counts the summary launches of the forward kernel
        def __init__(self, kernel):
            self.kernel, self.summary = kernel, 0

        def __getitem__(self, grid):
            fn = self.kernel[grid]

            def call(*args, **kw):
                self.summary += bool(kw.get("SUMMARY"))
                return fn(*args, **kw)
            return call

    counted = _Counted(launch.selective_scan_fwd_kernel)
    monkeypatch.setattr(launch, "selective_scan_fwd_kernel", counted)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_SEGMENTS", "2")  # segments at this length on the GPU too
    torch.manual_seed(0)
    m = BiMamba(8, d_state=4, backend="triton").to(DEVICE)
    h = torch.randn(1, 40, 8, device=DEVICE, requires_grad=True)
    assert launch.scan_config(1, 16, 4, 40, (16, 16), h.device)["nseg"] > 1  # segments, so summaries
    y = m(h)
    assert counted.summary == 1
    y.sum().backward()
    assert counted.summary == 1 and h.grad is not None


def test_fused_mixer_padded_rows_bf16_recompute(monkeypatch):
    """The padded-rows comparison under bf16 autocast with the recomputing backward: its forward
    re-run stores states alone and the backward kernel writes out_proj's input (bf16, through the
    first direction's fp32 partial)."""
    test_fused_mixer_padded_rows(monkeypatch, autocast=True, save_states=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_backward_kernel_writes_forward_output(dtype):
    """scan_bwd's ``y_out``: the bidirectional gated output written by the backward kernel from
    the states of a ``states_only`` forward equals the forward kernel's own output (to the
    rounding of the two kernels' tile sizes: fp32 sums, then one rounding to the dtype)."""
    from videomamba.ops.triton.launch import ScanDir, scan_bwd, scan_fwd

    g = torch.Generator().manual_seed(0)
    batch, dim, n, length = 2, 8, 4, 37

    def r(*s, scale=1.0, dt=dtype):
        return (torch.randn(*s, generator=g) * scale).to(DEVICE, dt)

    dirs = [ScanDir(r(batch, dim, length), r(batch, dim, length, scale=0.5),
                    (-(0.5 + torch.rand(dim, n, generator=g))).to(DEVICE), r(batch, n, length), r(batch, n, length),
                    r(dim, dt=torch.float32), r(dim, scale=0.3, dt=torch.float32)) for _ in range(2)]
    z = r(batch, dim, length)
    out, _hs, _last, _cfg = scan_fwd(dirs, z, True, False, store_states=False, return_last=False)
    none, hss, _last, cfg = scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True)
    assert none is None
    y = torch.full_like(out, float("nan"))
    scan_bwd(dirs, z, hss, r(batch, dim, length), None, True, False, cfg, y_out=y)
    scale = out.float().abs().max().item()
    tol = dict(rtol=0, atol=1e-5 * scale) if dtype == torch.float32 else dict(rtol=2 ** -7, atol=2 ** -8 * scale)
    torch.testing.assert_close(y.float(), out.float(), **tol)


def test_backward_partials_loaded_with_the_rows(monkeypatch):
    """VIDEOMAMBA_TRITON_BWD_PRELOAD_PART=1: the backward's second direction loads the first direction's fp32
    partials of dz and y with each tile's rows instead of at its tail; dz, y and every gradient are bitwise
    those of the default (the same sums in the same order), with ``y_out`` (the fused mixer's backward) and
    without."""
    from videomamba.ops.triton.launch import ScanDir, scan_bwd, scan_fwd

    g = torch.Generator().manual_seed(3)
    batch, dim, n, length = 2, 8, 4, 45

    def r(*s, scale=1.0, dt=torch.float32):
        return (torch.randn(*s, generator=g) * scale).to(DEVICE, dt)

    dirs = [ScanDir(r(batch, dim, length), r(batch, dim, length, scale=0.5),
                    (-(0.5 + torch.rand(dim, n, generator=g))).to(DEVICE), r(batch, n, length), r(batch, n, length),
                    r(dim), r(dim, scale=0.3)) for _ in range(2)]
    z, dout = r(batch, dim, length), r(batch, dim, length)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_SEGMENTS", "2")
    _none, hss, _last, cfg = scan_fwd(dirs, z, True, False, store_states=True, return_last=False, states_only=True)
    res = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_PRELOAD_PART", flag)
        for with_y in (False, True):
            y = torch.full_like(z, float("nan")) if with_y else None
            gbuf, dz = scan_bwd(dirs, z, hss, dout, None, True, False, cfg, y_out=y)
            grads = [t for per in gbuf.grads([d.B4 for d in dirs], [d.C4 for d in dirs]) for t in per if t is not None]
            res[flag, with_y] = [dz, *grads] + ([y] if with_y else [])
    for with_y in (False, True):
        assert all(torch.equal(a, b) for a, b in zip(res["0", with_y], res["1", with_y]))
