"""Both BiMamba directions after ``in_proj`` as one op: per direction the depthwise conv + SiLU,
``x_proj``, ``dt_proj`` and the selective scan with D-skip and SiLU(z) gate; the two outputs
summed, before ``out_proj``.

Two forms behind :func:`videomamba.ops.bimamba_inner_fn`:

* :func:`bimamba_inner_composed`: the ops composed under autograd (any backend). Autograd keeps
  every intermediate: the conv outputs, deltas and scan inputs of both directions.
* :class:`BiMambaInnerTriton`: one autograd function for the Triton scan that saves only ``xz``,
  the weights and the scan's fp32 tile states. Its backward recomputes the conv and the two
  projections, then runs the Triton backward kernel, the way mamba-ssm's ``mamba_inner_fn``
  treats one direction. Saved activations per layer drop from about seven ``(B, d_inner, L)``
  tensors to ``xz`` (two) plus the tile states.
"""

from __future__ import annotations

import torch
from einops import rearrange

from . import causal_conv1d as _conv

__all__ = ["branch", "bimamba_inner_composed", "BiMambaInnerTriton"]


def branch(x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, d_state: int, *, reverse: bool,
           conv_fn=None):
    """x (B, d_inner, L) -> scan inputs of one direction: u, dt (B, d_inner, L), B, C (B, N, L).
    conv_weight (d_inner, 1, K); projections act on the channel dim of L-contiguous tensors (no
    layout copies); dt_proj's bias is the scan's ``delta_bias``. ``reverse``: anti-causal conv.
    ``conv_fn(x, w (D, K), b, reverse)``: the backend's conv + SiLU (default: PyTorch's)."""
    conv_fn = conv_fn or (lambda x_, w, b, rev: _conv.causal_conv1d_torch(x_, w, b, "silu", rev))
    u = conv_fn(x, rearrange(conv_weight, "d 1 k -> d k"), conv_bias, reverse)
    x_dbl = torch.matmul(x_proj_weight, u)  # (B, dt_rank + 2N, L)
    dt, B, C = torch.split(x_dbl, [dt_proj_weight.shape[1], d_state, d_state], dim=1)
    return u, torch.matmul(dt_proj_weight, dt), B, C


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


def _autocast_state(device_type: str) -> dict:
    return dict(device_type=device_type, dtype=torch.get_autocast_dtype(device_type),
                enabled=torch.is_autocast_enabled(device_type))


class BiMambaInnerTriton(torch.autograd.Function):
    """``apply(xz, *params_f, *params_b)`` with ``params_*`` as in :func:`bimamba_inner_composed`
    (conv bias may be None; sequences in original order, no ``index_b``). Same values and
    gradients as the composed form on the Triton backend."""

    @staticmethod
    def _branches(xz, weights, n):
        x, z = xz.chunk(2, dim=1)
        return (branch(x, *weights[:4], n, reverse=False), branch(x, *weights[4:], n, reverse=True), z)

    @staticmethod
    def _dirs(f, b, small_f, small_b):
        from .selective_scan_triton import _Dir

        return [_Dir(f[0], f[1], small_f[0], f[2], f[3], small_f[1], small_f[2]),
                _Dir(b[0], b[1], small_b[0], b[2], b[3], small_b[1], small_b[2])]

    @staticmethod
    def forward(ctx, xz, cw_f, cb_f, xw_f, dw_f, A_f, D_f, bias_f, cw_b, cb_b, xw_b, dw_b, A_b, D_b, bias_b):
        from .selective_scan_triton import _fwd

        weights = (cw_f, cb_f, xw_f, dw_f, cw_b, cb_b, xw_b, dw_b)
        small_f, small_b = (A_f, D_f, bias_f), (A_b, D_b, bias_b)
        f, b, z = BiMambaInnerTriton._branches(xz, weights, A_f.shape[-1])
        out, hss, _last, cfg = _fwd(BiMambaInnerTriton._dirs(f, b, small_f, small_b), z, True, False,
                                    store_states=True, return_last=False)
        ctx.save_for_backward(xz, *weights, *small_f, *small_b, *hss)
        ctx.cfg, ctx.amp = cfg, _autocast_state(xz.device.type)
        return out

    @staticmethod
    def backward(ctx, dout):
        from .selective_scan_triton import _bwd

        xz, *rest = ctx.saved_tensors
        weights, small_f, small_b, hss = rest[:8], rest[8:11], rest[11:14], rest[14:]
        leaves = [t.detach().requires_grad_() if t is not None else None for t in (xz, *weights)]
        with torch.enable_grad(), torch.autocast(**ctx.amp):  # the forward's graph, rebuilt
            f, b, z = BiMambaInnerTriton._branches(leaves[0], leaves[1:], small_f[0].shape[-1])
        dirs = BiMambaInnerTriton._dirs([t.detach() for t in f], [t.detach() for t in b], small_f, small_b)
        gbuf, dz = _bwd(dirs, z.detach(), hss, dout, None, True, False, ctx.cfg)
        gf, gb = gbuf.grads([f[2], b[2]], [f[3], b[3]])  # per direction du, ddt, dA, dB, dC, dD, dbias
        torch.autograd.backward([*f, *b, z], [gf[0], gf[1], gf[3], gf[4], gb[0], gb[1], gb[3], gb[4], dz])
        g = [t.grad if t is not None else None for t in leaves]
        return (g[0], *g[1:5], gf[2], gf[5], gf[6], *g[5:9], gb[2], gb[5], gb[6])
