"""Linear projections into, across and out of the mixer's channel-major layout (B, C, L), as
batched GEMMs with the weight broadcast over the batch (batch stride 0), so that neither the
forward nor the backward copies an activation to change its layout.

``torch.matmul(weight, x)`` with x (B, I, L) folds batch and length into one GEMM and so first
copies x transposed to (B, L, I), and its backward copies the gradient again; ``F.linear`` on a
(B, C, L) tensor viewed as (B, L, C) does the same. On VideoMamba-Ti at 64 frames these copies
were about 60 ms of a 380 ms training step on an H200 (benchmarks/README.md, issue 15).

* :func:`channel_linear`: (B, I, L) -> (B, O, L) (``x_proj``, ``dt_proj``);
* :func:`linear_to_bdl`: (B, L, I) -> (B, O, L) (``in_proj``);
* :func:`linear_from_bdl`: (B, I, L) -> (B, L, O) (``out_proj``).

Under autocast the GEMMs run in the autocast dtype, as ``F.linear`` would; gradients come back in
the inputs' dtypes. Each also has explicit ``*_grads`` functions for fused autograd functions
that write their own backward (:class:`videomamba.ops.triton.BiMambaTriton`).
"""

from __future__ import annotations

import torch

__all__ = ["channel_linear", "linear_to_bdl", "linear_from_bdl", "linear_to_bdl_grads", "linear_from_bdl_grads",
           "linear_from_bdl_input_grad", "linear_from_bdl_weight_grads", "channel_linear_fwd", "channel_linear_grads", "linear_to_bdl_fwd", "linear_from_bdl_fwd", "weight_grad",
           "acc_dtype", "gemm_dtype"]


def gemm_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the projections' GEMMs run in: the autocast dtype when autocast is on for the
    tensors' device, else the promoted dtype of the tensors."""
    dev = tensors[0].device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype of the batch sums: at least fp32."""
    return torch.promote_types(dtype, torch.float32)


def _no_autocast(dev: str):
    return torch.autocast(dev, enabled=False)


SMALL_BATCH = 16  # below it, weight gradients run one GEMM per clip (see weight_grad)


def weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_b g[b] @ x[b]^T for g (B, O, L), x (B, I, L) -> (O, I) in at least fp32. The length is
    the GEMM's reduction: with few clips and long sequences (B 4, L 12545 at 64 frames) one
    batched GEMM has a handful of output tiles per clip and ran 6x slower than the copies it
    replaced (H200, 2026-12-01), while a plain GEMM per clip gets cuBLAS's split-K kernels."""
    acc = acc_dtype(g.dtype)
    if g.shape[0] < SMALL_BATCH:
        dw = torch.mm(g[0], x[0].t()).to(acc)
        for b in range(1, g.shape[0]):
            dw += torch.mm(g[b], x[b].t())
        return dw
    return torch.bmm(g, x.transpose(1, 2)).sum(0, dtype=acc)


def linear_to_bdl_fwd(x, weight, bias=None):
    """x (B, L, I), weight (O, I), bias (O,) or None -> (B, O, L) contiguous, in the GEMM dtype
    (the autocast dtype, or the promoted input dtype)."""
    dt = gemm_dtype(x, weight)
    with _no_autocast(x.device.type):
        w = weight.to(dt)
        y = torch.bmm(w.expand(x.shape[0], -1, -1), x.to(dt).transpose(1, 2))
        if bias is not None:
            y += bias.to(dt)[:, None]
    return y


def linear_to_bdl_grads(g, x, weight, bias_needed: bool):
    """Gradients of :func:`linear_to_bdl_fwd` for g (B, O, L): (dx (B, L, I) contiguous,
    dweight (O, I) summed over the batch in at least fp32, dbias (O,) or None), in g's dtype for dx."""
    with _no_autocast(g.device.type):
        dt = g.dtype
        dx = torch.bmm(g.transpose(1, 2), weight.to(dt).expand(g.shape[0], -1, -1))
        dw = weight_grad(g, x.to(dt).transpose(1, 2))
        db = g.sum((0, 2), dtype=acc_dtype(dt)) if bias_needed else None
    return dx, dw, db


def linear_from_bdl_fwd(y, weight, bias=None):
    """y (B, I, L), weight (O, I), bias (O,) or None -> (B, L, O) contiguous, in the GEMM dtype."""
    dt = gemm_dtype(y, weight)
    with _no_autocast(y.device.type):
        w = weight.to(dt)
        out = torch.bmm(y.to(dt).transpose(1, 2), w.t().expand(y.shape[0], -1, -1))
        if bias is not None:
            out += bias.to(dt)
    return out


def linear_from_bdl_grads(g, y, weight, bias_needed: bool):
    """Gradients of :func:`linear_from_bdl_fwd` for g (B, L, O): (dy (B, I, L) contiguous,
    dweight (O, I) summed over the batch in at least fp32, dbias (O,) or None), dy in g's dtype."""
    return (linear_from_bdl_input_grad(g, weight), *linear_from_bdl_weight_grads(g, y, bias_needed))


def linear_from_bdl_input_grad(g, weight):
    """dy (B, I, L) contiguous in g's dtype of :func:`linear_from_bdl_fwd` for g (B, L, O)."""
    with _no_autocast(g.device.type):
        return torch.bmm(weight.to(g.dtype).t().expand(g.shape[0], -1, -1), g.transpose(1, 2))


def linear_from_bdl_weight_grads(g, y, bias_needed: bool):
    """(dweight (O, I) summed over the batch in at least fp32, dbias (O,) or None) of
    :func:`linear_from_bdl_fwd` for g (B, L, O) and its input y (B, I, L)."""
    with _no_autocast(g.device.type):
        dt = g.dtype
        dw = weight_grad(g.transpose(1, 2), y.to(dt))
        db = g.sum((0, 1), dtype=acc_dtype(dt)) if bias_needed else None
    return dw, db


def channel_linear_fwd(x, weight):
    """x (B, I, L), weight (O, I) -> (B, O, L) contiguous in the GEMM dtype."""
    dt = gemm_dtype(x, weight)
    with _no_autocast(x.device.type):
        return torch.bmm(weight.to(dt).expand(x.shape[0], -1, -1), x.to(dt))


def channel_linear_grads(g, x, weight):
    """Gradients of :func:`channel_linear_fwd` for g (B, O, L): (dx (B, I, L) contiguous in g's
    dtype, dweight (O, I) summed over the batch in at least fp32)."""
    with _no_autocast(g.device.type):
        dt = g.dtype
        dx = torch.bmm(weight.to(dt).t().expand(g.shape[0], -1, -1), g)
        return dx, weight_grad(g, x.to(dt))


class _ChannelLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return channel_linear_fwd(x, weight)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        dx, dw = channel_linear_grads(g, x, weight)
        return dx.to(x.dtype), dw.to(weight.dtype)


class _Projection(torch.autograd.Function):
    """``apply(fwd, grads, x, weight, bias)``: a projection given by its forward and gradient
    functions (``linear_to_bdl_*`` or ``linear_from_bdl_*``); gradients in the inputs' dtypes."""

    @staticmethod
    def forward(ctx, fwd, grads, x, weight, bias):
        out = fwd(x, weight, bias)
        ctx.save_for_backward(x, weight)
        ctx.grads, ctx.has_bias = grads, bias is not None
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        dx, dw, db = ctx.grads(g, x, weight, ctx.has_bias and ctx.needs_input_grad[4])
        return (None, None, dx.to(ctx.dtypes[0]), dw.to(ctx.dtypes[1]),
                None if db is None else db.to(ctx.dtypes[2]))


def channel_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight @ x[b]`` for every clip b: x (B, I, L) (any strides with a unit stride in one of its
    last two dims, e.g. a channel slice), weight (O, I) -> (B, O, L) contiguous, one batched GEMM.
    Autograd-aware; the backward gives dx (B, I, L) contiguous, without layout copies."""
    return _ChannelLinear.apply(x, weight)


def linear_to_bdl(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` transposed: x (B, L, I), weight (O, I), bias (O,) ->
    (B, O, L) contiguous, the L-contiguous layout the conv and the scan read. Autograd-aware;
    the backward gives dx (B, L, I) contiguous, without layout copies."""
    return _Projection.apply(linear_to_bdl_fwd, linear_to_bdl_grads, x, weight, bias)


def linear_from_bdl(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(y.transpose(1, 2), weight, bias)``: y (B, I, L), weight (O, I), bias (O,) ->
    (B, L, O) contiguous. Autograd-aware; the backward gives dy (B, I, L) contiguous (what the
    scan's backward reads), without layout copies."""
    return _Projection.apply(linear_from_bdl_fwd, linear_from_bdl_grads, y, weight, bias)
