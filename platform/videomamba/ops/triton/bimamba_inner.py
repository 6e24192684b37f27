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
from ..projection import acc_dtype, weight_grad
from .causal_conv1d import bi_causal_conv1d_triton, bi_conv_bwd, bi_conv_fwd
from .launch import ScanDir, scan_bwd, scan_fwd

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
    output from the forward (2 x 4 + 2 bytes per (batch, channel, position) more per layer)
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
    """(..., L) -> (..., pitch) with zero columns past L (t itself when pitch == L and contiguous)."""
    length = t.shape[-1]
    if pitch == length:
        return t.contiguous()
    out = t.new_empty(*t.shape[:-1], pitch)
    out[..., :length] = t
    out[..., length:] = 0
    return out


def _pad_rows(t: torch.Tensor, pitch: int) -> torch.Tensor:
    """(B, L, C) -> (B, pitch, C) with zero rows past L (t itself when pitch == L)."""
    return t if pitch == t.shape[1] else F.pad(t, (0, 0, 0, pitch - t.shape[1]))


def _gemm_dtype(hidden, weight):
    dev = hidden.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return torch.promote_types(hidden.dtype, weight.dtype)


class _MixerForward:
    """The mixer's forward up to the scan, on padded rows (:func:`row_pitch`), no autograd:
    ``hp`` (B, P, D) the input in the GEMM dtype, ``xz`` (B, 2 d_inner, P), per direction ``u``
    (conv + SiLU), ``xdbl`` (x_proj's output), ``delta`` (dt_proj's, before bias and softplus),
    all (B, C, P) with zero pad columns except xz's (in_proj's bias), and the scan's
    :class:`ScanDir` pair on the first L columns."""

    def __init__(self, hidden, in_w, in_b, weights, small_f, small_b):
        batch, length, _ = hidden.shape
        self.dtype = dt = _gemm_dtype(hidden, in_w)
        self.length, self.pitch = length, row_pitch(length, hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            self.hp = _pad_rows(hidden.to(dt), self.pitch)
            self.xz = torch.bmm(in_w.to(dt).expand(batch, -1, -1), self.hp.transpose(1, 2))
            if in_b is not None:
                self.xz += in_b.to(dt)[:, None]
            d_inner = self.xz.shape[1] // 2
            self.x, self.z = self.xz[:, :d_inner, :length], self.xz[:, d_inner:, :length]
            cw_f, cb_f, xw_f, dw_f, cw_b, cb_b, xw_b, dw_b = weights
            self.conv = (cw_f[:, 0], cb_f, cw_b[:, 0], cb_b)
            u_f, u_b = bi_conv_fwd(self.x, *self.conv, True, self.pitch)
            self.u = [u_f.as_strided((batch, d_inner, self.pitch), u_f.stride()),
                      u_b.as_strided((batch, d_inner, self.pitch), u_b.stride())]
            n = small_f[0].shape[-1]
            self.xdbl, self.delta, dirs = [], [], []
            for u, xw, dw, small in ((self.u[0], xw_f, dw_f, small_f), (self.u[1], xw_b, dw_b, small_b)):
                xdbl = torch.bmm(xw.to(dt).expand(batch, -1, -1), u)  # (B, R + 2N, P)
                rank = dw.shape[1]
                delta = torch.bmm(dw.to(dt).expand(batch, -1, -1), xdbl[:, :rank])  # (B, d_inner, P)
                self.xdbl.append(xdbl)
                self.delta.append(delta)
                dirs.append(ScanDir(u[..., :length], delta[..., :length], small[0], xdbl[:, rank:rank + n, :length],
                                    xdbl[:, rank + n:, :length], small[1], small[2]))
            self.dirs = dirs


class BiMambaTriton(torch.autograd.Function):
    """The whole BiMamba mixer as one autograd function on the Triton kernels: ``in_proj``, both
    directions (Triton conv + SiLU, ``x_proj``, ``dt_proj``, the bidirectional scan), ``out_proj``.

    ``apply(hidden (B, L, D), in_w, in_b, out_w, out_b, save_states, *params_f, *params_b)`` ->
    (B, L, D), with ``params_*`` as in :func:`bimamba_inner_composed`. Saves the input ``hidden``
    and the weights, nothing of size d_inner x L: its backward recomputes the forward up to the
    scan and re-runs the forward scan kernel for the tile states the backward kernel reads and for
    ``out_proj``'s input (mamba-ssm's backward kernel recomputes its forward states too, inside
    the kernel), then writes every gradient itself (GEMMs, the conv's backward kernel).
    ``save_states``: keep the tile states and the scan output instead (no forward re-run; 10 bytes
    per (batch, d_inner, position) more). On CUDA the (B, C, L) activations have rows padded to
    :func:`row_pitch` so that the GEMMs get aligned operands. Same values and gradients as
    ``out_proj(bimamba_inner_composed(in_proj(hidden)))`` (bitwise without padding)."""

    @staticmethod
    def forward(ctx, hidden, in_w, in_b, out_w, out_b, save_states, *params):
        weights, small_f, small_b = BiMambaTriton._split(params)
        fw = _MixerForward(hidden, in_w, in_b, weights, small_f, small_b)
        y, hss, _last, cfg = scan_fwd(fw.dirs, fw.z, True, False, store_states=save_states, return_last=False)
        out = BiMambaTriton._out_proj(y, out_w, out_b, fw)
        kept = (y, *hss) if save_states else ()
        ctx.save_for_backward(hidden, in_w, in_b, out_w, out_b, *params, *kept)
        ctx.cfg, ctx.amp, ctx.save_states, ctx.n_params = cfg, _autocast_state(hidden.device.type), save_states, len(params)
        return out

    @staticmethod
    def _split(params):
        return params[:4] + params[7:11], params[4:7], params[11:14]

    @staticmethod
    def _out_proj(y, out_w, out_b, fw):
        with torch.autocast(y.device.type, enabled=False):
            yp = _pad_last(y, fw.pitch)
            out = torch.bmm(yp.transpose(1, 2), out_w.to(fw.dtype).t().expand(y.shape[0], -1, -1))
            if out_b is not None:
                out += out_b.to(fw.dtype)
        return out[:, :fw.length]

    @staticmethod
    def backward(ctx, dout):
        hidden, in_w, in_b, out_w, out_b, *rest = ctx.saved_tensors
        params, kept = rest[:ctx.n_params], rest[ctx.n_params:]
        weights, small_f, small_b = BiMambaTriton._split(params)
        with torch.autocast(**ctx.amp):
            fw = _MixerForward(hidden, in_w, in_b, weights, small_f, small_b)  # the forward, recomputed
        if ctx.save_states:
            y, hss = kept[0], list(kept[1:])
        else:
            y, hss, _last, _cfg = scan_fwd(fw.dirs, fw.z, True, False, store_states=True, return_last=False)
        batch, pitch, dt = hidden.shape[0], fw.pitch, fw.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            # out_proj: dy (B, d_inner, P) = out_w^T dout^T, d out_w = sum_b dout_b^T y_b^T
            dp = _pad_rows(dout.to(dt), pitch).transpose(1, 2)  # (B, D, P)
            yp = _pad_last(y, pitch)
            del y
            dy = torch.bmm(out_w.to(dt).t().expand(batch, -1, -1), dp)
            d_out_w = weight_grad(dp, yp).to(out_w.dtype)
            d_out_b = dout.sum((0, 1), dtype=acc_dtype(dt)).to(out_b.dtype) if out_b is not None else None
            del yp
            gbuf, dz = scan_bwd(fw.dirs, fw.z, hss, dy[..., :fw.length], None, True, False, ctx.cfg)
            del hss, dy
            gf, gb = gbuf.grads([fw.dirs[0].B4, fw.dirs[1].B4], [fw.dirs[0].C4, fw.dirs[1].C4])
            du_total, proj_grads = [], []
            for i, (g, xw, dw) in enumerate(((gf, weights[2], weights[3]), (gb, weights[6], weights[7]))):
                du, ddt, _dA, dB, dC = g[:5]
                rank = dw.shape[1]
                ddt = _pad_last(ddt, pitch)
                d_dtlow = torch.bmm(dw.to(dt).t().expand(batch, -1, -1), ddt)  # (B, R, P)
                d_dw = weight_grad(ddt, fw.xdbl[i][:, :rank])
                d_xdbl = torch.cat([d_dtlow, _pad_last(dB, pitch), _pad_last(dC, pitch)], dim=1)
                du_total.append(_pad_last(du, pitch) + torch.bmm(xw.to(dt).t().expand(batch, -1, -1), d_xdbl))
                proj_grads.append((weight_grad(d_xdbl, fw.u[i]).to(xw.dtype), d_dw.to(dw.dtype)))
            d_inner = fw.x.shape[1]
            dxz = fw.xz.new_empty(batch, 2 * d_inner, pitch)
            dxz[..., fw.length:] = 0
            _dx, conv_grads = bi_conv_bwd(fw.x, *fw.conv, du_total[0][..., :fw.length], du_total[1][..., :fw.length],
                                          True, dx=dxz[:, :d_inner, :fw.length])
            dxz[:, d_inner:, :fw.length] = dz
            del du_total, dz
            dh = torch.bmm(dxz.transpose(1, 2), in_w.to(dt).expand(batch, -1, -1))[:, :fw.length]
            d_in_w = weight_grad(dxz, fw.hp.transpose(1, 2)).to(in_w.dtype)
            d_in_b = dxz.sum((0, 2), dtype=acc_dtype(dt)).to(in_b.dtype) if in_b is not None else None
        out = [dh.to(hidden.dtype), d_in_w, d_in_b, d_out_w, d_out_b, None]
        for (cw, cb), (dcw, dcb), (dxw, ddw), g in zip(((weights[0], weights[1]), (weights[4], weights[5])),
                                                       conv_grads, proj_grads, (gf, gb)):
            out += [dcw.to(cw.dtype).view_as(cw), dcb.to(cb.dtype) if cb is not None else None, dxw, ddw,
                    g[2], g[5], g[6]]
        return tuple(out)
