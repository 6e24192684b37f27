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
import torch.nn.functional as F

from ..bimamba_inner import branch
from ..projection import (channel_linear_fwd, channel_linear_grads, gemm_dtype, linear_from_bdl_fwd,
                          linear_from_bdl_input_grad, linear_from_bdl_weight_grads, linear_to_bdl_fwd,
                          linear_to_bdl_grads)
from .causal_conv1d import bi_causal_conv1d_triton, bi_conv_bwd, bi_conv_fwd
from .launch import ScanDir, SegmentSummaries, empty_rows, scan_bwd, scan_fwd

__all__ = ["BiMambaInnerTriton", "BiMambaTriton", "save_scan_states", "row_pitch", "ROW_ALIGN"]


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
    output from the forward (2 directions x N x 4 bytes of fp32 state per 8 positions on the GPU,
    plus 2 bytes of output: 18 bytes per (batch, channel, position) more per layer at N = 16)
    instead of re-running the forward kernel in its backward."""
    return os.environ.get("VIDEOMAMBA_TRITON_SAVE_STATES", "0") == "1"


ROW_ALIGN = {"cuda": 8}  # device type -> row pitch multiple of the (B, C, L) activations (elements)


def row_pitch(length: int, device: torch.device) -> int:
    """Row pitch of :class:`BiMambaTriton`'s (B, C, L) activations: L rounded up to
    ``ROW_ALIGN[device.type]`` (8 bf16 = 16 bytes on CUDA; 1 elsewhere). VideoMamba's
    L = 1 + 196 T is odd, and with odd rows cuBLAS falls back to its ``align1`` kernels: on an H200
    the Ti 64-frame step spent 45 ms in GEMMs whose arithmetic takes ~2 ms (benchmarks/README.md,
    issue 15). The pad columns are kept zero, and the GEMMs run over the padded width."""
    align = ROW_ALIGN.get(device.type, 1)
    return -(-length // align) * align


def _pad_last(t: torch.Tensor, pitch: int) -> torch.Tensor:
    """(..., L) -> (..., pitch) with zero columns past L: the whole buffer when t is already a view
    of one (the scan's and the conv's outputs, written at the pitch), else a padded copy."""
    length = t.shape[-1]
    if pitch == length:
        return t.contiguous()
    if t.dim() == 3 and t.stride()[1:] == (pitch, 1) and t.stride(0) == t.shape[1] * pitch \
            and t.untyped_storage().nbytes() >= (t.storage_offset() + t.shape[0] * t.stride(0)) * t.element_size():
        return t.as_strided((*t.shape[:-1], pitch), t.stride())  # the pad columns were zeroed at allocation
    out = t.new_empty(*t.shape[:-1], pitch)
    out[..., :length] = t
    out[..., length:] = 0
    return out


def _pad_rows(t: torch.Tensor, pitch: int) -> torch.Tensor:
    """(B, L, C) -> (B, pitch, C) with zero rows past L (t itself when pitch == L)."""
    return t if pitch == t.shape[1] else F.pad(t, (0, 0, 0, pitch - t.shape[1]))


class _MixerForward:
    """The mixer's forward up to the scan, on padded rows (:func:`row_pitch`), no autograd:
    ``hp`` (B, P, D) the input in the GEMM dtype, ``xz`` (B, 2 d_inner, P), per direction ``u``
    (conv + SiLU) and ``xdbl`` (x_proj's output), all (B, C, P) with zero pad columns except xz's
    (in_proj's bias), and the scan's :class:`ScanDir` pair on the first L columns (delta =
    dt_proj's output, before bias and softplus). GEMMs as in :mod:`videomamba.ops.projection`."""

    def __init__(self, hidden, in_w, in_b, weights, small_f, small_b):
        batch, length, _ = hidden.shape
        self.dtype = gemm_dtype(hidden, in_w)
        self.length, self.pitch = length, row_pitch(length, hidden.device)
        self.hp = _pad_rows(hidden.to(self.dtype), self.pitch)
        self.xz = linear_to_bdl_fwd(self.hp, in_w, in_b)
        d_inner = self.xz.shape[1] // 2
        self.x, self.z = self.xz[:, :d_inner, :length], self.xz[:, d_inner:, :length]
        cw_f, cb_f, xw_f, dw_f, cw_b, cb_b, xw_b, dw_b = weights
        self.conv = (cw_f[:, 0], cb_f, cw_b[:, 0], cb_b)
        u_f, u_b = bi_conv_fwd(self.x, *self.conv, True, self.pitch)
        self.u = [_pad_last(u_f, self.pitch), _pad_last(u_b, self.pitch)]
        n = small_f[0].shape[-1]
        self.xdbl, dirs = [], []
        for u, xw, dw, small in ((self.u[0], xw_f, dw_f, small_f), (self.u[1], xw_b, dw_b, small_b)):
            xdbl = channel_linear_fwd(u, xw)  # (B, R + 2N, P)
            rank = dw.shape[1]
            delta = channel_linear_fwd(xdbl[:, :rank], dw)  # (B, d_inner, P)
            self.xdbl.append(xdbl)
            # x_proj's output past L (its input's zero pad columns times the weights) is finite
            dirs.append(ScanDir(u[..., :length], delta[..., :length], small[0], xdbl[:, rank:rank + n, :length],
                                xdbl[:, rank + n:, :length], small[1], small[2], bc_pad_finite=True))
        self.dirs = dirs


class BiMambaTriton(torch.autograd.Function):
    """The whole BiMamba mixer as one autograd function on the Triton kernels: ``in_proj``, both
    directions (Triton conv + SiLU, ``x_proj``, ``dt_proj``, the bidirectional scan), ``out_proj``.

    ``apply(hidden (B, L, D), in_w, in_b, out_w, out_b, save_states, *params_f, *params_b)`` ->
    (B, L, D), with ``params_*`` as in :func:`bimamba_inner_composed`. Saves the input ``hidden``
    and the weights, nothing of size d_inner x L (only the scan's segment summaries, a few per
    (batch, channel)). Its backward recomputes the forward up to the scan, re-runs the forward
    scan kernel for the tile states alone (no summary launch: the kept summaries), and lets the
    backward scan kernel, which recomputes each tile's outputs anyway, write ``out_proj``'s input
    for its weight gradient (mamba-ssm's backward kernel recomputes its forward states too, inside
    the kernel); it writes every gradient itself (GEMMs, the conv's backward kernel).
    ``save_states``: keep the tile states and the scan output instead (no forward re-run; 18 bytes
    per (batch, d_inner, position) more at N = 16, :func:`save_scan_states`). On CUDA the (B, C, L) activations have rows padded to
    :func:`row_pitch` so that the GEMMs get aligned operands. Same values and gradients as
    ``out_proj(bimamba_inner_composed(in_proj(hidden)))`` (bitwise without padding)."""

    @staticmethod
    def forward(ctx, hidden, in_w, in_b, out_w, out_b, save_states, *params):
        weights, small_f, small_b = BiMambaTriton._split(params)
        fw = _MixerForward(hidden, in_w, in_b, weights, small_f, small_b)
        summ = None if save_states else SegmentSummaries()  # kept for the backward's forward re-run
        y, hss, _last, cfg = scan_fwd(fw.dirs, fw.z, True, False, store_states=save_states, return_last=False,
                                      pitch=fw.pitch, summaries=summ)
        out = BiMambaTriton._out_proj(y, out_w, out_b, fw)
        kept = (y, *hss) if save_states else (summ.state, summ.dsum)
        ctx.save_for_backward(hidden, in_w, in_b, out_w, out_b, *params, *kept)
        ctx.cfg, ctx.amp, ctx.save_states, ctx.n_params = cfg, _autocast_state(hidden.device.type), save_states, len(params)
        return out

    @staticmethod
    def _split(params):
        return params[:4] + params[7:11], params[4:7], params[11:14]

    @staticmethod
    def _out_proj(y, out_w, out_b, fw):
        return linear_from_bdl_fwd(_pad_last(y, fw.pitch), out_w, out_b)[:, :fw.length]

    @staticmethod
    def backward(ctx, dout):
        hidden, in_w, in_b, out_w, out_b, *rest = ctx.saved_tensors
        params, kept = rest[:ctx.n_params], rest[ctx.n_params:]
        weights, small_f, small_b = BiMambaTriton._split(params)
        with torch.autocast(**ctx.amp):
            fw = _MixerForward(hidden, in_w, in_b, weights, small_f, small_b)  # the forward, recomputed
        if ctx.save_states:
            y, hss = kept[0], list(kept[1:])
        else:  # the forward kernel re-run for its states alone; the backward kernel writes y
            y, hss, _last, _cfg = scan_fwd(fw.dirs, fw.z, True, False, store_states=True, return_last=False,
                                           pitch=fw.pitch, summaries=SegmentSummaries(*kept), states_only=True)
        pitch, dt = fw.pitch, fw.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            # out_proj's gradients over the padded rows (zero past L): dy first, dweight once y is there
            g_out = _pad_rows(dout.to(dt), pitch)
            dy = linear_from_bdl_input_grad(g_out, out_w)
            u0 = fw.dirs[0].u
            y_out = None if y is not None else empty_rows(u0.shape[0], u0.shape[1], fw.length, pitch, u0.device,
                                                          u0.dtype)
            gbuf, dz = scan_bwd(fw.dirs, fw.z, hss, dy[..., :fw.length], None, True, False, ctx.cfg, pitch=pitch,
                                y_out=y_out)
            del hss, dy
            y = y if y is not None else y_out
            d_out_w, d_out_b = linear_from_bdl_weight_grads(g_out, _pad_last(y, pitch), out_b is not None)
            del y, y_out, g_out
            gf, gb = gbuf.grads([fw.dirs[0].B4, fw.dirs[1].B4], [fw.dirs[0].C4, fw.dirs[1].C4])
            du_total, proj_grads = [], []
            for i, (g, xw, dw) in enumerate(((gf, weights[2], weights[3]), (gb, weights[6], weights[7]))):
                du, ddt, _dA, dB, dC = g[:5]
                rank = dw.shape[1]
                d_dtlow, d_dw = channel_linear_grads(_pad_last(ddt, pitch), fw.xdbl[i][:, :rank], dw)  # dt_proj
                d_xdbl = torch.cat([d_dtlow, _pad_last(dB, pitch), _pad_last(dC, pitch)], dim=1)
                du_xproj, d_xw = channel_linear_grads(d_xdbl, fw.u[i], xw)  # x_proj
                du_total.append(_pad_last(du, pitch) + du_xproj)
                proj_grads.append((d_xw.to(xw.dtype), d_dw.to(dw.dtype)))
            d_inner = fw.x.shape[1]
            dxz = fw.xz.new_empty(fw.xz.shape[0], 2 * d_inner, pitch)
            dxz[..., fw.length:] = 0
            _dx, conv_grads = bi_conv_bwd(fw.x, *fw.conv, du_total[0][..., :fw.length], du_total[1][..., :fw.length],
                                          True, dx=dxz[:, :d_inner, :fw.length])
            dxz[:, d_inner:, :fw.length] = dz
            del du_total, dz
            dh, d_in_w, d_in_b = linear_to_bdl_grads(dxz, fw.hp, in_w, in_b is not None)  # in_proj
            dh = dh[:, :fw.length]
        d_out_w, d_in_w = d_out_w.to(out_w.dtype), d_in_w.to(in_w.dtype)
        d_out_b = d_out_b.to(out_b.dtype) if out_b is not None else None
        d_in_b = d_in_b.to(in_b.dtype) if in_b is not None else None
        out = [dh.to(hidden.dtype), d_in_w, d_in_b, d_out_w, d_out_b, None]
        for (cw, cb), (dcw, dcb), (dxw, ddw), g in zip(((weights[0], weights[1]), (weights[4], weights[5])),
                                                       conv_grads, proj_grads, (gf, gb)):
            out += [dcw.to(cw.dtype).view_as(cw), dcb.to(cb.dtype) if cb is not None else None, dxw, ddw,
                    g[2], g[5], g[6]]
        return tuple(out)
