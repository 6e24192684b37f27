"""Both BiMamba directions after ``in_proj`` as one op: per direction the depthwise conv + SiLU,
``x_proj``, ``dt_proj`` and the selective scan with D-skip and SiLU(z) gate; the two outputs
summed, before ``out_proj``.

Two forms behind :func:`videomamba.ops.bimamba_inner_fn`:

* :func:`bimamba_inner_composed`: the ops composed under autograd (any backend). Autograd keeps
  every intermediate: the conv outputs, deltas and scan inputs of both directions.
* :class:`videomamba.ops.triton.BiMambaInnerTriton`: one autograd function for the Triton scan
  that saves only ``xz``, the weights and the scan's fp32 tile states, and recomputes the conv
  and the projections in its backward.
* :class:`videomamba.ops.triton.BiMambaTriton` (``ops.bimamba_fn``): the same with ``in_proj``
  (:func:`in_proj_bdl`) and ``out_proj`` inside, saving only the mixer's input.

The projections are batched GEMMs with a broadcast weight (:mod:`videomamba.ops.projection`):
no layout copies in the forward or the backward.
"""

from __future__ import annotations

import torch
from einops import rearrange

from . import causal_conv1d as _conv
from .projection import channel_linear, linear_to_bdl

__all__ = ["branch", "in_proj_bdl", "bimamba_inner_composed"]


def in_proj_bdl(hidden, weight, bias=None):
    """hidden (B, L, D) -> xz (B, 2 d_inner, L) contiguous = ``in_proj(hidden)`` transposed into
    the L-contiguous layout the conv and the scan want, with no layout copy in the forward or
    the backward (:func:`videomamba.ops.projection.linear_to_bdl`)."""
    return linear_to_bdl(hidden, weight, bias)


def branch(x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, d_state: int, *, reverse: bool,
           conv_fn=None):
    """x (B, d_inner, L) -> scan inputs of one direction: u, dt (B, d_inner, L), B, C (B, N, L).
    conv_weight (d_inner, 1, K); projections act on the channel dim of L-contiguous tensors (no
    layout copies); dt_proj's bias is the scan's ``delta_bias``. ``reverse``: anti-causal conv.
    ``conv_fn(x, w (D, K), b, reverse)``: the backend's conv + SiLU (default: PyTorch's)."""
    conv_fn = conv_fn or (lambda x_, w, b, rev: _conv.causal_conv1d_torch(x_, w, b, "silu", rev))
    u = conv_fn(x, rearrange(conv_weight, "d 1 k -> d k"), conv_bias, reverse)
    x_dbl = channel_linear(u, x_proj_weight)  # (B, dt_rank + 2N, L)
    dt, B, C = torch.split(x_dbl, [dt_proj_weight.shape[1], d_state, d_state], dim=1)
    return u, channel_linear(dt, dt_proj_weight), B, C


def bimamba_inner_composed(xz, params_f, params_b, *, conv_fn, bi_scan_fn, take_fn, index_b=None):
    """xz (B, 2 d_inner, L) -> y_f + y_b (B, d_inner, L).

    ``params_*`` = (conv_weight, conv_bias, x_proj_weight, dt_proj_weight, A, D, delta_bias).
    ``bi_scan_fn(u_f, dt_f, A_f, B_f, C_f, D_f, bias_f, u_b, ..., z, index_b)`` is the backend's
    bidirectional scan. With ``index_b``, the backward branch reads the tokens ``x[..., index_b]``
    (``take_fn(x, index_b)``)."""
    x, z = xz.chunk(2, dim=1)
    n = params_f[4].shape[-1]
    cw, cb, xw, dw, A_f, D_f, bias_f = params_f
    u_f, dt_f, B_f, C_f = branch(x, cw, cb, xw, dw, n, reverse=False, conv_fn=conv_fn)
    x_b = x if index_b is None else take_fn(x, index_b)
    cw, cb, xw, dw, A_b, D_b, bias_b = params_b
    u_b, dt_b, B_b, C_b = branch(x_b, cw, cb, xw, dw, n, reverse=True, conv_fn=conv_fn)
    return bi_scan_fn(u_f, dt_f, A_f, B_f, C_f, D_f, bias_f, u_b, dt_b, A_b, B_b, C_b, D_b, bias_b, z, index_b)
