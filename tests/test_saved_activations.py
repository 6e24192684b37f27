"""Issue 15's memory target: what a training forward saves for its backward, per block.

The fused add + RMSNorm saves only the fp32 residual (float64 gradcheck against the composed
reference); the BiMamba mixer on ``triton`` is one op that saves only its input
(``ops.bimamba_fn``), with the gradients of the composed ops; and a tiny VideoMamba's blocks keep
at most ~2.3 activations of (B, L, D) each (counted with ``bench.saved_activations``)."""

from __future__ import annotations

import pytest
import torch

from videomamba.bench.saved_activations import count_saved, scale
from videomamba.modules.norm import add_rms_norm, add_rms_norm_ref


@pytest.mark.parametrize("first", [False, True], ids=["add", "start"])
def test_add_rms_norm_fused_gradcheck_and_saves_residual_only(first):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64, generator=g).requires_grad_()
    res = None if first else torch.randn(2, 5, 8, dtype=torch.float64, generator=g).requires_grad_()
    w = (1 + torch.randn(8, dtype=torch.float64, generator=g)).requires_grad_()

    def both(x, res, w):  # out and residual both carry gradients (the next block adds to the residual)
        out, r = add_rms_norm(x, res, w, 1e-5)
        return out, r

    inputs = (x, res, w) if not first else (x, w)
    fn = both if not first else (lambda x, w: both(x, None, w))
    assert torch.autograd.gradcheck(fn, inputs)
    # gradients equal the composed reference's, and values are bitwise those of the reference
    out, r = add_rms_norm(x, res, w)
    ref_out, ref_r = add_rms_norm_ref(x, res, w)
    assert torch.equal(out, ref_out) and torch.equal(r, ref_r)
    cot = torch.randn(out.shape, dtype=out.dtype, generator=g), torch.randn(r.shape, dtype=r.dtype, generator=g)
    ga = torch.autograd.grad((out * cot[0]).sum() + (r * cot[1]).sum(), inputs)
    gb = torch.autograd.grad((ref_out * cot[0]).sum() + (ref_r * cot[1]).sum(), inputs)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # bf16 activations, fp32 residual stream: bitwise the reference's output
    xb = torch.randn(2, 5, 8, generator=g).bfloat16().requires_grad_()
    rb = torch.randn(2, 5, 8, generator=g).requires_grad_()
    wb = torch.randn(8, generator=g).requires_grad_()
    assert all(torch.equal(a, b) for a, b in zip(add_rms_norm(xb, rb, wb), add_rms_norm_ref(xb, rb, wb)))
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        add_rms_norm(xb, rb, wb)
    # the fp32 residual (B, L, D) + rstd (B, L, 1); the weight is a parameter (same storage)
    assert sum(v for p, v in seen.items() if p != wb.untyped_storage().data_ptr()) == 2 * 5 * 8 * 4 + 2 * 5 * 4


def test_scale_fits_a_plus_bl():
    assert scale({"x": 10 + 3 * 5}, {"x": 10 + 3 * 9}, 5, 9, 100, batch=4) == {"x": 10 + 4 * 3 * 100}


def _triton():
    pytest.importorskip("triton")
    from videomamba.ops.triton import triton_available
    from videomamba.ops.triton.runtime import INTERPRET

    if not triton_available():
        pytest.skip("triton needs CUDA or TRITON_INTERPRET=1")
    return "cpu" if INTERPRET else "cuda"


@pytest.mark.parametrize("autocast,save_states", [(False, False), (True, True)], ids=["fp32", "bf16-states"])
def test_fused_mixer_matches_composed(autocast, save_states, monkeypatch):
    """BiMambaTriton (in_proj, both directions, out_proj; recomputing or keeping the scan's
    states) against the composed ops of the same mixer: same values, same gradients of the
    input and of every parameter (bitwise: the same kernels run on the same recomputed inputs;
    rows unpadded, as on the CPU: tests/test_bimamba_inner.py checks the padded rows of CUDA)."""
    from videomamba.modules import BiMamba
    from videomamba.ops import bimamba_fn
    from videomamba.ops.triton import bimamba_inner as tb

    device = _triton()
    monkeypatch.setitem(tb.ROW_ALIGN, device, 1)
    torch.manual_seed(0)
    m = BiMamba(8, d_state=4, backend="triton").to(device)
    with torch.no_grad():
        m.out_proj.weight.normal_()  # the published init scales it down; any weight will do
    h = torch.randn(1, 21, 8, device=device, requires_grad=True)
    cot = torch.randn(1, 21, 8, generator=torch.Generator().manual_seed(1)).to(device)
    res = {}
    for fused in (True, False):
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            if fused:
                y = bimamba_fn(h, m.in_proj.weight, m.in_proj.bias, m._direction_params(False),
                               m._direction_params(True), m.out_proj.weight, m.out_proj.bias, save_states=save_states)
            else:
                y = m(h, recompute=False)
        assert type(y.grad_fn).__name__ == ("BiMambaTritonBackward" if fused else "_ProjectionBackward")
        res[fused] = (y, torch.autograd.grad((y.float() * cot).sum(), [h, *m.parameters()]))
    assert res[True][0].dtype == (torch.bfloat16 if autocast else torch.float32)
    assert torch.equal(res[True][0], res[False][0])
    names = ["input"] + [n for n, _ in m.named_parameters()]
    for name, a, b in zip(names, res[True][1], res[False][1]):
        assert a.dtype == b.dtype, name
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=f"d{name}")


def test_videomamba_block_saves_residual_and_input_only():
    """Training forward of a tiny VideoMamba on triton under bf16 autocast: a block keeps its fp32
    residual, one rstd per token and the mixer's bf16 input, (4 + 2) B L D + 4 B L bytes, plus
    A = -exp(A_log) of both directions (length-independent). Before: ~19 B L D (residual and normalised product in
    fp32, in_proj's input, xz, two directions' fp32 tile states, out_proj's input)."""
    import videomamba
    from videomamba.ops.triton.config import scan_config

    device = _triton()
    torch.manual_seed(0)
    dim, d_state, frames, img = 16, 4, 2, 32
    model = videomamba.create_model("videomamba_tiny", embed_dim=dim, depth=3, d_state=d_state, num_frames=frames,
                                    img_size=img, num_classes=5, drop_path_rate=0.0, backend="triton").to(device)
    video = torch.randn(1, 3, frames, img, img, device=device)

    def run():
        with torch.autocast(device, dtype=torch.bfloat16):
            model(video)

    saved = count_saved(model, run)
    tokens = 1 + frames * (img // 16) ** 2
    a_bytes = 2 * 2 * (2 * dim) * d_state * 4  # per direction A = -exp(A_log) and exp's saved output
    # the scan's segment summaries (fp32 state + delta sum per direction, channel, segment), for the
    # backward's forward re-run: a few segments, independent of L on the GPU (ops/triton/config.py)
    nseg = scan_config(1, 2 * dim, d_state, tokens, (2 * dim,) * 2, torch.device(device))["nseg"]
    summ_bytes = 2 * (2 * dim) * nseg * (d_state + 1) * 4 if nseg > 1 else 0
    bound = (4 + 2) * tokens * dim + 4 * tokens + a_bytes + summ_bytes
    for i in (1, 2):
        per_block = sum(saved.block(i).values())
        assert per_block <= bound, (i, per_block, bound, dict(saved.block(i)))


@pytest.mark.gpu
def test_add_rms_norm_on_cuda_uses_the_fused_kernels_and_matches_the_reference(gpu):
    """On CUDA the fused add + RMSNorm runs torch's fused RMSNorm kernels (forward and backward);
    bf16 activations on an fp32 residual stream, as in training: values and every gradient as the
    composed reference's, to fp32 rounding."""
    from torch.profiler import ProfilerActivity, profile

    g = torch.Generator(device=gpu).manual_seed(0)
    x = torch.randn(4, 197, 192, device=gpu, generator=g).bfloat16().requires_grad_()
    res = torch.randn(4, 197, 192, device=gpu, generator=g).requires_grad_()
    w = (1 + 0.1 * torch.randn(192, device=gpu, generator=g)).requires_grad_()
    cot = torch.randn(4, 197, 192, device=gpu, generator=g), torch.randn(4, 197, 192, device=gpu, generator=g)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out, r = add_rms_norm(x, res, w)
        ga = torch.autograd.grad((out.float() * cot[0]).sum() + (r * cot[1]).sum(), (x, res, w))
    names = {e.key for e in prof.key_averages()}
    assert {"aten::_fused_rms_norm", "aten::_fused_rms_norm_backward"} <= names
    ref_out, ref_r = add_rms_norm_ref(x, res, w)
    gb = torch.autograd.grad((ref_out.float() * cot[0]).sum() + (ref_r * cot[1]).sum(), (x, res, w))
    assert torch.equal(r, ref_r)
    torch.testing.assert_close(out, ref_out, rtol=1e-2, atol=1e-2)  # bf16 output: one rounding step
    assert (out.float() - ref_out.float()).abs().gt(0).float().mean() < 0.01  # ... on at most 1% of elements
    torch.testing.assert_close(ga[0], gb[0], rtol=1e-2, atol=1e-2)  # bf16, as the output
    for a, b in zip(ga[1:], gb[1:]):  # fp32: the residual's and the weight's gradients
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
