"""Depthwise causal conv1d (+ SiLU) of the Mamba mixer on Triton kernels, forward and backward,
one direction or both BiMamba directions over the same input in one launch.

Causal: ``y_t = act(b + sum_k w_k x_{t-K+1+k})``; anti-causal (``reverse``, the BiMamba backward
branch's conv read in original order): ``y_t = act(b + sum_k w_k x_{t+K-1-k})``; positions outside
[0, L) read as 0 (the zero padding of ``nn.Conv1d(padding=K-1)``). Same semantics as
:func:`videomamba.ops.causal_conv1d.causal_conv1d_torch`; the tap-loop reference
``causal_conv1d_ref`` is what the tests compare against (``TRITON_INTERPRET=1`` on the CPU).

Design (memory-bound; bf16 activations, fp32 weights and accumulation):

* Grid: one program per (batch row, ``BLOCK_D`` channels, ``BLOCK_L`` positions), flattened to
  one axis with the position blocks varying fastest (neighbouring programs share their halos in
  L2). Tiles are ``(BLOCK_D, BLOCK_L)``, positions along the fast axis, so loads and stores are
  coalesced along L for any input strides (the conv's input is a channel chunk of ``xz`` with
  strides (L, B L, 1): no copy is made).
* The K - 1 halo positions are read again from global memory (L1/L2 hits) as shifted, masked
  loads, one per tap, instead of exchanging registers between programs or threads. The
  bidirectional forward reads the 2K - 1 shifts of x once and accumulates both outputs.
* Backward: ``dpre = dy * silu'(pre)`` with the pre-activation recomputed from x (nothing but x
  is saved). ``dx_t = sum_k w_k dpre_{t+K-1-k}`` (causal; the mirror for anti-causal) needs dpre
  at K - 1 positions past the program's tile, which the program recomputes from shifted loads
  (K sigmoids per position and direction instead of one: at bf16 this, not HBM, may bound the
  backward on an H200, ~16 SFU ops per position for both directions; exchanging dpre between
  threads has no Triton primitive short of shared-memory gathers). For K <= 4 the backward is
  written out (``conv_bwd4_kernel``) so that each shift of x and dy is loaded once. Its program
  walks a group of ``CONV_BWD_LTILES`` position tiles, accumulating the dweight and dbias terms
  element-wise, and reduces them over positions once (each reduction is shuffles, a shared-memory
  exchange and a barrier: one per tile made the backward ~1.75x slower at Ti 8f); the generic
  kernel reduces per tile. Each program writes its partial row ``(B * groups, D, K + 1)`` in fp32
  (plain stores, every element written by one program), then torch sums the rows: no atomics,
  bitwise deterministic.
* SiLU and its derivative in fp32 by ``exp2`` and ``rcp`` (PTX ``ex2.approx.ftz``, ``div.full``)
  instead of exp and the IEEE division: the conv kernels were issue-bound (Nsight Compute).
* Launches: forward 1 kernel (both directions); backward 1 kernel + 1 sum per direction + the
  casts of dweight/dbias to the parameters' dtypes. No host syncs.

Block sizes from :func:`conv_config` (environment overrides ``VIDEOMAMBA_TRITON_CONV_BLOCK_L``,
``_CONV_BLOCK_D``, ``_CONV_NUM_WARPS``, ``_CONV_BWD_BLOCK_L``, ``_CONV_BWD_BLOCK_D``,
``_CONV_BWD_NUM_WARPS``, ``_CONV_BWD_KERNEL``, ``_CONV_BWD_LTILES`` for tuning on a GPU;
``python -m videomamba.bench.conv_kernels`` times
them against PyTorch's conv and the causal-conv1d package).
"""

from __future__ import annotations

import os

import torch

from .config import LAST_LAUNCH, _env_int
from .runtime import HAS_TRITON, interpreting, jit, tl, triton, triton_available
from .scan_common import rcp

__all__ = ["causal_conv1d_triton", "bi_causal_conv1d_triton", "bi_conv_fwd", "bi_conv_bwd", "conv_config", "CONV_FWD",
           "CONV_BWD"]

# GPU defaults (BLOCK_D, BLOCK_L, num_warps), forward and backward: a few channels and a few hundred
# positions per program (coalesced rows, 4-8 elements per thread and tile). Chosen by the design
# above. Two H200 sweeps (`python -m videomamba.bench.conv_kernels --sweep ...`,
# benchmarks/2026-12-03-h200-session10 calls 2 and 3) did not settle a better backward: in each,
# the first fused-conv row timed at a shape (the default's) was slower than
# the sweep's row, whichever configuration it had, by up to 1.5x. Timed interleaved (``--interleave``,
# benchmarks/2026-12-03-h200-session11), the backward default is the fastest at Ti 8f and within 2% at 64f.
CONV_FWD = (2, 512, 4)
CONV_BWD = (2, 256, 4)
CONV_BWD_KERNELS = ("k4", "generic")
# the K = 4 backward's position tiles per program on the GPU (the interpreter: 2): its dweight / dbias terms are
# accumulated element-wise over them and reduced over positions once. Interleaved, Ti 8f / 64f, with the SiLU by exp2
# and rcp: backward 0.229 / 0.278 ms at 8 tiles, 0.341 / 0.307 at 1, 0.403 / 0.364 before both (H200,
# benchmarks/2026-12-03-h200-session13 call 2)
CONV_BWD_LTILES = 8
_ACTIVATIONS = (None, "silu", "swish")


def conv_config(batch: int, dim: int, length: int, device, backward: bool = False) -> dict:
    """Block sizes and warps of the forward or the backward conv kernel for x (batch, dim, length).

    GPU: :data:`CONV_FWD` / :data:`CONV_BWD`; the interpreter (CPU): small blocks (16 positions,
    2 channels) so that the tests' short sequences span several position and channel blocks.
    Env overrides (powers of two; a bad value raises naming the variable):
    ``VIDEOMAMBA_TRITON_CONV_BLOCK_D``, ``_CONV_BLOCK_L``, ``_CONV_NUM_WARPS`` (both kernels) and
    ``_CONV_BWD_BLOCK_D``, ``_CONV_BWD_BLOCK_L``, ``_CONV_BWD_NUM_WARPS`` (the backward only);
    ``_CONV_BWD_KERNEL``: ``k4`` (default: the backward written out for K <= 4) or ``generic``
    (any K; per-tap helpers, more loads); ``_CONV_BWD_LTILES``: k4's position tiles per program
    (:data:`CONV_BWD_LTILES`; any positive integer)."""
    env = "VIDEOMAMBA_TRITON_CONV_"
    if interpreting() or torch.device(device).type != "cuda":
        block_d, block_l, warps = 2, 16, 1
    else:
        block_d, block_l, warps = CONV_BWD if backward else CONV_FWD

    def pick(name, default):
        return (backward and _env_int(env + "BWD_" + name, True)) or _env_int(env + name, True) or default

    block_d, block_l, warps = pick("BLOCK_D", block_d), pick("BLOCK_L", block_l), pick("NUM_WARPS", warps)
    n_dblk, n_lblk = triton.cdiv(dim, block_d), triton.cdiv(max(length, 1), block_l)
    bwd_kernel = os.environ.get(env + "BWD_KERNEL") or "k4"
    if bwd_kernel not in CONV_BWD_KERNELS:
        raise ValueError(f"{env}BWD_KERNEL={bwd_kernel!r}: expected one of {CONV_BWD_KERNELS}")
    # the K = 4 backward's tiles per program: the dweight terms are reduced once per group of tiles
    ltiles = 1
    if backward and bwd_kernel == "k4":
        ltiles = min(_env_int(env + "BWD_LTILES") or (2 if interpreting() or torch.device(device).type != "cuda"
                                                       else CONV_BWD_LTILES), n_lblk)
    n_lgrp = triton.cdiv(n_lblk, ltiles)
    return dict(BLOCK_D=block_d, BLOCK_L=block_l, num_warps=warps, n_dblk=n_dblk, n_lblk=n_lblk,
                grid=(batch * n_dblk * n_lgrp,), tile_grid=(batch * n_dblk * n_lblk,), LTILES=ltiles, n_lgrp=n_lgrp,
                bwd_kernel=bwd_kernel)


if HAS_TRITON:

    @jit
    def _x_at(xrow, sxl, pos, mrow, length, ACC: tl.constexpr):
        """x at positions ``pos`` (BLOCK_L,) of the rows ``xrow`` (BLOCK_D, 1) pointers; 0 outside [0, L)."""
        m = mrow & ((pos >= 0) & (pos < length))[None, :]
        return tl.load(xrow + pos[None, :].to(tl.int64) * sxl, mask=m, other=0.0).to(ACC)

    @jit
    def _tap(w_ptr, offs_d, mask_d, k, K: tl.constexpr, ACC: tl.constexpr):
        """Tap k of the rows' weights (D, K) contiguous, as a (BLOCK_D, 1) column."""
        return tl.load(w_ptr + offs_d * K + k, mask=mask_d, other=0.0).to(ACC)[:, None]

    @jit
    def _pre(xrow, sxl, pos, mrow, length, w_ptr, b_ptr, offs_d, mask_d,
             K: tl.constexpr, REV: tl.constexpr, HAS_BIAS: tl.constexpr, ACC: tl.constexpr):
        """Pre-activation of one direction at positions ``pos``: b + sum_k w_k x_{pos + shift_k},
        shift_k = k - (K - 1) (causal) or K - 1 - k (``REV``, anti-causal). (BLOCK_D, BLOCK_L)."""
        acc = _tap(w_ptr, offs_d, mask_d, 0, K, ACC) * _x_at(xrow, sxl, pos + ((K - 1) if REV else (1 - K)), mrow,
                                                              length, ACC)
        for k in tl.static_range(1, K):
            shift = (K - 1 - k) if REV else (k - (K - 1))
            acc += _tap(w_ptr, offs_d, mask_d, k, K, ACC) * _x_at(xrow, sxl, pos + shift, mrow, length, ACC)
        if HAS_BIAS:
            acc += tl.load(b_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)[:, None]
        return acc

    @jit
    def _sigmoid(p, ACC: tl.constexpr):
        """sigmoid(p); in fp32 by exp2 and ``rcp`` (PTX ``ex2.approx.ftz`` and ``div.full``: a few ulp)
        instead of exp and the IEEE division, whose range checks made the conv kernels issue-bound
        (Nsight Compute, benchmarks/2026-12-03-h200-session13)."""
        if ACC == tl.float32:
            s = rcp(1.0 + tl.exp2(p * -1.4426950408889634))
        else:
            s = 1.0 / (1.0 + tl.exp(-p))
        return s

    @jit
    def _silu(p, ACC: tl.constexpr):
        return p * _sigmoid(p, ACC)

    @jit
    def _dpre(dy_ptr, sdb, sdd, sdl, b, offs_d, mrow, pos, length, p, SILU: tl.constexpr, ACC: tl.constexpr):
        """dy at positions ``pos`` (0 outside [0, L)) times the activation's derivative at ``p``."""
        m = mrow & ((pos >= 0) & (pos < length))[None, :]
        ptr = dy_ptr + b.to(tl.int64) * sdb + offs_d.to(tl.int64)[:, None] * sdd + pos[None, :].to(tl.int64) * sdl
        dy = tl.load(ptr, mask=m, other=0.0).to(ACC)
        if SILU:
            s = _sigmoid(p, ACC)
            dy = dy * s * (1.0 + p * (1.0 - s))
        return dy

    @jit
    def _program(n_dblk, n_lblk, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr):
        """(batch row, channel offsets, position offsets) of this program; position blocks fastest."""
        pid = tl.program_id(0)
        lblk = pid % n_lblk
        rest = pid // n_lblk
        return rest // n_dblk, (rest % n_dblk) * BLOCK_D + tl.arange(0, BLOCK_D), lblk * BLOCK_L + tl.arange(0, BLOCK_L)

    @jit
    def conv_fwd_kernel(
        x_ptr, wf_ptr, bf_ptr, wb_ptr, bb_ptr, yf_ptr, yb_ptr,
        dim, length, n_dblk, n_lblk, sxb, sxd, sxl, sob, sod,
        K: tl.constexpr, HAS_F: tl.constexpr, HAS_B: tl.constexpr, HAS_BIAS_F: tl.constexpr,
        HAS_BIAS_B: tl.constexpr, SILU: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """y_f = act(causal conv (wf, bf) of x), y_b = act(anti-causal conv (wb, bb) of x); each
        direction present when HAS_F / HAS_B. x (B, D, L) any strides; w (D, K), b (D,)
        contiguous; y (B, D, L) with strides (sob, sod, 1) in y's dtype (both directions alike). The
        2K - 1 shifts of x are loaded once."""
        b, offs_d, offs_l = _program(n_dblk, n_lblk, BLOCK_D, BLOCK_L)
        mask_d = offs_d < dim
        mrow = mask_d[:, None]
        xrow = x_ptr + b.to(tl.int64) * sxb + offs_d.to(tl.int64)[:, None] * sxd
        acc_f = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        acc_b = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        for i in tl.static_range(2 * K - 1):
            s = i - (K - 1)  # x_{t+s}: causal taps s <= 0 (k = s + K - 1), anti-causal s >= 0 (k = K - 1 - s)
            if (HAS_F and s <= 0) or (HAS_B and s >= 0):
                xv = _x_at(xrow, sxl, offs_l + s, mrow, length, ACC)
                if HAS_F and s <= 0:
                    acc_f += _tap(wf_ptr, offs_d, mask_d, s + K - 1, K, ACC) * xv
                if HAS_B and s >= 0:
                    acc_b += _tap(wb_ptr, offs_d, mask_d, K - 1 - s, K, ACC) * xv
        out = b.to(tl.int64) * sob + offs_d.to(tl.int64)[:, None] * sod + offs_l[None, :]
        mout = mrow & (offs_l < length)[None, :]
        if HAS_F:
            if HAS_BIAS_F:
                acc_f += tl.load(bf_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)[:, None]
            if SILU:
                acc_f = _silu(acc_f, ACC)
            tl.store(yf_ptr + out, acc_f.to(yf_ptr.dtype.element_ty), mask=mout)
        if HAS_B:
            if HAS_BIAS_B:
                acc_b += tl.load(bb_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)[:, None]
            if SILU:
                acc_b = _silu(acc_b, ACC)
            tl.store(yb_ptr + out, acc_b.to(yb_ptr.dtype.element_ty), mask=mout)

    @jit
    def conv_bwd_kernel(
        x_ptr, wf_ptr, bf_ptr, wb_ptr, bb_ptr, dyf_ptr, dyb_ptr, dx_ptr, pf_ptr, pb_ptr,
        dim, length, n_dblk, n_lblk, sxb, sxd, sxl, sfb, sfd, sfl, sbb, sbd, sbl, sob, sod,
        K: tl.constexpr, HAS_F: tl.constexpr, HAS_B: tl.constexpr, HAS_BIAS_F: tl.constexpr,
        HAS_BIAS_B: tl.constexpr, SILU: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Backward of :func:`conv_fwd_kernel`: dx (B, D, L), strides (sob, sod, 1) (both directions summed),
        and this program's partial row of [dweight | dbias] per direction, (B * n_lblk, D, K + 1)
        fp32 at row ``b * n_lblk + lblk``. dy_f / dy_b (B, D, L) any strides."""
        b, offs_d, offs_l = _program(n_dblk, n_lblk, BLOCK_D, BLOCK_L)
        lblk = tl.program_id(0) % n_lblk
        mask_d = offs_d < dim
        mrow = mask_d[:, None]
        xrow = x_ptr + b.to(tl.int64) * sxb + offs_d.to(tl.int64)[:, None] * sxd
        dx = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        g0_f = dx  # dpre at the tile's own positions, per direction (dweight, dbias)
        g0_b = dx
        if HAS_F:  # dx_t += sum_j w_{K-1-j} dpre_{t+j}, j = 0..K-1
            for j in tl.static_range(K):
                p = _pre(xrow, sxl, offs_l + j, mrow, length, wf_ptr, bf_ptr, offs_d, mask_d, K, False, HAS_BIAS_F, ACC)
                g = _dpre(dyf_ptr, sfb, sfd, sfl, b, offs_d, mrow, offs_l + j, length, p, SILU, ACC)
                dx += _tap(wf_ptr, offs_d, mask_d, K - 1 - j, K, ACC) * g
                if j == 0:
                    g0_f = g
        if HAS_B:  # dx_t += sum_j w_{j+K-1} dpre_{t+j}, j = -(K-1)..0
            for i in tl.static_range(K):
                j = i - (K - 1)
                p = _pre(xrow, sxl, offs_l + j, mrow, length, wb_ptr, bb_ptr, offs_d, mask_d, K, True, HAS_BIAS_B, ACC)
                g = _dpre(dyb_ptr, sbb, sbd, sbl, b, offs_d, mrow, offs_l + j, length, p, SILU, ACC)
                dx += _tap(wb_ptr, offs_d, mask_d, i, K, ACC) * g
                if j == 0:
                    g0_b = g
        # every load above, every store below: the compiler may merge the repeated shifted loads
        part = (b * n_lblk + lblk).to(tl.int64) * dim * (K + 1) + offs_d * (K + 1)
        if HAS_F:  # dweight_k = sum_t dpre_t x_{t-K+1+k}, dbias = sum_t dpre_t (over the tile)
            for k in tl.static_range(K):
                xv = _x_at(xrow, sxl, offs_l + (k - (K - 1)), mrow, length, ACC)
                tl.store(pf_ptr + part + k, tl.sum(g0_f * xv, axis=1), mask=mask_d)
            tl.store(pf_ptr + part + K, tl.sum(g0_f, axis=1), mask=mask_d)
        if HAS_B:  # dweight_k = sum_t dpre_t x_{t+K-1-k}
            for k in tl.static_range(K):
                xv = _x_at(xrow, sxl, offs_l + (K - 1 - k), mrow, length, ACC)
                tl.store(pb_ptr + part + k, tl.sum(g0_b * xv, axis=1), mask=mask_d)
            tl.store(pb_ptr + part + K, tl.sum(g0_b, axis=1), mask=mask_d)
        out = b.to(tl.int64) * sob + offs_d.to(tl.int64)[:, None] * sod + offs_l[None, :]
        tl.store(dx_ptr + out, dx.to(dx_ptr.dtype.element_ty), mask=mrow & (offs_l < length)[None, :])


    @jit
    def _w4(w_ptr, offs_d, mask_d, ACC: tl.constexpr):
        return (_tap(w_ptr, offs_d, mask_d, 0, 4, ACC), _tap(w_ptr, offs_d, mask_d, 1, 4, ACC),
                _tap(w_ptr, offs_d, mask_d, 2, 4, ACC), _tap(w_ptr, offs_d, mask_d, 3, 4, ACC))

    @jit
    def _bias(b_ptr, offs_d, mask_d, HAS_BIAS: tl.constexpr, ACC: tl.constexpr):
        bias = tl.zeros_like(offs_d).to(ACC)[:, None]
        if HAS_BIAS:
            bias = tl.load(b_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)[:, None]
        return bias

    @jit
    def _program_group(n_dblk, n_lgrp, BLOCK_D: tl.constexpr):
        """(batch row, channel offsets, position group) of this program; position groups fastest."""
        pid = tl.program_id(0)
        rest = pid // n_lgrp
        return rest // n_dblk, (rest % n_dblk) * BLOCK_D + tl.arange(0, BLOCK_D), pid % n_lgrp

    @jit
    def _store_wgrad(p_ptr, part, mask_d, a0, a1, a2, a3, a4):
        """A program's partial row [dweight_0..3 | dbias]: the (BLOCK_D, BLOCK_L) accumulators summed over positions."""
        tl.store(p_ptr + part, tl.sum(a0, axis=1), mask=mask_d)
        tl.store(p_ptr + part + 1, tl.sum(a1, axis=1), mask=mask_d)
        tl.store(p_ptr + part + 2, tl.sum(a2, axis=1), mask=mask_d)
        tl.store(p_ptr + part + 3, tl.sum(a3, axis=1), mask=mask_d)
        tl.store(p_ptr + part + 4, tl.sum(a4, axis=1), mask=mask_d)

    @jit
    def conv_bwd4_kernel(
        x_ptr, wf_ptr, bf_ptr, wb_ptr, bb_ptr, dyf_ptr, dyb_ptr, dx_ptr, pf_ptr, pb_ptr,
        dim, length, n_dblk, n_lgrp, sxb, sxd, sxl, sfb, sfd, sfl, sbb, sbd, sbl, sob, sod, n_lblk,
        K: tl.constexpr, HAS_F: tl.constexpr, HAS_B: tl.constexpr, HAS_BIAS_F: tl.constexpr,
        HAS_BIAS_B: tl.constexpr, SILU: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, LTILES: tl.constexpr = 1,
    ):
        """:func:`conv_bwd_kernel` written out for K = 4 (the host pads shorter kernels with zero
        taps): the 7 shifts of x and the 4 of each dy are loaded once each (the generic kernel's
        per-tap helpers load ~40 per position; the compiler does not merge them). A program walks
        LTILES consecutive tiles of BLOCK_L positions, accumulating the dweight / dbias terms
        element-wise, and reduces them over positions once (its partial row ``b * n_lgrp + group``)."""
        b, offs_d, lgrp = _program_group(n_dblk, n_lgrp, BLOCK_D)
        mask_d = offs_d < dim
        mrow = mask_d[:, None]
        xrow = x_ptr + b.to(tl.int64) * sxb + offs_d.to(tl.int64)[:, None] * sxd
        part = (b * n_lgrp + lgrp).to(tl.int64) * dim * 5 + offs_d * 5
        wf0, wf1, wf2, wf3 = _w4(wf_ptr, offs_d, mask_d, ACC)
        bias_f = _bias(bf_ptr, offs_d, mask_d, HAS_BIAS_F, ACC)
        wb0, wb1, wb2, wb3 = _w4(wb_ptr, offs_d, mask_d, ACC)
        bias_b = _bias(bb_ptr, offs_d, mask_d, HAS_BIAS_B, ACC)
        zero = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        af0, af1, af2, af3, af4 = zero, zero, zero, zero, zero  # dweight_k / dbias terms, forward direction
        ab0, ab1, ab2, ab3, ab4 = zero, zero, zero, zero, zero
        for lt in range(0, tl.minimum(LTILES, n_lblk - lgrp * LTILES)):  # the group's tiles in the sequence
            offs_l = (lgrp * LTILES + lt) * BLOCK_L + tl.arange(0, BLOCK_L)
            xm3 = _x_at(xrow, sxl, offs_l - 3, mrow, length, ACC)
            xm2 = _x_at(xrow, sxl, offs_l - 2, mrow, length, ACC)
            xm1 = _x_at(xrow, sxl, offs_l - 1, mrow, length, ACC)
            x0 = _x_at(xrow, sxl, offs_l, mrow, length, ACC)
            xp1 = _x_at(xrow, sxl, offs_l + 1, mrow, length, ACC)
            xp2 = _x_at(xrow, sxl, offs_l + 2, mrow, length, ACC)
            xp3 = _x_at(xrow, sxl, offs_l + 3, mrow, length, ACC)
            dx = zero
            if HAS_F:  # pre_f(t+j) = b + w0 x_{t+j-3} + w1 x_{t+j-2} + w2 x_{t+j-1} + w3 x_{t+j}
                g0 = _dpre(dyf_ptr, sfb, sfd, sfl, b, offs_d, mrow, offs_l, length,
                           wf0 * xm3 + wf1 * xm2 + wf2 * xm1 + wf3 * x0 + bias_f, SILU, ACC)
                g1 = _dpre(dyf_ptr, sfb, sfd, sfl, b, offs_d, mrow, offs_l + 1, length,
                           wf0 * xm2 + wf1 * xm1 + wf2 * x0 + wf3 * xp1 + bias_f, SILU, ACC)
                g2 = _dpre(dyf_ptr, sfb, sfd, sfl, b, offs_d, mrow, offs_l + 2, length,
                           wf0 * xm1 + wf1 * x0 + wf2 * xp1 + wf3 * xp2 + bias_f, SILU, ACC)
                g3 = _dpre(dyf_ptr, sfb, sfd, sfl, b, offs_d, mrow, offs_l + 3, length,
                           wf0 * x0 + wf1 * xp1 + wf2 * xp2 + wf3 * xp3 + bias_f, SILU, ACC)
                dx += wf3 * g0 + wf2 * g1 + wf1 * g2 + wf0 * g3  # dx_t = sum_k w_k dpre_{t+3-k}
                # dweight_k = sum_t dpre_t x_{t-3+k}, dbias = sum_t dpre_t
                af0 += g0 * xm3
                af1 += g0 * xm2
                af2 += g0 * xm1
                af3 += g0 * x0
                af4 += g0
            if HAS_B:  # pre_b(t+j) = b + w0 x_{t+j+3} + w1 x_{t+j+2} + w2 x_{t+j+1} + w3 x_{t+j}
                hm3 = _dpre(dyb_ptr, sbb, sbd, sbl, b, offs_d, mrow, offs_l - 3, length,
                            wb0 * x0 + wb1 * xm1 + wb2 * xm2 + wb3 * xm3 + bias_b, SILU, ACC)
                hm2 = _dpre(dyb_ptr, sbb, sbd, sbl, b, offs_d, mrow, offs_l - 2, length,
                            wb0 * xp1 + wb1 * x0 + wb2 * xm1 + wb3 * xm2 + bias_b, SILU, ACC)
                hm1 = _dpre(dyb_ptr, sbb, sbd, sbl, b, offs_d, mrow, offs_l - 1, length,
                            wb0 * xp2 + wb1 * xp1 + wb2 * x0 + wb3 * xm1 + bias_b, SILU, ACC)
                h0 = _dpre(dyb_ptr, sbb, sbd, sbl, b, offs_d, mrow, offs_l, length,
                           wb0 * xp3 + wb1 * xp2 + wb2 * xp1 + wb3 * x0 + bias_b, SILU, ACC)
                dx += wb0 * hm3 + wb1 * hm2 + wb2 * hm1 + wb3 * h0  # dx_t = sum_k w_k dpre_{t-3+k}
                ab0 += h0 * xp3  # dweight_k = sum_t dpre_t x_{t+3-k}
                ab1 += h0 * xp2
                ab2 += h0 * xp1
                ab3 += h0 * x0
                ab4 += h0
            out = b.to(tl.int64) * sob + offs_d.to(tl.int64)[:, None] * sod + offs_l[None, :]
            tl.store(dx_ptr + out, dx.to(dx_ptr.dtype.element_ty), mask=mrow & (offs_l < length)[None, :])
        if HAS_F:
            _store_wgrad(pf_ptr, part, mask_d, af0, af1, af2, af3, af4)
        if HAS_B:
            _store_wgrad(pb_ptr, part, mask_d, ab0, ab1, ab2, ab3, ab4)


def _check(x, weights):
    if not triton_available():
        raise RuntimeError("triton is not usable here (needs CUDA, or TRITON_INTERPRET=1 set before triton is "
                           "first imported); use the 'torch' backend's causal_conv1d_torch")
    if not interpreting() and x.device.type != "cuda":
        raise RuntimeError(f"compiled triton needs CUDA tensors, got {x.device} (TRITON_INTERPRET=1 runs on CPU)")
    if x.dim() != 3:
        raise ValueError(f"x must be (B, D, L), got shape {tuple(x.shape)}")
    for name, w in weights:
        if w is not None and (w.dim() != 2 or w.shape[0] != x.shape[1]):
            raise ValueError(f"{name} must be (D, K) with D = {x.shape[1]}, got shape {tuple(w.shape)}")


def _acc(dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _contig(t):
    return t.contiguous() if t is not None else None


def _pitched(batch, dim, length, pitch, like):
    """(B, D, L) view of a (B, D, pitch) buffer whose columns past L are zero (contiguous when pitch = L)."""
    if pitch is None or pitch == length:
        return torch.empty(batch, dim, length, device=like.device, dtype=like.dtype)
    buf = torch.empty(batch, dim, pitch, device=like.device, dtype=like.dtype)
    buf[..., length:].zero_()
    return buf[..., :length]


def _fwd(x, wf, bf, wb, bb, silu, pitch=None):
    """Launch the forward; returns [y_f or None, y_b or None] (B, D, L) in x's dtype, contiguous,
    or (``pitch`` > L) views of (B, D, pitch) buffers with zero columns past L."""
    batch, dim, length = x.shape
    k = (wf if wf is not None else wb).shape[1]
    cfg = conv_config(batch, dim, length, x.device)
    yf = _pitched(batch, dim, length, pitch, x) if wf is not None else None
    yb = _pitched(batch, dim, length, pitch, x) if wb is not None else None
    if length == 0 or batch == 0 or dim == 0:
        return [yf, yb]
    dummy = yf if yf is not None else yb
    LAST_LAUNCH["conv_fwd"] = conv_fwd_kernel[cfg["grid"]](
        x, wf if wf is not None else dummy, bf if bf is not None else dummy, wb if wb is not None else dummy,
        bb if bb is not None else dummy, yf if yf is not None else dummy, yb if yb is not None else dummy,
        dim, length, cfg["n_dblk"], cfg["n_lblk"], *x.stride(), *dummy.stride()[:2],
        K=k, HAS_F=wf is not None, HAS_B=wb is not None, HAS_BIAS_F=bf is not None, HAS_BIAS_B=bb is not None,
        SILU=silu, ACC=_acc(x.dtype), BLOCK_D=cfg["BLOCK_D"], BLOCK_L=cfg["BLOCK_L"], num_warps=cfg["num_warps"])
    return [yf, yb]


def _bwd(x, wf, bf, wb, bb, dyf, dyb, silu, dx=None):
    """Launch the backward; returns dx (B, D, L) in x's dtype (contiguous, or written into the
    given ``dx``, any (B, D, L) view with unit stride along L) and per direction
    (dweight (D, K), dbias (D,)) in fp32 (None for an absent direction). K <= 4 runs the
    written-out K = 4 kernel (shorter kernels padded with leading zero taps, which leave both
    convs unchanged) unless ``VIDEOMAMBA_TRITON_CONV_BWD_KERNEL=generic``."""
    batch, dim, length = x.shape
    k_user = (wf if wf is not None else wb).shape[1]
    cfg = conv_config(batch, dim, length, x.device, backward=True)
    four = cfg["bwd_kernel"] == "k4" and k_user <= 4
    if four and k_user < 4:
        wf, wb = (None if w is None else torch.nn.functional.pad(w, (4 - k_user, 0)) for w in (wf, wb))
    k = 4 if four else k_user
    if dx is None:
        dx = torch.empty(batch, dim, length, device=x.device, dtype=x.dtype)
    elif dx.shape != x.shape or dx.stride(-1) != 1:
        raise ValueError(f"dx must be {tuple(x.shape)} with a unit stride along L, got {tuple(dx.shape)} {dx.stride()}")
    # fp32 partials (fp64 for fp64 inputs: the tests' reference precision)
    f32 = dict(device=x.device, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    rows = batch * cfg["n_lgrp"]  # a partial row per (batch, position group)
    parts = [torch.empty(rows, dim, k + 1, **f32) if w is not None else None for w in (wf, wb)]
    if length == 0 or batch == 0 or dim == 0:
        dx.zero_()
        return dx, [None if w is None else (torch.zeros(dim, k_user, **f32), torch.zeros(dim, **f32)) for w in (wf, wb)]
    dummy = dx
    dyf = dyf if dyf is not None else dummy
    dyb = dyb if dyb is not None else dummy
    _bwd_onepass(x, wf, bf, wb, bb, dyf, dyb, silu, dx, parts, cfg, k, four)
    grads = []
    for p in parts:
        if p is None:
            grads.append(None)
        else:
            s = p.sum(0)  # (D, K + 1): a fixed-order reduction over (batch, position block) rows
            grads.append((s[:, k - k_user:k], s[:, k]))
    return dx, grads


def _bwd_onepass(x, wf, bf, wb, bb, dyf, dyb, silu, dx, parts, cfg, k, four):
    """The one-launch backward: written out for K = 4 (``four``) or any K."""
    dim, length = x.shape[1:]
    dummy = dx
    LAST_LAUNCH["conv_bwd"] = (conv_bwd4_kernel if four else conv_bwd_kernel)[cfg["grid"]](
        x, wf if wf is not None else dummy, bf if bf is not None else dummy, wb if wb is not None else dummy,
        bb if bb is not None else dummy, dyf, dyb, dx,
        parts[0] if parts[0] is not None else dummy, parts[1] if parts[1] is not None else dummy,
        dim, length, cfg["n_dblk"], cfg["n_lgrp"], *x.stride(), *dyf.stride(), *dyb.stride(), *dx.stride()[:2],
        *([cfg["n_lblk"]] if four else []), K=k, HAS_F=wf is not None, HAS_B=wb is not None,
        HAS_BIAS_F=bf is not None, HAS_BIAS_B=bb is not None,
        SILU=silu, ACC=_acc(x.dtype), BLOCK_D=cfg["BLOCK_D"], BLOCK_L=cfg["BLOCK_L"], num_warps=cfg["num_warps"],
        **({"LTILES": cfg["LTILES"]} if four else {}))


class _CausalConv1dFn(torch.autograd.Function):
    """``apply(x, w_f, b_f, w_b, b_b, silu)`` -> (y_f, y_b); a direction whose weight is None
    is absent (its output None). Saves x and the weights only."""

    @staticmethod
    def forward(ctx, x, wf, bf, wb, bb, silu):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, wf, bf, wb, bb)
        ctx.silu = silu
        yf, yb = _fwd(x, wf, bf, wb, bb, silu)
        return yf, yb

    @staticmethod
    def backward(ctx, dyf, dyb):
        x, wf, bf, wb, bb = ctx.saved_tensors
        # a direction whose output got no gradient contributes nothing (its weights' gradients are 0)
        wf_, wb_ = (wf if dyf is not None else None), (wb if dyb is not None else None)
        if wf_ is None and wb_ is None:
            return None, None, None, None, None, None
        dx, grads = _bwd(x, wf_, bf if wf_ is not None else None, wb_, bb if wb_ is not None else None,
                         dyf, dyb, ctx.silu)
        out = [dx]
        for w, bias, g in ((wf, bf, grads[0]), (wb, bb, grads[1])):
            if w is None:
                out += [None, None]
            elif g is None:  # this direction's output got no gradient
                out += [torch.zeros_like(w), torch.zeros_like(bias) if bias is not None else None]
            else:
                out += [g[0].to(w.dtype), g[1].to(bias.dtype) if bias is not None else None]
        return (out[0] if ctx.needs_input_grad[0] else None, *out[1:], None)


def _prepare(x, weight, bias, activation):
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    if torch.is_autocast_enabled(x.device.type) and x.is_floating_point():
        # as F.conv1d under autocast: activations in the autocast dtype; the weights stay as they are
        # (read in fp32 by the kernels, like the causal-conv1d package)
        x = x.to(torch.get_autocast_dtype(x.device.type))
    if weight is not None and bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must be (D,) = ({weight.shape[0]},), got shape {tuple(bias.shape)}")
    return x, _contig(weight), _contig(bias)


def causal_conv1d_triton(x, weight, bias=None, activation=None, reverse=False):
    """Depthwise causal conv1d on the Triton kernels, forward and backward.

    x (B, D, L), any strides (a channel chunk of ``xz`` is read in place); weight (D, K); bias (D,)
    or None; ``activation`` None or ``"silu"`` (``"swish"``); ``reverse=True``: the anti-causal
    conv ``y_t = sum_k w_k x_{t+K-1-k}`` (= flip -> causal conv -> flip). Returns y (B, D, L),
    contiguous, in x's dtype (the autocast dtype under autocast); fp32 accumulation (fp64 for
    fp64 inputs). Gradients of x, weight, bias (the weight/bias ones reduced deterministically).
    Raises RuntimeError where triton cannot run (no CUDA and no ``TRITON_INTERPRET=1``),
    ValueError on bad shapes or activation."""
    _check(x, [("weight", weight)])
    x, weight, bias = _prepare(x, weight, bias, activation)
    silu = activation is not None
    if reverse:
        return _CausalConv1dFn.apply(x, None, None, weight, bias, silu)[1]
    return _CausalConv1dFn.apply(x, weight, bias, None, None, silu)[0]


def bi_causal_conv1d_triton(x, weight_f, bias_f, weight_b, bias_b, activation="silu"):
    """Both BiMamba convs of the same x in one launch (x read once): returns
    (causal conv of x with (weight_f, bias_f), anti-causal conv of x with (weight_b, bias_b)),
    each ``act(...)`` (B, D, L) contiguous in x's dtype. Shapes, dtypes and errors as
    :func:`causal_conv1d_triton`; the backward is one kernel too (dx summed over both directions)."""
    _check(x, [("weight_f", weight_f), ("weight_b", weight_b)])
    if weight_f.shape != weight_b.shape:
        raise ValueError(f"weight_f {tuple(weight_f.shape)} and weight_b {tuple(weight_b.shape)} must match")
    x, weight_f, bias_f = _prepare(x, weight_f, bias_f, activation)
    _, weight_b, bias_b = _prepare(x, weight_b, bias_b, activation)
    return _CausalConv1dFn.apply(x, weight_f, bias_f, weight_b, bias_b, activation is not None)


def bi_conv_fwd(x, weight_f, bias_f, weight_b, bias_b, silu: bool = True, pitch: int | None = None):
    """Both convs of x (B, D, L) without autograd, for fused functions that write their own backward
    (:class:`videomamba.ops.triton.BiMambaTriton`): weights (D, K), biases (D,) or None; returns
    (y_f, y_b) in x's dtype, each a (B, D, L) view of a (B, D, ``pitch``) buffer whose columns
    past L are zero (``pitch`` None: contiguous)."""
    return tuple(_fwd(x, _contig(weight_f), _contig(bias_f), _contig(weight_b), _contig(bias_b), silu, pitch))


def bi_conv_bwd(x, weight_f, bias_f, weight_b, bias_b, dy_f, dy_b, silu: bool = True, dx=None):
    """Backward of :func:`bi_conv_fwd`: dx (B, D, L) (written into ``dx`` when given), and
    ((dweight_f (D, K), dbias_f (D,)), (dweight_b, dbias_b)) in fp32."""
    return _bwd(x, _contig(weight_f), _contig(bias_f), _contig(weight_b), _contig(bias_b), dy_f, dy_b, silu, dx)
