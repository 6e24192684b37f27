"""Triton selective scan (mamba-ssm semantics): forward and backward kernels, one direction or
both BiMamba directions in one launch. No C++/CUDA build; runs on the CPU under
``TRITON_INTERPRET=1`` (tests) and compiled on CUDA GPUs.

Recurrence (per batch b, channel d, state n; t in processing order)::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = <C_t, h_t> + D * u_t ;  out_t = y_t * silu(z_t)

Design
------
* Grid ``(cdiv(D, BLOCK_D), batch)``. A program owns ``BLOCK_D`` channels of one batch row and
  all N states; it walks the sequence in tiles of ``BLOCK_L`` positions. Tiles of u/delta/z
  ``(BLOCK_L, BLOCK_D)`` and of B/C ``(BLOCK_L, N)`` are loaded along L (contiguous; B/C are
  shared by the BLOCK_D channels and read from L2). The state ``h (BLOCK_D, N)`` lives in fp32
  registers; inside a tile the recurrence is a ``tl.associative_scan`` over L of the affine pairs
  ``(a, b) = (exp(delta A), delta B u)`` with ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)``,
  then ``h = a_cum * h_carry + b_cum``. The 3D tiles are laid out ``(BLOCK_L, BLOCK_D, N)``,
  position axis FIRST, with ``BLOCK_D * N = 32 * num_warps``: Triton then gives each thread one
  (channel, state) and all BLOCK_L positions, so the scan runs serially in registers (no warp
  shuffles; with L last it took 5 shuffle rounds per element: the sm_90 SASS of the forward
  loop has about half the instructions per element this way, the backward ~25% fewer). Warp
  shuffles remain in the reductions over N (y, du, ddelta), over the block's channels (dB, dC)
  and in Triton's conversions between the coalesced load layout and the compute layout.
* ``reverse`` (and the backward BiMamba direction) is index arithmetic: processing index
  ``t`` reads memory position ``L - 1 - t``. Nothing is flipped or copied.
* Backward (the adjoint of a linear recurrence is the same recurrence run the other way):
  ``g_t = C_t dy_t + a_{t+1} g_{t+1}`` (``g`` = dL/dh_t), a reverse ``associative_scan`` per
  tile. Tiles are visited last to first; each tile first recomputes its forward states from
  the fp32 state saved at the previous tile boundary (the forward pass stores one fp32 state
  ``(N,)`` per (b, d, tile): ``hs (B, D, cdiv(L, BLOCK_L), N)``), so saved memory is
  ``4 N / BLOCK_L`` bytes per (b, d, position) per direction (4 bytes at N=16 and the default
  BLOCK_L=16, i.e. 1/16 of all states; ``VIDEOMAMBA_TRITON_BLOCK_L=32`` halves it at some
  speed; under activation checkpointing it lives only while its layer is recomputed).
  ``a_{t+1}`` is recomputed from a delta tile loaded one position ahead (no register shifts
  needed); ``a_t h_{t-1}`` is taken as ``h_t - b_t``.
  Gradients: du, ddelta, dz written per program; dA, dD, ddelta_bias as per-batch partials
  (summed by torch, deterministic); dB, dC reduced over the program's channels in registers and
  ``atomic_add``-ed in fp32 (one atomic per (program, n, position): D/BLOCK_D per element, so
  their rounding order, and only that, is not deterministic).
* Bidirectional: one program runs both directions of its (b, d-block) one after the other:
  the forward direction writes its gated partial ``(scan + D u) * silu(z)`` to an fp32 buffer
  (the output itself when it is fp32), a CTA barrier, then the backward direction (reverse
  indexing) reads the partial back at the same positions, adds its own and writes the output
  once in the input dtype. No race (same program, barrier between phases), no extra sum
  kernel, one rounding to the output dtype; the cost is one fp32 write+read of the partial per
  element. Parallelism lost by not putting the direction on the grid is recovered by a smaller
  BLOCK_D when the grid would not fill the GPU. The backward kernel has the same structure
  (dz is the one output both directions contribute to).
* Launches: forward 1 kernel (single or bi). Backward (single or bi): 1 memset (the fp32 dB/dC
  accumulator of every direction, one buffer), the kernel, 1 sum (dA/dD/dbias partials of every
  direction, one buffer) and 1 cast (dB/dC to the input dtype; none for fp32). No host syncs
  (CUDA-graph capturable).

Block sizes come from ``_config`` (env overrides ``VIDEOMAMBA_TRITON_BLOCK_D``,
``VIDEOMAMBA_TRITON_BLOCK_L``, ``VIDEOMAMBA_TRITON_NUM_WARPS`` for tuning on a GPU).
"""

from __future__ import annotations

import functools
import math
import os

import torch

try:  # the module must import without triton (dispatch imports it lazily)
    import triton
    import triton.language as tl

    _HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    _HAS_TRITON = False

__all__ = ["selective_scan_triton", "bi_selective_scan_triton", "triton_available"]


def _read_interpret() -> bool:
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _triton_mode() -> bool:
    """Whether triton itself was imported in interpreter mode: its own @jit helpers (tl.sum's
    combine, ...) are then interpreted, and ours must be too. TRITON_INTERPRET must therefore be
    set before triton is first imported in the process (tests/conftest.py does so without CUDA)."""
    try:
        from triton.runtime.interpreter import InterpretedFunction

        return isinstance(tl.standard._sum_combine, InterpretedFunction)
    except Exception:  # pragma: no cover - other triton layouts
        return _read_interpret()


_INTERPRET = _HAS_TRITON and _triton_mode()


def _jit(fn):
    """triton.jit in the mode triton was imported in (whatever TRITON_INTERPRET says now)."""
    if _INTERPRET == _read_interpret():
        return triton.jit(fn)
    if _INTERPRET:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(fn)
    return triton.runtime.jit.JITFunction(fn)


def _interpreting() -> bool:
    return _INTERPRET


def triton_available() -> bool:
    """True when triton imports and its kernels can run here: a CUDA GPU, or the CPU
    interpreter (``TRITON_INTERPRET=1`` when triton was first imported)."""
    return _HAS_TRITON and (_INTERPRET or torch.cuda.is_available())


if _HAS_TRITON:

    @_jit
    def _affine_combine(a1, b1, a2, b2):
        # compose x -> a1 x + b1 (applied first) with x -> a2 x + b2
        return a1 * a2, a2 * b1 + b2

    @_jit
    def _softplus(x):
        # torch's softplus (threshold 20); log1p(e) via the log(w) - ((w-1)-e)/w correction
        e = tl.exp(x)
        w = 1.0 + e
        sp = tl.log(w) - ((w - 1.0) - e) / w
        return tl.where(x > 20.0, x, sp)

    @_jit
    def _sigmoid(x):
        return 1.0 / (1.0 + tl.exp(-x))

    @_jit
    def _load_delta(ptrs, bias, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
        """delta tile (BLOCK_L, BLOCK_D) in fp32 after bias/softplus, 0 where masked; also the
        pre-softplus value (for the softplus gradient). bias: (BLOCK_D,)."""
        raw = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            raw = raw + bias[None, :]
        dt = raw
        if SOFTPLUS:
            dt = _softplus(raw)
        dt = tl.where(mask, dt, 0.0)
        return dt, raw

    @_jit
    def _scan_fwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
        pid_b, d_start, dim, L, n_state, nchunks,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """One direction of the forward scan for channels [d_start, d_start+BLOCK_D) of batch
        row pid_b. Tiles are (BLOCK_L, BLOCK_D, BLOCK_N), position axis first (see module doc).
        out/part are contiguous (B, D, L); hs (B, D, nchunks, N); last (B, D, N)."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d = d_start + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        offs_j = tl.arange(0, BLOCK_L)
        mask_d = offs_d < dim
        mask_n = offs_n < n_state
        mask_dn = mask_d[:, None] & mask_n[None, :]
        A = tl.load(A_ptr + offs_d[:, None] * s_A_d + offs_n[None, :] * s_A_n, mask=mask_dn, other=0.0)
        A2 = (A.to(tl.float32) * LOG2E)[None, :, :]
        Dv = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        bias = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + offs_d[None, :] * s_u_d  # (1, BD)
        dt_row = dt_ptr + b64 * s_dt_b + offs_d[None, :] * s_dt_d
        z_row = z_ptr + b64 * s_z_b + offs_d[None, :] * s_z_d
        o_off = (b64 * dim + offs_d[None, :]) * L
        B_row = B_ptr + b64 * s_B_b + (d_start // dpg_B) * s_B_g + offs_n[None, :] * s_B_n  # (1, BN)
        C_row = C_ptr + b64 * s_C_b + (d_start // dpg_C) * s_C_g + offs_n[None, :] * s_C_n
        hs_row = hs_ptr + ((b64 * dim + offs_d[:, None]) * nchunks) * n_state + offs_n[None, :]
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        last_row = (offs_j == BLOCK_L - 1)[:, None, None]
        for k in range(0, nchunks):
            t = k * BLOCK_L + offs_j
            mask_l = t < L
            if REVERSE:
                pos = (L - 1 - t)[:, None]
            else:
                pos = t[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            mnl = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)  # (BL, BD)
            dt, _raw = _load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mnl, other=0.0).to(tl.float32)  # (BL, BN)
            Ct = tl.load(C_row + pos * s_C_l, mask=mnl, other=0.0).to(tl.float32)
            dA = tl.exp2(dt[:, :, None] * A2)  # (BL, BD, BN)
            dBu = (dt * u)[:, :, None] * Bt[:, None, :]
            a_cum, b_cum = tl.associative_scan((dA, dBu), 0, _affine_combine)
            hh = a_cum * h[None, :, :] + b_cum
            y = tl.sum(hh * Ct[:, None, :], axis=2)  # (BL, BD)
            h = tl.sum(tl.where(last_row, hh, 0.0), axis=0)  # padded positions carry h unchanged
            if HAS_D:
                y += Dv[None, :] * u
            if HAS_Z:
                zt = tl.load(z_row + pos, mask=m2, other=0.0).to(tl.float32)
                y *= zt * _sigmoid(zt)
            if ACCUMULATE:
                y += tl.load(part_ptr + o_off + pos, mask=m2, other=0.0)
            if TO_PART:
                tl.store(part_ptr + o_off + pos, y.to(part_ptr.dtype.element_ty), mask=m2)
            else:
                tl.store(out_ptr + o_off + pos, y.to(out_ptr.dtype.element_ty), mask=m2)
            if STORE_STATES:
                tl.store(hs_row + k * n_state, h, mask=mask_dn)
        if RETURN_LAST:
            tl.store(last_ptr + (b64 * dim + offs_d[:, None]) * n_state + offs_n[None, :], h, mask=mask_dn)

    @_jit
    def _scan_bwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr,
        du_ptr, ddt_ptr, dz_ptr, dzpart_ptr, dsmall_ptr, dB_ptr, dC_ptr,
        G_B, G_C,
        pid_b, d_start, dim, L, n_state, nchunks,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Backward of one direction. du, ddt, dz(part) contiguous (B, D, L); dsmall (B, D, N+2)
        fp32 per-batch partials [dA | dD | dbias]; dB (B, G_B, N, L), dC (B, G_C, N, L) fp32,
        accumulated atomically."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d = d_start + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        offs_j = tl.arange(0, BLOCK_L)
        mask_d = offs_d < dim
        mask_n = offs_n < n_state
        mask_dn = mask_d[:, None] & mask_n[None, :]
        A = tl.load(A_ptr + offs_d[:, None] * s_A_d + offs_n[None, :] * s_A_n, mask=mask_dn, other=0.0).to(tl.float32)
        A3 = A[None, :, :]
        A2 = A3 * LOG2E
        Dv = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        bias = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + offs_d[None, :] * s_u_d  # (1, BD)
        dt_row = dt_ptr + b64 * s_dt_b + offs_d[None, :] * s_dt_d
        z_row = z_ptr + b64 * s_z_b + offs_d[None, :] * s_z_d
        do_row = dout_ptr + b64 * s_do_b + offs_d[None, :] * s_do_d
        o_off = (b64 * dim + offs_d[None, :]) * L
        gB = d_start // dpg_B
        gC = d_start // dpg_C
        B_row = B_ptr + b64 * s_B_b + gB * s_B_g + offs_n[None, :] * s_B_n  # (1, BN)
        C_row = C_ptr + b64 * s_C_b + gC * s_C_g + offs_n[None, :] * s_C_n
        dB_row = dB_ptr + ((b64 * G_B + gB) * n_state + offs_n[None, :]) * L
        dC_row = dC_ptr + ((b64 * G_C + gC) * n_state + offs_n[None, :]) * L
        hs_row = hs_ptr + ((b64 * dim + offs_d[:, None]) * nchunks) * n_state + offs_n[None, :]
        g_carry = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        if HAS_DLAST:
            g_carry = tl.load(dlast_ptr + (b64 * dim + offs_d[:, None]) * n_state + offs_n[None, :],
                              mask=mask_dn, other=0.0).to(tl.float32)
        dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        dD_acc = tl.zeros([BLOCK_L, BLOCK_D], dtype=tl.float32)  # reduced over L after the loop
        dbias_acc = tl.zeros([BLOCK_L, BLOCK_D], dtype=tl.float32)
        first_row = (offs_j == 0)[:, None, None]
        for kk in range(0, nchunks):
            k = nchunks - 1 - kk
            t = k * BLOCK_L + offs_j
            t1 = t + 1
            mask_l = t < L
            mask_l1 = t1 < L
            if REVERSE:
                pos = (L - 1 - t)[:, None]
                pos1 = (L - 1 - t1)[:, None]
            else:
                pos = t[:, None]
                pos1 = t1[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            m2n = mask_l1[:, None] & mask_d[None, :]
            mnl = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)  # (BL, BD)
            dt, raw = _load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            dt1, _raw1 = _load_delta(dt_row + pos1, bias, m2n, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mnl, other=0.0).to(tl.float32)  # (BL, BN)
            Ct = tl.load(C_row + pos * s_C_l, mask=mnl, other=0.0).to(tl.float32)
            dout = tl.load(do_row + pos, mask=m2, other=0.0).to(tl.float32)
            # state entering this tile (saved by the forward pass at the previous boundary)
            h0 = tl.load(hs_row + (k - 1) * n_state, mask=mask_dn & (k > 0), other=0.0)
            # recompute the tile's forward states (BL, BD, BN)
            dA = tl.exp2(dt[:, :, None] * A2)
            dBu = (dt * u)[:, :, None] * Bt[:, None, :]
            a_cum, b_cum = tl.associative_scan((dA, dBu), 0, _affine_combine)
            hh = a_cum * h0[None, :, :] + b_cum  # h_t
            if HAS_Z:
                zt = tl.load(z_row + pos, mask=m2, other=0.0).to(tl.float32)
                sig = _sigmoid(zt)
                y = tl.sum(hh * Ct[:, None, :], axis=2) + Dv[None, :] * u
                dz = dout * y * sig * (1.0 + zt * (1.0 - sig))
                dy = dout * zt * sig
                if ACCUMULATE:
                    dz += tl.load(dzpart_ptr + o_off + pos, mask=m2, other=0.0)
                if TO_PART:
                    tl.store(dzpart_ptr + o_off + pos, dz.to(dzpart_ptr.dtype.element_ty), mask=m2)
                else:
                    tl.store(dz_ptr + o_off + pos, dz.to(dz_ptr.dtype.element_ty), mask=m2)
            else:
                dy = dout
            # adjoint: g_t = C_t dy_t + a_{t+1} g_{t+1}; a_{t+1} := 1 past the end (g_carry = dlast)
            a_next = tl.where(mask_l1[:, None, None], tl.exp2(dt1[:, :, None] * A2), 1.0)
            beta = Ct[:, None, :] * dy[:, :, None]
            ga, gb = tl.associative_scan((a_next, beta), 0, _affine_combine, reverse=True)
            g = gb + ga * g_carry[None, :, :]
            g_carry = tl.sum(tl.where(first_row, g, 0.0), axis=0)
            hb = hh - dBu  # a_t * h_{t-1}
            gdt = g * dt[:, :, None]
            du = tl.sum(gdt * Bt[:, None, :], axis=2) + dy * Dv[None, :]
            ddt = tl.sum(g * (Bt[:, None, :] * u[:, :, None] + A3 * hb), axis=2)
            if SOFTPLUS:
                ddt = ddt * _sigmoid(raw)
            ddt = tl.where(m2, ddt, 0.0)
            dA_acc += tl.sum(gdt * hb, axis=0)
            dD_acc += dy * u
            dbias_acc += ddt
            tl.store(du_ptr + o_off + pos, du.to(du_ptr.dtype.element_ty), mask=m2)
            tl.store(ddt_ptr + o_off + pos, ddt.to(ddt_ptr.dtype.element_ty), mask=m2)
            dBt = tl.sum(gdt * u[:, :, None], axis=1)  # (BL, BN), summed over the block's channels
            dCt = tl.sum(hh * dy[:, :, None], axis=1)
            tl.atomic_add(dB_row + pos, dBt, mask=mnl)
            tl.atomic_add(dC_row + pos, dCt, mask=mnl)
        s_off = (b64 * dim + offs_d) * (n_state + 2)
        tl.store(dsmall_ptr + s_off[:, None] + offs_n[None, :], dA_acc, mask=mask_dn)
        tl.store(dsmall_ptr + s_off + n_state, tl.sum(dD_acc, axis=0), mask=mask_d)
        tl.store(dsmall_ptr + s_off + n_state + 1, tl.sum(dbias_acc, axis=0), mask=mask_d)

    @_jit
    def _fwd_kernel(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, out_ptr, last_ptr,
        dim, L, n_state, nchunks,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        _scan_fwd_dir(
            u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr,
            s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
            s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
            z_ptr, s_z_b, s_z_d, out_ptr, out_ptr, last_ptr,
            pid_b, d_start, dim, L, n_state, nchunks,
            REVERSE, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, False, False, STORE_STATES, RETURN_LAST,
            BLOCK_D, BLOCK_N, BLOCK_L,
        )

    @_jit
    def _bwd_kernel(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr,
        du_ptr, ddt_ptr, dz_ptr, dsmall_ptr, dB_ptr, dC_ptr, G_B, G_C,
        dim, L, n_state, nchunks,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        _scan_bwd_dir(
            u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr,
            s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
            s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
            z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr,
            du_ptr, ddt_ptr, dz_ptr, dz_ptr, dsmall_ptr, dB_ptr, dC_ptr, G_B, G_C,
            pid_b, d_start, dim, L, n_state, nchunks,
            REVERSE, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, HAS_DLAST, False, False,
            BLOCK_D, BLOCK_N, BLOCK_L,
        )

    @_jit
    def _bi_fwd_kernel(
        fu, fdt, fA, fB, fC, fD, fbias, fhs,
        fs_u_b, fs_u_d, fs_dt_b, fs_dt_d, fs_A_d, fs_A_n,
        fs_B_b, fs_B_g, fs_B_n, fs_B_l, fs_C_b, fs_C_g, fs_C_n, fs_C_l, fdpg_B, fdpg_C,
        bu, bdt, bA, bB, bC, bD, bbias, bhs,
        bs_u_b, bs_u_d, bs_dt_b, bs_dt_d, bs_A_d, bs_A_n,
        bs_B_b, bs_B_g, bs_B_n, bs_B_l, bs_C_b, bs_C_g, bs_C_n, bs_C_l, bdpg_B, bdpg_C,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr,
        dim, L, n_state, nchunks,
        HAS_DF: tl.constexpr, HAS_DB: tl.constexpr, HAS_BIASF: tl.constexpr, HAS_BIASB: tl.constexpr,
        SOFTPLUS: tl.constexpr, STORE_STATES: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Both directions for one (batch row, channel block): forward direction into the fp32
        partial, barrier, backward direction (reverse indexing) adds and writes out."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        _scan_fwd_dir(
            fu, fdt, fA, fB, fC, fD, fbias, fhs,
            fs_u_b, fs_u_d, fs_dt_b, fs_dt_d, fs_A_d, fs_A_n,
            fs_B_b, fs_B_g, fs_B_n, fs_B_l, fs_C_b, fs_C_g, fs_C_n, fs_C_l, fdpg_B, fdpg_C,
            z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, out_ptr,
            pid_b, d_start, dim, L, n_state, nchunks,
            False, HAS_DF, True, HAS_BIASF, SOFTPLUS, False, True, STORE_STATES, False,
            BLOCK_D, BLOCK_N, BLOCK_L,
        )
        tl.debug_barrier()
        _scan_fwd_dir(
            bu, bdt, bA, bB, bC, bD, bbias, bhs,
            bs_u_b, bs_u_d, bs_dt_b, bs_dt_d, bs_A_d, bs_A_n,
            bs_B_b, bs_B_g, bs_B_n, bs_B_l, bs_C_b, bs_C_g, bs_C_n, bs_C_l, bdpg_B, bdpg_C,
            z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, out_ptr,
            pid_b, d_start, dim, L, n_state, nchunks,
            True, HAS_DB, True, HAS_BIASB, SOFTPLUS, True, False, STORE_STATES, False,
            BLOCK_D, BLOCK_N, BLOCK_L,
        )

    @_jit
    def _bi_bwd_kernel(
        fu, fdt, fA, fB, fC, fD, fbias, fhs,
        fs_u_b, fs_u_d, fs_dt_b, fs_dt_d, fs_A_d, fs_A_n,
        fs_B_b, fs_B_g, fs_B_n, fs_B_l, fs_C_b, fs_C_g, fs_C_n, fs_C_l, fdpg_B, fdpg_C,
        fdu, fddt, fdsmall, fdB, fdC, fG_B, fG_C,
        bu, bdt, bA, bB, bC, bD, bbias, bhs,
        bs_u_b, bs_u_d, bs_dt_b, bs_dt_d, bs_A_d, bs_A_n,
        bs_B_b, bs_B_g, bs_B_n, bs_B_l, bs_C_b, bs_C_g, bs_C_n, bs_C_l, bdpg_B, bdpg_C,
        bdu, bddt, bdsmall, bdB, bdC, bG_B, bG_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dz_ptr, dzpart_ptr,
        dim, L, n_state, nchunks,
        HAS_DF: tl.constexpr, HAS_DB: tl.constexpr, HAS_BIASF: tl.constexpr, HAS_BIASB: tl.constexpr,
        SOFTPLUS: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        _scan_bwd_dir(
            fu, fdt, fA, fB, fC, fD, fbias, fhs,
            fs_u_b, fs_u_d, fs_dt_b, fs_dt_d, fs_A_d, fs_A_n,
            fs_B_b, fs_B_g, fs_B_n, fs_B_l, fs_C_b, fs_C_g, fs_C_n, fs_C_l, fdpg_B, fdpg_C,
            z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, fhs,
            fdu, fddt, dz_ptr, dzpart_ptr, fdsmall, fdB, fdC, fG_B, fG_C,
            pid_b, d_start, dim, L, n_state, nchunks,
            False, HAS_DF, True, HAS_BIASF, SOFTPLUS, False, False, True,
            BLOCK_D, BLOCK_N, BLOCK_L,
        )
        tl.debug_barrier()
        _scan_bwd_dir(
            bu, bdt, bA, bB, bC, bD, bbias, bhs,
            bs_u_b, bs_u_d, bs_dt_b, bs_dt_d, bs_A_d, bs_A_n,
            bs_B_b, bs_B_g, bs_B_n, bs_B_l, bs_C_b, bs_C_g, bs_C_n, bs_C_l, bdpg_B, bdpg_C,
            z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, bhs,
            bdu, bddt, dz_ptr, dzpart_ptr, bdsmall, bdB, bdC, bG_B, bG_C,
            pid_b, d_start, dim, L, n_state, nchunks,
            True, HAS_DB, True, HAS_BIASB, SOFTPLUS, False, True, False,
            BLOCK_D, BLOCK_N, BLOCK_L,
        )


# ----------------------------------------------------------------------------------------------
# host side


LAST_LAUNCH: dict = {}  # kernel name -> handle returned by its last launch (n_regs, n_spills when compiled)


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v else None


def _pow2_divisor(x: int, cap: int) -> int:
    """Largest power of two <= cap dividing x."""
    p = 1
    while p * 2 <= cap and x % (p * 2) == 0:
        p *= 2
    return p


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _config(batch: int, dim: int, n_state: int, length: int, group_dims: tuple[int, ...], device) -> dict:
    """Block sizes. On the GPU: one thread per (channel, state) of the block (BLOCK_D * BLOCK_N =
    32 * num_warps; BLOCK_D = 8, 4 warps at N = 16) and BLOCK_L = 16 positions per thread, so
    the scan over positions runs serially in each thread's registers with no warp splitting L.
    BLOCK_D (and the warps) shrink when the grid would not give every SM two programs (small
    batch). Chosen from the sm_90 SASS of the compiled kernels (warp instructions per element in
    the loop: forward ~0.8, backward ~3.3, vs ~1.2 / ~4.2 when warps split L and ~1.7 / ~4.5 with
    L last; no spills, ~80 / ~230 registers; BLOCK_L = 32 spills in the backward); to be
    confirmed by timing on a GPU.
    Env overrides: VIDEOMAMBA_TRITON_BLOCK_D / _BLOCK_L / _NUM_WARPS (BLOCK_L=32 halves the saved
    boundary states)."""
    block_n = max(triton.next_power_of_2(n_state), 2)
    if _interpreting() or device.type != "cuda":
        block_d = 4  # small tiles: the interpreter's scan runs per element in Python
        block_l = max(16, min(256 // (block_d * block_n), triton.next_power_of_2(max(length, 1))))
    else:
        n_sm = _sm_count(device.index if device.index is not None else torch.cuda.current_device())
        block_d, block_l = max(1, min(8, 128 // block_n)), 16
        while block_d > 2 and batch * triton.cdiv(dim, block_d) < 2 * n_sm:
            block_d //= 2
    block_d = _env_int("VIDEOMAMBA_TRITON_BLOCK_D") or block_d
    for g in group_dims:  # a channel block must not straddle a B/C group (g = channels per group)
        if g != dim and g % block_d:
            block_d = _pow2_divisor(g, block_d)
    block_l = _env_int("VIDEOMAMBA_TRITON_BLOCK_L") or block_l
    num_warps = min(8, max(1, block_d * block_n // 32))
    num_warps = _env_int("VIDEOMAMBA_TRITON_NUM_WARPS") or num_warps
    return dict(BLOCK_D=block_d, BLOCK_N=block_n, BLOCK_L=block_l, num_warps=num_warps)


def _lastdim_contig(t):
    return t if t is None or t.stride(-1) == 1 else t.contiguous()


class _Dir:
    """Arguments of one scan direction, normalised for the kernels."""

    def __init__(self, u, delta, A, B, C, D, delta_bias):
        self.u = _lastdim_contig(u)
        self.delta = _lastdim_contig(delta)
        self.A = A
        batch, dim, length = u.shape
        self.B4 = B if B.dim() == 4 else B.unsqueeze(1)
        self.C4 = C if C.dim() == 4 else C.unsqueeze(1)
        self.B_grouped, self.C_grouped = B.dim() == 4, C.dim() == 4
        self.G_B, self.G_C = self.B4.shape[1], self.C4.shape[1]
        if dim % self.G_B or dim % self.C4.shape[1]:
            raise ValueError("d_inner must be a multiple of the number of B/C groups")
        self.D = D.contiguous() if D is not None else None
        self.bias = delta_bias.contiguous() if delta_bias is not None else None
        self.dpg = (dim // self.G_B, dim // self.G_C)

    def ptr_args(self, dummy, hs):
        return [self.u, self.delta, self.A, self.B4, self.C4,
                self.D if self.D is not None else dummy,
                self.bias if self.bias is not None else dummy, hs]

    def stride_args(self):
        return [*self.u.stride()[:2], *self.delta.stride()[:2], *self.A.stride(),
                *self.B4.stride(), *self.C4.stride(), *self.dpg]

    def grad_args(self, buf):
        """The kernel's per-direction gradient pointers (after stride_args)."""
        return [buf["du"], buf["ddt"], buf["small"], buf["dB"], buf["dC"], self.G_B, self.G_C]


class _GradBuffers:
    """Gradient outputs of one or two directions, packed so that the host side costs few
    launches: one fp32 (ndir, B, D, N+2) buffer for the per-batch partials [dA | dD | dbias]
    (one sum), one zeroed fp32 buffer for every dB/dC (one memset, one cast)."""

    def __init__(self, dirs, batch, dim, n_state, length):
        dev = dirs[0].u.device
        self.dirs, self.n_state = dirs, n_state
        self.small = torch.empty(len(dirs), batch, dim, n_state + 2, device=dev, dtype=torch.float32)
        shapes = [s for d in dirs for s in ((batch, d.G_B, n_state, length), (batch, d.G_C, n_state, length))]
        sizes = [math.prod(s) for s in shapes]
        self.big = torch.zeros(sum(sizes), device=dev, dtype=torch.float32)
        self.views = []  # (offset, shape) of dB, dC per direction
        off = 0
        for shape, size in zip(shapes, sizes):
            self.views.append((off, shape))
            off += size
        self.bufs = []
        for i, d in enumerate(dirs):
            (ob, sb), (oc, sc) = self.views[2 * i], self.views[2 * i + 1]
            self.bufs.append(dict(
                du=torch.empty(batch, dim, length, device=dev, dtype=d.u.dtype),
                ddt=torch.empty(batch, dim, length, device=dev, dtype=d.delta.dtype),
                small=self.small[i],
                dB=self.big[ob:ob + math.prod(sb)].view(sb),
                dC=self.big[oc:oc + math.prod(sc)].view(sc),
            ))

    def grads(self, Bs, Cs):
        """Per direction (du, ddelta, dA, dB, dC, dD, ddelta_bias) in the inputs' dtypes/shapes."""
        n = self.n_state
        small = self.small.sum(1)  # (ndir, D, N+2)
        dtypes = {t.dtype for t in (*Bs, *Cs)}
        big = self.big.to(dtypes.pop()) if len(dtypes) == 1 else None  # one cast for all dB/dC
        out = []
        for i, (d, B, C) in enumerate(zip(self.dirs, Bs, Cs)):
            dBC = []
            for (off, shape), grouped, like in ((self.views[2 * i], d.B_grouped, B),
                                                (self.views[2 * i + 1], d.C_grouped, C)):
                src = big if big is not None else self.big
                g = src[off:off + math.prod(shape)].view(shape).to(like.dtype)
                dBC.append(g if grouped else g[:, 0])
            dA = small[i, :, :n].to(d.A.dtype)
            dD = small[i, :, n].to(d.D.dtype) if d.D is not None else None
            dbias = small[i, :, n + 1].to(d.bias.dtype) if d.bias is not None else None
            out.append((self.bufs[i]["du"], self.bufs[i]["ddt"], dA, dBC[0], dBC[1], dD, dbias))
        return out


def _dims(d: _Dir):
    batch, dim, length = d.u.shape
    return batch, dim, length, d.A.shape[1]


def _check(u, A):
    if not triton_available():
        raise RuntimeError("triton is not usable here (needs CUDA, or TRITON_INTERPRET=1)")
    if not _interpreting() and u.device.type != "cuda":
        raise RuntimeError(f"compiled triton needs CUDA tensors, got {u.device} (TRITON_INTERPRET=1 runs on CPU)")
    if A.is_complex():
        raise TypeError("complex A is not supported")


def _fwd(d: _Dir, z, softplus, reverse, store_states, return_last):
    batch, dim, length, n_state = _dims(d)
    cfg = _config(batch, dim, n_state, length, d.dpg, d.u.device)
    nchunks = triton.cdiv(length, cfg["BLOCK_L"])
    out = torch.empty(batch, dim, length, device=d.u.device, dtype=d.u.dtype)
    f32 = dict(device=d.u.device, dtype=torch.float32)
    hs = torch.empty(batch, dim, nchunks if store_states else 1, n_state, **f32)
    last = torch.empty(batch, dim, n_state, **f32) if return_last else hs
    zz = _lastdim_contig(z) if z is not None else out
    grid = (triton.cdiv(dim, cfg["BLOCK_D"]), batch)
    LAST_LAUNCH["fwd"] = _fwd_kernel[grid](
        *d.ptr_args(out, hs), *d.stride_args(),
        zz, zz.stride(0), zz.stride(1), out, last,
        dim, length, n_state, nchunks,
        REVERSE=reverse, HAS_D=d.D is not None, HAS_Z=z is not None, HAS_BIAS=d.bias is not None,
        SOFTPLUS=softplus, STORE_STATES=store_states, RETURN_LAST=return_last, **cfg,
    )
    return out, hs, (last if return_last else None), cfg


def _bwd(d: _Dir, z, hs, dout, dlast, softplus, reverse, cfg):
    batch, dim, length, n_state = _dims(d)
    nchunks = hs.shape[2]
    dout = _lastdim_contig(dout)
    gb = _GradBuffers([d], batch, dim, n_state, length)
    dz = torch.empty_like(z, memory_format=torch.contiguous_format) if z is not None else dout
    zz = _lastdim_contig(z) if z is not None else dout
    dl = dlast.contiguous() if dlast is not None else hs
    grid = (triton.cdiv(dim, cfg["BLOCK_D"]), batch)
    LAST_LAUNCH["bwd"] = _bwd_kernel[grid](
        *d.ptr_args(dout, hs), *d.stride_args(),
        zz, zz.stride(0), zz.stride(1), dout, dout.stride(0), dout.stride(1), dl,
        gb.bufs[0]["du"], gb.bufs[0]["ddt"], dz, gb.bufs[0]["small"], gb.bufs[0]["dB"], gb.bufs[0]["dC"],
        d.G_B, d.G_C,
        dim, length, n_state, nchunks,
        REVERSE=reverse, HAS_D=d.D is not None, HAS_Z=z is not None, HAS_BIAS=d.bias is not None,
        SOFTPLUS=softplus, HAS_DLAST=dlast is not None, **cfg,
    )
    return gb, (dz if z is not None else None)


class _SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, return_last, reverse):
        d = _Dir(u, delta, A, B, C, D, delta_bias)
        out, hs, last, cfg = _fwd(d, z, softplus, reverse, store_states=True, return_last=return_last)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, hs)
        ctx.cfg, ctx.flags = cfg, (softplus, reverse)
        if return_last:  # the last state is differentiable too: its gradient seeds the adjoint
            return out, last
        return out

    @staticmethod
    def backward(ctx, dout, dlast=None):
        u, delta, A, B, C, D, z, delta_bias, hs = ctx.saved_tensors
        softplus, reverse = ctx.flags
        d = _Dir(u, delta, A, B, C, D, delta_bias)
        gb, dz = _bwd(d, z, hs, dout, dlast, softplus, reverse, ctx.cfg)
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
    _check(u, A)
    if _needs_grad(u, delta, A, B, C, D, z, delta_bias):
        return _SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus),
                                      bool(return_last_state), bool(reverse))
    d = _Dir(u, delta, A, B, C, D, delta_bias)
    out, _hs, last, _cfg = _fwd(d, z, bool(delta_softplus), bool(reverse), False, bool(return_last_state))
    return (out, last) if return_last_state else out


def _bi_fwd(df: _Dir, db: _Dir, z, softplus, store_states):
    batch, dim, length, n_state = _dims(df)
    cfg = _config(batch, dim, n_state, length, df.dpg + db.dpg, df.u.device)
    nchunks = triton.cdiv(length, cfg["BLOCK_L"])
    dev = df.u.device
    out = torch.empty(batch, dim, length, device=dev, dtype=df.u.dtype)
    part = out if out.dtype == torch.float32 else torch.empty(batch, dim, length, device=dev, dtype=torch.float32)
    shape = (batch, dim, nchunks if store_states else 1, n_state)
    hs_f = torch.empty(shape, device=dev, dtype=torch.float32)
    hs_b = torch.empty(shape, device=dev, dtype=torch.float32)
    zz = _lastdim_contig(z)
    grid = (triton.cdiv(dim, cfg["BLOCK_D"]), batch)
    LAST_LAUNCH["bi_fwd"] = _bi_fwd_kernel[grid](
        *df.ptr_args(out, hs_f), *df.stride_args(),
        *db.ptr_args(out, hs_b), *db.stride_args(),
        zz, zz.stride(0), zz.stride(1), out, part,
        dim, length, n_state, nchunks,
        HAS_DF=df.D is not None, HAS_DB=db.D is not None,
        HAS_BIASF=df.bias is not None, HAS_BIASB=db.bias is not None,
        SOFTPLUS=softplus, STORE_STATES=store_states, **cfg,
    )
    return out, hs_f, hs_b, cfg


class _BiSelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, softplus):
        df = _Dir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f)
        db = _Dir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)
        out, hs_f, hs_b, cfg = _bi_fwd(df, db, z, softplus, store_states=True)
        ctx.save_for_backward(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                              u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, hs_f, hs_b)
        ctx.cfg, ctx.softplus = cfg, softplus
        return out

    @staticmethod
    def backward(ctx, dout):
        (u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
         u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, hs_f, hs_b) = ctx.saved_tensors
        df = _Dir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f)
        db = _Dir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)
        batch, dim, length, n_state = _dims(df)
        cfg = ctx.cfg
        dout = _lastdim_contig(dout)
        zz = _lastdim_contig(z)
        gbuf = _GradBuffers([df, db], batch, dim, n_state, length)
        bf, bb = gbuf.bufs
        dz = torch.empty(batch, dim, length, device=z.device, dtype=z.dtype)
        dzpart = dz if dz.dtype == torch.float32 else torch.empty(batch, dim, length, device=z.device,
                                                                  dtype=torch.float32)
        grid = (triton.cdiv(dim, cfg["BLOCK_D"]), batch)

        LAST_LAUNCH["bi_bwd"] = _bi_bwd_kernel[grid](
            *df.ptr_args(dout, hs_f), *df.stride_args(), *df.grad_args(bf),
            *db.ptr_args(dout, hs_b), *db.stride_args(), *db.grad_args(bb),
            zz, zz.stride(0), zz.stride(1), dout, dout.stride(0), dout.stride(1), dz, dzpart,
            dim, length, n_state, hs_f.shape[2],
            HAS_DF=df.D is not None, HAS_DB=db.D is not None,
            HAS_BIASF=df.bias is not None, HAS_BIASB=db.bias is not None,
            SOFTPLUS=ctx.softplus, **cfg,
        )
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
    _check(u_f, A_f)
    if u_f.shape != u_b.shape or z is None or z.shape != u_f.shape or A_f.shape != A_b.shape:
        raise ValueError("bi_selective_scan_triton: u_f, u_b, z must share (B, D, L) and A_f, A_b (D, N)")
    args = (u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f, u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z)
    if _needs_grad(*args):
        return _BiSelectiveScanFn.apply(*args, bool(delta_softplus))
    df = _Dir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f)
    db = _Dir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)
    out, _f, _b, _cfg = _bi_fwd(df, db, z, bool(delta_softplus), store_states=False)
    return out
