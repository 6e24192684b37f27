"""Both BiMamba directions after ``in_proj`` as one autograd function on the Triton scan
(:class:`BiMambaInnerTriton`): it saves only ``xz``, the weights and the scan's fp32 tile
states; its backward recomputes the conv and the two projections, then runs the Triton backward
kernel, the way mamba-ssm's ``mamba_inner_fn`` treats one direction. Saved activations per layer
drop from about seven ``(B, d_inner, L)`` tensors to ``xz`` (two) plus the tile states. The
composed form it must match is :func:`videomamba.ops.bimamba_inner.bimamba_inner_composed`.

:class:`BiMambaTriton` takes the whole mixer (``in_proj`` .. ``out_proj``) and saves only its
input: the backward recomputes ``xz`` and re-runs the forward scan kernel for the tile states
(benchmarks/README.md, issue 15, "Training memory")."""

from __future__ import annotations

import os

import torch

from ..bimamba_inner import branch
from ..projection import linear_from_bdl_fwd, linear_from_bdl_grads, linear_to_bdl_fwd, linear_to_bdl_grads
from .causal_conv1d import bi_causal_conv1d_triton
from .launch import ScanDir, scan_bwd, scan_fwd

__all__ = ["BiMambaInnerTriton", "BiMambaTriton", "save_scan_states"]


def _autocast_state(device_type: str) -> dict:
    return dict(device_type=device_type, dtype=torch.get_autocast_dtype(device_type),
                enabled=torch.is_autocast_enabled(device_type))


class BiMambaInnerTriton(torch.autograd.Function):
    """``apply(xz, *params_f, *params_b)`` with ``params_*`` as in :func:`bimamba_inner_composed`
    (conv bias may be None; sequences in original order, no ``index_b``). Same values and
    gradients as the composed form on the Triton backend."""

    @staticmethod
    def _branch_pair(x, weights, n):
        """Scan inputs (u, dt, B, C) of the forward and the backward direction from x (B, d_inner, L);
        both convs (+ SiLU) in one Triton launch that reads x once, branch() takes their outputs."""
        u_f, u_b = bi_causal_conv1d_triton(x, weights[0][:, 0], weights[1], weights[4][:, 0], weights[5], "silu")
        return (branch(x, *weights[:4], n, reverse=False, conv_fn=lambda *_: u_f),
                branch(x, *weights[4:], n, reverse=True, conv_fn=lambda *_: u_b))

    @staticmethod
    def _branches(xz, weights, n):
        x, z = xz.chunk(2, dim=1)
        return (*BiMambaInnerTriton._branch_pair(x, weights, n), z)

    @staticmethod
    def _dirs(f, b, small_f, small_b):
        return [ScanDir(f[0], f[1], small_f[0], f[2], f[3], small_f[1], small_f[2]),
                ScanDir(b[0], b[1], small_b[0], b[2], b[3], small_b[1], small_b[2])]

    @staticmethod
    def forward(ctx, xz, cw_f, cb_f, xw_f, dw_f, A_f, D_f, bias_f, cw_b, cb_b, xw_b, dw_b, A_b, D_b, bias_b):
        weights = (cw_f, cb_f, xw_f, dw_f, cw_b, cb_b, xw_b, dw_b)
        small_f, small_b = (A_f, D_f, bias_f), (A_b, D_b, bias_b)
        f, b, z = BiMambaInnerTriton._branches(xz, weights, A_f.shape[-1])
        out, hss, _last, cfg = scan_fwd(BiMambaInnerTriton._dirs(f, b, small_f, small_b), z, True, False,
                                    store_states=True, return_last=False)
        ctx.save_for_backward(xz, *weights, *small_f, *small_b, *hss)
        ctx.cfg, ctx.amp = cfg, _autocast_state(xz.device.type)
        return out

    @staticmethod
    def backward(ctx, dout):
        xz, *rest = ctx.saved_tensors
        weights, small_f, small_b, hss = rest[:8], rest[8:11], rest[11:14], rest[14:]
        leaves = [t.detach().requires_grad_() if t is not None else None for t in (xz, *weights)]
        with torch.enable_grad(), torch.autocast(**ctx.amp):  # the forward's graph, rebuilt
            f, b, z = BiMambaInnerTriton._branches(leaves[0], leaves[1:], small_f[0].shape[-1])
        dirs = BiMambaInnerTriton._dirs([t.detach() for t in f], [t.detach() for t in b], small_f, small_b)
        gbuf, dz = scan_bwd(dirs, z.detach(), hss, dout, None, True, False, ctx.cfg)
        gf, gb = gbuf.grads([f[2], b[2]], [f[3], b[3]])  # per direction du, ddt, dA, dB, dC, dD, dbias
        torch.autograd.backward([*f, *b, z], [gf[0], gf[1], gf[3], gf[4], gb[0], gb[1], gb[3], gb[4], dz])
        g = [t.grad if t is not None else None for t in leaves]
        return (g[0], *g[1:5], gf[2], gf[5], gf[6], *g[5:9], gb[2], gb[5], gb[6])


def save_scan_states() -> bool:
    """``VIDEOMAMBA_TRITON_SAVE_STATES=1``: :class:`BiMambaTriton` keeps the scan's tile states and
    output from the forward (2 x 4 + 2 bytes per (batch, channel, position) more per layer)
    instead of re-running the forward kernel in its backward."""
    return os.environ.get("VIDEOMAMBA_TRITON_SAVE_STATES", "0") == "1"


class BiMambaTriton(torch.autograd.Function):
    """The whole BiMamba mixer as one autograd function on the Triton scan: ``in_proj``, both
    directions (:class:`BiMambaInnerTriton`'s computation), ``out_proj``.

    ``apply(hidden (B, L, D), in_w, in_b, out_w, out_b, save_states, *params_f, *params_b)`` ->
    (B, L, D), with ``params_*`` as in :func:`bimamba_inner_composed`. Saves the input ``hidden``
    and the weights, nothing of size d_inner x L: its backward recomputes ``xz`` (one GEMM), the
    conv and the projections, and re-runs the forward scan kernel for the tile states the
    backward kernel reads and for ``out_proj``'s input (mamba-ssm's backward kernel recomputes
    its forward states too, inside the kernel). ``save_states``: keep the tile states and the
    scan output instead (no forward re-run; 10 bytes per (batch, d_inner, position) more).
    Same values and gradients as ``out_proj(bimamba_inner_composed(in_proj(hidden)))``."""

    @staticmethod
    def forward(ctx, hidden, in_w, in_b, out_w, out_b, save_states, *params):
        weights, small_f, small_b = BiMambaTriton._split(params)
        xz = linear_to_bdl_fwd(hidden, in_w, in_b)
        f, b, z = BiMambaInnerTriton._branches(xz, weights, small_f[0].shape[-1])
        y, hss, _last, cfg = scan_fwd(BiMambaInnerTriton._dirs(f, b, small_f, small_b), z, True, False,
                                      store_states=save_states, return_last=False)
        out = linear_from_bdl_fwd(y, out_w, out_b)
        kept = (y, *hss) if save_states else ()
        ctx.save_for_backward(hidden, in_w, in_b, out_w, out_b, *params, *kept)
        ctx.cfg, ctx.amp, ctx.save_states, ctx.n_params = cfg, _autocast_state(hidden.device.type), save_states, len(params)
        return out

    @staticmethod
    def _split(params):
        return params[:4] + params[7:11], params[4:7], params[11:14]

    @staticmethod
    def backward(ctx, dout):
        hidden, in_w, in_b, out_w, out_b, *rest = ctx.saved_tensors
        params, kept = rest[:ctx.n_params], rest[ctx.n_params:]
        weights, small_f, small_b = BiMambaTriton._split(params)
        with torch.autocast(**ctx.amp):
            xz = linear_to_bdl_fwd(hidden, in_w, in_b)  # the forward's in_proj, recomputed
        x, z = xz.detach().chunk(2, dim=1)
        leaves = [x.requires_grad_()] + [t.detach().requires_grad_() if t is not None else None for t in weights]
        with torch.enable_grad(), torch.autocast(**ctx.amp):  # the forward's graph from x to the scan, rebuilt
            f, b = BiMambaInnerTriton._branch_pair(leaves[0], leaves[1:], small_f[0].shape[-1])
        dirs = BiMambaInnerTriton._dirs([t.detach() for t in f], [t.detach() for t in b], small_f, small_b)
        if ctx.save_states:
            y, hss = kept[0], list(kept[1:])
        else:
            y, hss, _last, _cfg = scan_fwd(dirs, z, True, False, store_states=True, return_last=False)
        dy, d_out_w, d_out_b = linear_from_bdl_grads(dout, y, out_w, out_b is not None)
        gbuf, dz = scan_bwd(dirs, z, hss, dy, None, True, False, ctx.cfg)
        del hss, y, dy
        gf, gb = gbuf.grads([f[2], b[2]], [f[3], b[3]])  # per direction du, ddt, dA, dB, dC, dD, dbias
        torch.autograd.backward([*f, *b], [gf[0], gf[1], gf[3], gf[4], gb[0], gb[1], gb[3], gb[4]])
        dxz = torch.cat([leaves[0].grad, dz], dim=1)  # one in_proj GEMM: the composed op's rounding
        dh, d_in_w, d_in_b = linear_to_bdl_grads(dxz, hidden, in_w, in_b is not None)
        del dxz
        d_in_w = d_in_w.to(in_w.dtype)
        d_in_b = d_in_b.to(in_b.dtype) if in_b is not None else None
        gw = [t.grad if t is not None else None for t in leaves[1:]]
        return (dh.to(hidden.dtype), d_in_w, d_in_b, d_out_w.to(out_w.dtype),
                d_out_b.to(out_b.dtype) if out_b is not None else None, None,
                *gw[0:4], gf[2], gf[5], gf[6], *gw[4:8], gb[2], gb[5], gb[6])
