"""Selective scan (mamba-ssm semantics) on the Triton kernels, as autograd functions: one
direction (:func:`selective_scan_triton`) or both BiMamba directions in one launch
(:func:`bi_selective_scan_triton`). No C++/CUDA build; runs on the CPU under
``TRITON_INTERPRET=1`` (tests) and compiled on CUDA GPUs. README.md beside this file: the design."""

from __future__ import annotations

import torch

from .launch import ScanDir, check_inputs, scan_bwd, scan_fwd

__all__ = ["selective_scan_triton", "bi_selective_scan_triton"]


class _SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, return_last, reverse):
        d = ScanDir(u, delta, A, B, C, D, delta_bias)
        out, hss, last, cfg = scan_fwd([d], z, softplus, reverse, store_states=True, return_last=return_last)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, hss[0])
        ctx.cfg, ctx.flags = cfg, (softplus, reverse)
        if return_last:  # the last state is differentiable too: its gradient seeds the adjoint
            return out, last
        return out

    @staticmethod
    def backward(ctx, dout, dlast=None):
        u, delta, A, B, C, D, z, delta_bias, hs = ctx.saved_tensors
        softplus, reverse = ctx.flags
        d = ScanDir(u, delta, A, B, C, D, delta_bias)
        gb, dz = scan_bwd([d], z, [hs], dout, dlast, softplus, reverse, ctx.cfg)
        du, ddt, dA, dB, dC, dD, dbias = gb.grads([B], [C])[0]
        return du, ddt, dA, dB, dC, dD, dz, dbias, None, None, None


def _needs_grad(*ts) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)


def selective_scan_triton(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, reverse=False,
):
    """Selective scan, mamba-ssm semantics, Triton forward and backward.

    u, delta, z: (B, D, L); A: (D, N) real; B, C: (B, N, L) or (B, G, N, L); D, delta_bias: (D,).
    ``reverse=True`` scans from position L-1 to 0 (= flip -> scan -> flip, by indexing).
    Returns y (B, D, L) in u's dtype, and the fp32 last state (B, D, N) if ``return_last_state``
    (the state after the last position scanned: position 0 when ``reverse``).
    """
    check_inputs(u, A)
    if _needs_grad(u, delta, A, B, C, D, z, delta_bias):
        return _SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus),
                                      bool(return_last_state), bool(reverse))
    d = ScanDir(u, delta, A, B, C, D, delta_bias)
    out, _hs, last, _cfg = scan_fwd([d], z, bool(delta_softplus), bool(reverse), False, bool(return_last_state))
    return (out, last) if return_last_state else out


class _BiSelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, softplus):
        dirs = [ScanDir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f),
                ScanDir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)]
        out, hss, _last, cfg = scan_fwd(dirs, z, softplus, False, store_states=True, return_last=False)
        ctx.save_for_backward(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                              u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, *hss)
        ctx.cfg, ctx.softplus = cfg, softplus
        return out

    @staticmethod
    def backward(ctx, dout):
        (u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
         u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, hs_f, hs_b) = ctx.saved_tensors
        dirs = [ScanDir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f),
                ScanDir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)]
        gbuf, dz = scan_bwd(dirs, z, [hs_f, hs_b], dout, None, ctx.softplus, False, ctx.cfg)
        gf, gb = gbuf.grads([B_f, B_b], [C_f, C_b])
        return (*gf, *gb, dz, None)


def bi_selective_scan_triton(
    u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
    u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b,
    z, delta_softplus=True,
):
    """Both BiMamba directions in one launch, sequences in ORIGINAL order; the backward
    direction is scanned from position L-1 to 0 by indexing (no flipped copies).

    Per direction: u, delta (B, D, L); A (D, N); B, C (B, N, L) or (B, G, N, L); D, delta_bias
    (D,) or None. z (B, D, L) is shared. Returns ``(scan_f + D_f u_f) * silu(z) +
    (scan_b + D_b u_b) * silu(z)``, (B, D, L) in u_f's dtype; state in fp32.
    """
    check_inputs(u_f, A_f)
    if u_f.shape != u_b.shape or z is None or z.shape != u_f.shape or A_f.shape != A_b.shape:
        raise ValueError("bi_selective_scan_triton: u_f, u_b, z must share (B, D, L) and A_f, A_b (D, N)")
    args = (u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f, u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z)
    if _needs_grad(*args):
        return _BiSelectiveScanFn.apply(*args, bool(delta_softplus))
    dirs = [ScanDir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f),
            ScanDir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)]
    out, _hs, _last, _cfg = scan_fwd(dirs, z, bool(delta_softplus), False, store_states=False, return_last=False)
    return out
