"""Triton selective scan (mamba-ssm semantics): forward and backward kernels, one direction or
both BiMamba directions in one launch. No C++/CUDA build; runs on the CPU under
``TRITON_INTERPRET=1`` (tests) and compiled on CUDA GPUs.

Recurrence (per batch b, channel d, state n; t in processing order)::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = <C_t, h_t> + D * u_t ;  out_t = y_t * silu(z_t)

Design
------
* Grid ``(cdiv(D, BLOCK_D), batch, nseg)``. A program owns ``BLOCK_D`` channels of one batch
  row and all N states over one *segment* of the sequence (``tps`` tiles of ``BLOCK_L``
  positions), which it walks tile by tile. Tiles of u/delta/z ``(BLOCK_L, BLOCK_D)`` and of B/C
  ``(BLOCK_L, N)`` are loaded along L (contiguous; B/C are shared by the BLOCK_D channels and
  read from L2). The state ``h (BLOCK_D, N)`` lives in fp32 registers; inside a tile the
  recurrence is a ``tl.associative_scan`` over L of the affine pairs ``(a, b) = (exp(delta A),
  delta B u)`` with ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)``, then ``h = a_cum * h_carry +
  b_cum``. The 3D tiles are laid out ``(BLOCK_L, BLOCK_D, N)``, position axis FIRST: Triton then
  gives each thread whole (channel, state) rows of BLOCK_L positions, so the scan runs serially
  in registers (no warp shuffles). Warp shuffles remain in the reductions over N (y, du,
  ddelta), over the block's channels (dB, dC) and in Triton's layout conversions.
* Segments: a program cannot wait for the one before it, so with ``nseg > 1`` a first launch
  writes each segment's *summary*: for the forward recurrence the state at the segment's end
  when entered with 0 and its summed delta (the segment maps ``h -> exp(A sum delta) h + h_end``),
  in closed form per tile (``sum_t exp(A (tot - cumsum_t)) delta_t B_t u_t``: one exp per
  element, no scan, exponents <= 0). The main launch folds the summaries of the earlier
  segments into its entering state. The backward does the same for the adjoint (summary: the
  adjoint at the segment's first position with nothing coming in, and the delta summed one
  position ahead; it needs no forward state since ``dy = dout * silu(z)``). Segments are added
  until the grid has ~8 programs per SM: one program walking the whole of a long clip on a small
  batch left most of an H100 idle (forward 1.9x faster at 64 frames, batch 4).
* Tiles are in position space for both directions: ``reverse`` (and the backward BiMamba
  direction) visits tiles last to first and reads each tile's rows in descending position
  (index arithmetic; nothing is flipped or copied); padding past L is the identity step.
* Backward (the adjoint of a linear recurrence is the same recurrence run the other way):
  ``g_t = C_t dy_t + a_{t+1} g_{t+1}`` (``g`` = dL/dh_t), a reverse ``associative_scan`` per
  tile. Tiles are visited in reverse processing order; each tile first recomputes its forward
  states from the fp32 state the forward pass saved after the tile before it (one ``(N,)`` state
  per (b, d, tile): ``hs (B, D, cdiv(L, BLOCK_L), N)``), so saved memory is ``4 N / BLOCK_L``
  bytes per (b, d, position) per direction (4 bytes at N=16 and BLOCK_L=16; under activation
  checkpointing it lives only while its layer is recomputed). ``a_{t+1}`` is recomputed from a
  delta tile loaded one position ahead; ``a_t h_{t-1}`` is taken as ``h_t - b_t``.
  Gradients: du, ddelta, dz written per program; dA, dD, ddelta_bias as per-(segment, batch)
  partials (summed by torch, deterministic); dB, dC reduced over the program's channels in
  registers and ``atomic_add``-ed in fp32 (one atomic per (program, n, position): D/BLOCK_D per
  element, so their rounding order, and only that, is not deterministic). The backward has its
  own blocks (``_config(backward=True)``) and segments; BLOCK_L is the forward's.
* Bidirectional: one program runs both directions over the same positions (its segment), one
  after the other: the forward direction writes its gated partial ``(scan + D u) * silu(z)`` to
  an fp32 buffer (the output itself when it is fp32), a CTA barrier, then the backward direction
  reads the partial back at the same positions, adds its own and writes the output once in the
  input dtype. No race (same program, barrier between phases), no extra sum kernel, one rounding
  to the output dtype. The backward kernel has the same structure (dz is the one output both
  directions contribute to).
* Launches: forward 1 kernel (+1 summary launch when nseg > 1), single or bi. Backward: 1
  memset (the fp32 dB/dC accumulator of every direction, one buffer), the kernel (+1 summary
  launch), 1 sum (dA/dD/dbias partials) and 1 cast (dB/dC to the input dtype; none for fp32).
  No host syncs (CUDA-graph capturable).

Block sizes and segments come from ``_config`` (env overrides ``VIDEOMAMBA_TRITON_BLOCK_D``,
``_BLOCK_L``, ``_NUM_WARPS``, ``_SEGMENTS``, ``_BWD_BLOCK_D``, ``_BWD_NUM_WARPS`` for tuning on a
GPU; ``python -m videomamba.bench.scan_kernels --sweep ...`` times them against mamba-ssm).
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
    def _channel_setup(A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state,
                       HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
                       BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
        """Per-program channel data: offsets/masks, A (BD, BN) fp32, D and delta bias (BD,)."""
        offs_d = d_start + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        mask_d = offs_d < dim
        mask_dn = mask_d[:, None] & (offs_n < n_state)[None, :]
        A = tl.load(A_ptr + offs_d[:, None] * s_A_d + offs_n[None, :] * s_A_n, mask=mask_dn,
                    other=0.0).to(tl.float32)
        Dv = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        bias = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        return offs_d, offs_n, mask_d, mask_dn, A, Dv, bias

    @_jit
    def _tile_index(i, k_lo, k_hi, DESCENDING: tl.constexpr):
        """The i-th tile of [k_lo, k_hi) in ascending or descending order."""
        if DESCENDING:
            k = k_hi - 1 - i
        else:
            k = k_lo + i
        return k

    @_jit
    def _tile_positions(k, offs_j, L, REVERSE: tl.constexpr, BLOCK_L: tl.constexpr):
        """Positions of tile k in processing order (descending when REVERSE), their masks, and
        the next position in processing order (for a_{t+1} in the backward)."""
        if REVERSE:
            pos = k * BLOCK_L + (BLOCK_L - 1 - offs_j)
            pos1 = pos - 1
        else:
            pos = k * BLOCK_L + offs_j
            pos1 = pos + 1
        return pos, pos < L, pos1, (pos1 >= 0) & (pos1 < L)

    @_jit
    def _carry(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, h, start, step, count, n_state):
        """Fold ``count`` segment summaries into a carried state, segment start, start+step, ...:
        ``h <- exp(A * ss_j) * h + sh_j`` (sh (BD, BN) and ss (BD,) at (b, d, j))."""
        for jj in range(0, count):
            j = start + jj * step
            hj = tl.load(sh_ptr + (sum_off[:, None] + j) * n_state + offs_n[None, :], mask=mask_dn, other=0.0)
            sj = tl.load(ss_ptr + sum_off + j, mask=mask_d, other=0.0)
            h = tl.exp2(A2 * sj[:, None]) * h + hj
        return h

    @_jit
    def _fwd_summary_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Segment summary of the forward recurrence: the state at the segment's end when it is
        entered with h = 0, ``sh (B, D, nseg, N)``, and its total delta ``ss (B, D, nseg)`` (the
        segment multiplies an incoming state by exp(A * ss)). Closed form per tile (no scan):
        ``h_end = exp(A tot) h + sum_t exp(A (tot - cumsum_t)) delta_t B_t u_t``."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = _channel_setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, False, HAS_BIAS, BLOCK_D, BLOCK_N)
        A2 = A * LOG2E
        offs_j = tl.arange(0, BLOCK_L)
        mask_n = offs_n < n_state
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + offs_d[None, :] * s_u_d
        dt_row = dt_ptr + b64 * s_dt_b + offs_d[None, :] * s_dt_d
        B_row = B_ptr + b64 * s_B_b + (d_start // dpg_B) * s_B_g + offs_n[None, :] * s_B_n
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        sdt = tl.zeros([BLOCK_D], dtype=tl.float32)
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        for i in range(0, k_hi - k_lo):
            k = _tile_index(i, k_lo, k_hi, REVERSE)
            pos, mask_l, _p1, _m1 = _tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            pos = pos[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)
            dt, _raw = _load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mask_l[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
            tot = tl.sum(dt, axis=0)
            w = tl.exp2((tot[None, :] - tl.cumsum(dt, axis=0))[:, :, None] * A2[None, :, :])
            h = tl.exp2(tot[:, None] * A2) * h + tl.sum(w * ((dt * u)[:, :, None] * Bt[:, None, :]), axis=0)
            sdt += tot
        sum_off = (b64 * dim + offs_d) * nseg + seg
        tl.store(sh_ptr + sum_off[:, None] * n_state + offs_n[None, :], h, mask=mask_dn)
        tl.store(ss_ptr + sum_off, sdt, mask=mask_d)

    @_jit
    def _fwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
        pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """One direction of the forward scan over the tiles of segment ``seg``, for channels
        [d_start, d_start+BLOCK_D) of batch row pid_b, entered with the state carried in from the
        earlier segments' summaries. Tiles are (BLOCK_L, BLOCK_D, BLOCK_N), position axis first.
        out/part contiguous (B, D, L); hs (B, D, ntiles, N): the state after each tile; last (B, D, N)."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = _channel_setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N)
        A2 = A * LOG2E
        offs_j = tl.arange(0, BLOCK_L)
        mask_n = offs_n < n_state
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + offs_d[None, :] * s_u_d  # (1, BD)
        dt_row = dt_ptr + b64 * s_dt_b + offs_d[None, :] * s_dt_d
        z_row = z_ptr + b64 * s_z_b + offs_d[None, :] * s_z_d
        o_off = (b64 * dim + offs_d[None, :]) * L
        B_row = B_ptr + b64 * s_B_b + (d_start // dpg_B) * s_B_g + offs_n[None, :] * s_B_n  # (1, BN)
        C_row = C_ptr + b64 * s_C_b + (d_start // dpg_C) * s_C_g + offs_n[None, :] * s_C_n
        hs_row = hs_ptr + ((b64 * dim + offs_d[:, None]) * ntiles) * n_state + offs_n[None, :]
        # state entering the segment: the summaries of the segments before it, in processing order
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        sum_off = (b64 * dim + offs_d) * nseg
        if REVERSE:
            h = _carry(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, h, nseg - 1, -1, nseg - 1 - seg, n_state)
        else:
            h = _carry(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, h, 0, 1, seg, n_state)
        last_row = (offs_j == BLOCK_L - 1)[:, None, None]
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        for i in range(0, k_hi - k_lo):
            k = _tile_index(i, k_lo, k_hi, REVERSE)
            pos, mask_l, _p1, _m1 = _tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            pos = pos[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            mnl = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)  # (BL, BD)
            dt, _raw = _load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mnl, other=0.0).to(tl.float32)  # (BL, BN)
            Ct = tl.load(C_row + pos * s_C_l, mask=mnl, other=0.0).to(tl.float32)
            dA = tl.exp2(dt[:, :, None] * A2[None, :, :])  # (BL, BD, BN)
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
        if RETURN_LAST:  # the segment scanned last holds the final state
            if REVERSE:
                is_last = seg == 0
            else:
                is_last = seg == nseg - 1
            tl.store(last_ptr + (b64 * dim + offs_d[:, None]) * n_state + offs_n[None, :], h,
                     mask=mask_dn & is_last)

    @_jit
    def _bwd_summary_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
        pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Segment summary of the adjoint recurrence ``g_t = C_t dy_t + a_{t+1} g_{t+1}`` (g =
        dL/dh; a_{t+1} = exp(A delta at the next position in processing order): the adjoint at
        the segment's first position when nothing comes in from after it, ``sh``, and the delta
        summed over the positions one ahead, ``ss`` (the segment multiplies an incoming adjoint
        by exp(A * ss)). It needs no forward state: ``dy = dout * silu(z)``."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = _channel_setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, False, HAS_BIAS, BLOCK_D, BLOCK_N)
        A2 = A * LOG2E
        offs_j = tl.arange(0, BLOCK_L)
        mask_n = offs_n < n_state
        b64 = pid_b.to(tl.int64)
        dt_row = dt_ptr + b64 * s_dt_b + offs_d[None, :] * s_dt_d
        z_row = z_ptr + b64 * s_z_b + offs_d[None, :] * s_z_d
        do_row = dout_ptr + b64 * s_do_b + offs_d[None, :] * s_do_d
        C_row = C_ptr + b64 * s_C_b + (d_start // dpg_C) * s_C_g + offs_n[None, :] * s_C_n
        g = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        s1 = tl.zeros([BLOCK_D], dtype=tl.float32)
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        for i in range(0, k_hi - k_lo):  # tiles last to first in processing order
            k = _tile_index(i, k_lo, k_hi, not REVERSE)
            pos, mask_l, pos1, mask_l1 = _tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            pos = pos[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            dt1, _raw1 = _load_delta(dt_row + pos1[:, None], bias, mask_l1[:, None] & mask_d[None, :],
                                     HAS_BIAS, SOFTPLUS)
            Ct = tl.load(C_row + pos * s_C_l, mask=mask_l[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
            dy = tl.load(do_row + pos, mask=m2, other=0.0).to(tl.float32)
            if HAS_Z:
                zt = tl.load(z_row + pos, mask=m2, other=0.0).to(tl.float32)
                dy = dy * zt * _sigmoid(zt)
            tot1 = tl.sum(dt1, axis=0)
            w = tl.exp2((tl.cumsum(dt1, axis=0) - dt1)[:, :, None] * A2[None, :, :])  # prod a_1..a_t
            g = tl.exp2(tot1[:, None] * A2) * g + tl.sum(w * (Ct[:, None, :] * dy[:, :, None]), axis=0)
            s1 += tot1
        sum_off = (b64 * dim + offs_d) * nseg + seg
        tl.store(sh_ptr + sum_off[:, None] * n_state + offs_n[None, :], g, mask=mask_dn)
        tl.store(ss_ptr + sum_off, s1, mask=mask_d)

    @_jit
    def _bwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        du_ptr, ddt_ptr, dsmall_ptr, dB_ptr, dC_ptr, G_B, G_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
        pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Backward of one direction over segment ``seg``. du, ddt, dz(part) contiguous (B, D, L);
        dsmall (nseg, B, D, N+2) fp32 per-(segment, batch) partials [dA | dD | dbias]; dB
        (B, G_B, N, L), dC (B, G_C, N, L) fp32, accumulated atomically."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = _channel_setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N)
        A2 = A * LOG2E
        A3 = A[None, :, :]
        A23 = A2[None, :, :]
        offs_j = tl.arange(0, BLOCK_L)
        mask_n = offs_n < n_state
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
        hs_row = hs_ptr + ((b64 * dim + offs_d[:, None]) * ntiles) * n_state + offs_n[None, :]
        # adjoint entering the segment from after it: dlast, folded through the later segments
        g_carry = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        if HAS_DLAST:
            g_carry = tl.load(dlast_ptr + (b64 * dim + offs_d[:, None]) * n_state + offs_n[None, :],
                              mask=mask_dn, other=0.0).to(tl.float32)
        sum_off = (b64 * dim + offs_d) * nseg
        if REVERSE:
            g_carry = _carry(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, g_carry, 0, 1, seg, n_state)
        else:
            g_carry = _carry(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, g_carry,
                             nseg - 1, -1, nseg - 1 - seg, n_state)
        dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        dD_acc = tl.zeros([BLOCK_L, BLOCK_D], dtype=tl.float32)  # reduced over L after the loop
        dbias_acc = tl.zeros([BLOCK_L, BLOCK_D], dtype=tl.float32)
        first_row = (offs_j == 0)[:, None, None]
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        for i in range(0, k_hi - k_lo):  # tiles last to first in processing order
            k = _tile_index(i, k_lo, k_hi, not REVERSE)
            pos, mask_l, pos1, mask_l1 = _tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            pos = pos[:, None]
            pos1 = pos1[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            m2n = mask_l1[:, None] & mask_d[None, :]
            mnl = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)  # (BL, BD)
            dt, raw = _load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            dt1, _raw1 = _load_delta(dt_row + pos1, bias, m2n, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mnl, other=0.0).to(tl.float32)  # (BL, BN)
            Ct = tl.load(C_row + pos * s_C_l, mask=mnl, other=0.0).to(tl.float32)
            dout = tl.load(do_row + pos, mask=m2, other=0.0).to(tl.float32)
            # state entering this tile: saved by the forward after the tile before it in processing order
            if REVERSE:
                h0 = tl.load(hs_row + (k + 1) * n_state, mask=mask_dn & (k + 1 < ntiles), other=0.0)
            else:
                h0 = tl.load(hs_row + (k - 1) * n_state, mask=mask_dn & (k > 0), other=0.0)
            # recompute the tile's forward states (BL, BD, BN)
            dA = tl.exp2(dt[:, :, None] * A23)
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
            # adjoint: g_t = C_t dy_t + a_{t+1} g_{t+1}; a := 1 past the end (dt1 = 0 there)
            a_next = tl.exp2(dt1[:, :, None] * A23)
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
        s_off = ((seg * tl.num_programs(1) + b64) * dim + offs_d) * (n_state + 2)
        tl.store(dsmall_ptr + s_off[:, None] + offs_n[None, :], dA_acc, mask=mask_dn)
        tl.store(dsmall_ptr + s_off + n_state, tl.sum(dD_acc, axis=0), mask=mask_d)
        tl.store(dsmall_ptr + s_off + n_state + 1, tl.sum(dbias_acc, axis=0), mask=mask_d)

    @_jit
    def _fwd_kernel(
        u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
        s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
        s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
        u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
        s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
        s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
        dim, L, n_state, ntiles, nseg, tps,
        BI: tl.constexpr, REV0: tl.constexpr, HAS_D0: tl.constexpr, HAS_D1: tl.constexpr,
        HAS_BIAS0: tl.constexpr, HAS_BIAS1: tl.constexpr, HAS_Z: tl.constexpr, SOFTPLUS: tl.constexpr,
        STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr, SUMMARY: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Grid (channel blocks, batch, segments). Not BI: direction 0 (reverse if REV0).
        BI (BiMamba; REV0 False): direction 0 into the fp32 partial, CTA barrier, then
        direction 1 reversed over the same positions adds it and writes the output once.
        SUMMARY: only the segment summaries (first launch when there are several segments)."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        seg = tl.program_id(2)
        if SUMMARY:
            _fwd_summary_dir(
                u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
                s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
                s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
                pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                REV0, HAS_BIAS0, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L)
            if BI:
                _fwd_summary_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                    True, HAS_BIAS1, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L)
        else:
            _fwd_dir(
                u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
                s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
                s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
                z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
                pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                REV0, HAS_D0, HAS_Z, HAS_BIAS0, SOFTPLUS, False, BI, STORE_STATES, RETURN_LAST,
                BLOCK_D, BLOCK_N, BLOCK_L)
            if BI:
                tl.debug_barrier()
                _fwd_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
                    pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                    True, HAS_D1, HAS_Z, HAS_BIAS1, SOFTPLUS, True, False, STORE_STATES, False,
                    BLOCK_D, BLOCK_N, BLOCK_L)

    @_jit
    def _bwd_kernel(
        u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
        s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
        s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
        du0, ddt0, dsmall0, dB0, dC0, G_B0, G_C0,
        u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
        s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
        s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
        du1, ddt1, dsmall1, dB1, dC1, G_B1, G_C1,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
        dim, L, n_state, ntiles, nseg, tps,
        BI: tl.constexpr, REV0: tl.constexpr, HAS_D0: tl.constexpr, HAS_D1: tl.constexpr,
        HAS_BIAS0: tl.constexpr, HAS_BIAS1: tl.constexpr, HAS_Z: tl.constexpr, SOFTPLUS: tl.constexpr,
        HAS_DLAST: tl.constexpr, SUMMARY: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Backward of :func:`_fwd_kernel`, same grid and direction structure (dz is the one
        output both directions contribute to: direction 0 into the fp32 partial, barrier,
        direction 1 adds it)."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        seg = tl.program_id(2)
        if SUMMARY:
            _bwd_summary_dir(
                u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
                s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
                s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
                z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
                pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                REV0, HAS_Z, HAS_BIAS0, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L)
            if BI:
                _bwd_summary_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
                    pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                    True, HAS_Z, HAS_BIAS1, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L)
        else:
            _bwd_dir(
                u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
                s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
                s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
                du0, ddt0, dsmall0, dB0, dC0, G_B0, G_C0,
                z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
                pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                REV0, HAS_D0, HAS_Z, HAS_BIAS0, SOFTPLUS, HAS_DLAST, False, BI,
                BLOCK_D, BLOCK_N, BLOCK_L)
            if BI:
                tl.debug_barrier()
                _bwd_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    du1, ddt1, dsmall1, dB1, dC1, G_B1, G_C1,
                    z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
                    pid_b, d_start, seg, dim, L, n_state, ntiles, nseg, tps,
                    True, HAS_D1, HAS_Z, HAS_BIAS1, SOFTPLUS, False, True, False,
                    BLOCK_D, BLOCK_N, BLOCK_L)


# host side


LAST_LAUNCH: dict = {}  # kernel name -> handle returned by its last launch (n_regs, n_spills when compiled)


def _env_int(name: str, pow2: bool = False) -> int | None:
    """A tuning override from the environment: None when unset; a bad value raises naming it."""
    v = os.environ.get(name)
    if not v:
        return None
    n = int(v) if v.strip().isdigit() else 0
    if n < 1 or (pow2 and n & (n - 1)):
        raise ValueError(f"{name}={v!r}: expected a positive integer{' (a power of two)' if pow2 else ''}")
    return n


def _pow2_divisor(x: int, cap: int) -> int:
    """Largest power of two <= cap dividing x."""
    p = 1
    while p * 2 <= cap and x % (p * 2) == 0:
        p *= 2
    return p


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _config(batch: int, dim: int, n_state: int, length: int, group_dims: tuple[int, ...], device,
            backward: bool = False, block_l: int | None = None) -> dict:
    """Block sizes and the segmentation of the sequence, for the forward or the backward kernel.

    On the GPU: BLOCK_D channels x BLOCK_N states per program and BLOCK_L = 16 positions per
    thread, so the scan over positions runs serially in each thread's registers. The forward
    gives each thread one (channel, state) (BLOCK_D = 8, 4 warps at N = 16); the backward takes
    BLOCK_D = 16 on 4 warps (two (channel, state) pairs per thread: independent chains for the
    scheduler, fewer programs to reduce dB/dC across). Measured on an H100 (bf16, VideoMamba-Ti
    shapes, benchmarks/2026-11-25-h100-triton-segments): backward 1.3-1.4x faster than with the
    forward's blocks; BLOCK_L = 8 or 4 and 1-2 warps were slower or spilled.
    The sequence is cut into ``nseg`` segments of ``tps`` tiles scanned by separate programs
    (grid ``(D / BLOCK_D, batch, nseg)``), enough for ~``SEG_WAVES`` programs per SM: one program
    per (batch, channel block) walking all of L leaves most SMs idle on long clips with small
    batches (forward 1.9x faster at 64 frames, batch 4). Each segment costs a summary pass
    (closed form, no scan) so that it starts from the right state.
    ``block_l``: the forward's BLOCK_L when configuring its backward (they share the saved
    tile-boundary states).
    Env overrides for tuning: VIDEOMAMBA_TRITON_BLOCK_D / _BLOCK_L / _NUM_WARPS / _SEGMENTS
    (both kernels; SEGMENTS=1: one program walks the whole sequence), and
    VIDEOMAMBA_TRITON_BWD_BLOCK_D / _BWD_NUM_WARPS (the backward only)."""
    block_n = max(triton.next_power_of_2(n_state), 2)
    if _interpreting() or device.type != "cuda":
        block_d = 4  # small tiles: the interpreter's scan runs per element in Python
        bl = max(16, min(256 // (block_d * block_n), triton.next_power_of_2(max(length, 1))))
        num_warps = min(8, max(1, block_d * block_n // 32))
        target_programs, min_tiles = 0, 1
    else:
        n_sm = _sm_count(device.index if device.index is not None else torch.cuda.current_device())
        block_d = max(1, min(16 if backward else 8, (256 if backward else 128) // block_n))
        bl = 16
        num_warps = min(8, max(1, block_d * block_n // (64 if backward else 32)))
        target_programs, min_tiles = SEG_WAVES * n_sm, 8
    env = "VIDEOMAMBA_TRITON_"
    block_d = (backward and _env_int(env + "BWD_BLOCK_D", True)) or _env_int(env + "BLOCK_D", True) or block_d
    for g in group_dims:  # a channel block must not straddle a B/C group (g = channels per group)
        if g != dim and g % block_d:
            block_d = _pow2_divisor(g, block_d)
    block_l = block_l or _env_int(env + "BLOCK_L", True) or bl
    num_warps = (backward and _env_int(env + "BWD_NUM_WARPS", True)) or _env_int(env + "NUM_WARPS", True) or num_warps
    ntiles = triton.cdiv(max(length, 1), block_l)
    base = batch * triton.cdiv(dim, block_d)
    if target_programs:
        nseg = min(triton.cdiv(target_programs, base), max(1, ntiles // min_tiles))
    else:
        nseg = min(3, ntiles)  # the interpreter: exercise the segmented path on small inputs
    nseg = max(1, min(_env_int(env + "SEGMENTS") or nseg, ntiles))
    tps = triton.cdiv(ntiles, nseg)
    nseg = triton.cdiv(ntiles, tps)
    return dict(BLOCK_D=block_d, BLOCK_N=block_n, BLOCK_L=block_l, num_warps=num_warps,
                ntiles=ntiles, nseg=nseg, tps=tps)


SEG_WAVES = 8  # segments are added until the grid has about this many programs per SM


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

    def args(self, dummy, hs, sh, ss):
        """The kernels' per-direction argument block: pointers, then strides."""
        return [self.u, self.delta, self.A, self.B4, self.C4,
                self.D if self.D is not None else dummy,
                self.bias if self.bias is not None else dummy, hs, sh, ss,
                *self.u.stride()[:2], *self.delta.stride()[:2], *self.A.stride(),
                *self.B4.stride(), *self.C4.stride(), *self.dpg]


def _dims(d: _Dir):
    batch, dim, length = d.u.shape
    return batch, dim, length, d.A.shape[1]


def _summaries(ndir, batch, dim, n_state, cfg, device):
    """Segment summary buffers (state (ndir, B, D, nseg, N), delta sums (ndir, B, D, nseg)), or
    None with a single segment (no summary launch)."""
    if cfg["nseg"] == 1:
        return None
    f32 = dict(device=device, dtype=torch.float32)
    return (torch.empty(ndir, batch, dim, cfg["nseg"], n_state, **f32),
            torch.empty(ndir, batch, dim, cfg["nseg"], **f32))


def _launch_cfg(cfg):
    return {k: cfg[k] for k in ("BLOCK_D", "BLOCK_N", "BLOCK_L", "num_warps")}


def _grid(cfg, batch, dim):
    return (triton.cdiv(dim, cfg["BLOCK_D"]), batch, cfg["nseg"])


def _dir_blocks(dirs, dummy, hss, summ):
    blocks = []
    for i, d in enumerate(dirs):
        sh, ss = (summ[0][i], summ[1][i]) if summ is not None else (dummy, dummy)
        blocks.append(d.args(dummy, hss[i], sh, ss))
    return blocks


class _GradBuffers:
    """Gradient outputs of one or two directions, packed so that the host side costs few
    launches: one fp32 (ndir, nseg, B, D, N+2) buffer for the per-(segment, batch) partials
    [dA | dD | dbias] (one sum), one zeroed fp32 buffer for every dB/dC (one memset, one cast)."""

    def __init__(self, dirs, batch, dim, n_state, length, nseg):
        dev = dirs[0].u.device
        self.dirs, self.n_state = dirs, n_state
        self.small = torch.empty(len(dirs), nseg, batch, dim, n_state + 2, device=dev, dtype=torch.float32)
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

    def args(self, i):
        """The kernel's per-direction gradient block (after the direction's argument block)."""
        b, d = self.bufs[i], self.dirs[i]
        return [b["du"], b["ddt"], b["small"], b["dB"], b["dC"], d.G_B, d.G_C]

    def grads(self, Bs, Cs):
        """Per direction (du, ddelta, dA, dB, dC, dD, ddelta_bias) in the inputs' dtypes/shapes."""
        n = self.n_state
        small = self.small.sum((1, 2))  # (ndir, D, N+2)
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


def _check(u, A):
    if not triton_available():
        raise RuntimeError("triton is not usable here (needs CUDA, or TRITON_INTERPRET=1)")
    if not _interpreting() and u.device.type != "cuda":
        raise RuntimeError(f"compiled triton needs CUDA tensors, got {u.device} (TRITON_INTERPRET=1 runs on CPU)")
    if A.is_complex():
        raise TypeError("complex A is not supported")


def _flags(dirs, reverse, softplus, z):
    """Constexpr flags shared by the forward and backward launches."""
    d1 = dirs[-1]
    return dict(BI=len(dirs) == 2, REV0=reverse, HAS_D0=dirs[0].D is not None, HAS_D1=d1.D is not None,
                HAS_BIAS0=dirs[0].bias is not None, HAS_BIAS1=d1.bias is not None, HAS_Z=z is not None,
                SOFTPLUS=softplus)


def _fwd(dirs, z, softplus, reverse, store_states, return_last):
    """Forward of one direction (``reverse`` applies) or both BiMamba directions (dirs =
    [forward, backward]; output = their sum). Returns out, per-direction tile states, last, cfg."""
    df = dirs[0]
    batch, dim, length, n_state = _dims(df)
    cfg = _config(batch, dim, n_state, length, tuple(g for d in dirs for g in d.dpg), df.u.device)
    dev = df.u.device
    out = torch.empty(batch, dim, length, device=dev, dtype=df.u.dtype)
    bi = len(dirs) == 2
    part = torch.empty(batch, dim, length, device=dev, dtype=torch.float32) if bi and out.dtype != torch.float32 else out
    f32 = dict(device=dev, dtype=torch.float32)
    hss = [torch.empty(batch, dim, cfg["ntiles"] if store_states else 1, n_state, **f32) for _ in dirs]
    last = torch.empty(batch, dim, n_state, **f32) if return_last else hss[0]
    zz = _lastdim_contig(z) if z is not None else out
    summ = _summaries(len(dirs), batch, dim, n_state, cfg, dev)
    blocks = _dir_blocks(dirs, out, hss, summ)
    args = [*blocks[0], *blocks[-1], zz, zz.stride(0), zz.stride(1), out, part, last,
            dim, length, n_state, cfg["ntiles"], cfg["nseg"], cfg["tps"]]
    kw = dict(**_flags(dirs, reverse, softplus, z), STORE_STATES=store_states, RETURN_LAST=return_last,
              **_launch_cfg(cfg))
    grid = _grid(cfg, batch, dim)
    if summ is not None:
        LAST_LAUNCH["fwd_summary"] = _fwd_kernel[grid](*args, SUMMARY=True, **kw)
    LAST_LAUNCH["fwd"] = _fwd_kernel[grid](*args, SUMMARY=False, **kw)
    return out, hss, (last if return_last else None), cfg


def _bwd(dirs, z, hss, dout, dlast, softplus, reverse, fwd_cfg):
    """Backward of :func:`_fwd` (its own blocks and segments; the forward's BLOCK_L, whose tile
    states it reads): the gradient buffers and dz."""
    df = dirs[0]
    batch, dim, length, n_state = _dims(df)
    cfg = _config(batch, dim, n_state, length, tuple(g for d in dirs for g in d.dpg), df.u.device,
                  backward=True, block_l=fwd_cfg["BLOCK_L"])
    dout = _lastdim_contig(dout)
    gbuf = _GradBuffers(dirs, batch, dim, n_state, length, cfg["nseg"])
    if z is not None:
        dz = torch.empty(batch, dim, length, device=z.device, dtype=z.dtype)
        bi = len(dirs) == 2
        dzpart = torch.empty(batch, dim, length, device=z.device, dtype=torch.float32) \
            if bi and dz.dtype != torch.float32 else dz
        zz = _lastdim_contig(z)
    else:
        dz = dzpart = zz = dout
    dl = dlast.contiguous() if dlast is not None else dout
    summ = _summaries(len(dirs), batch, dim, n_state, cfg, df.u.device)
    blocks = _dir_blocks(dirs, dout, hss, summ)
    last = len(dirs) - 1
    args = [*blocks[0], *gbuf.args(0), *blocks[last], *gbuf.args(last),
            zz, zz.stride(0), zz.stride(1), dout, dout.stride(0), dout.stride(1), dl, dz, dzpart,
            dim, length, n_state, cfg["ntiles"], cfg["nseg"], cfg["tps"]]
    kw = dict(**_flags(dirs, reverse, softplus, z), HAS_DLAST=dlast is not None, **_launch_cfg(cfg))
    grid = _grid(cfg, batch, dim)
    if summ is not None:
        LAST_LAUNCH["bwd_summary"] = _bwd_kernel[grid](*args, SUMMARY=True, **kw)
    LAST_LAUNCH["bwd"] = _bwd_kernel[grid](*args, SUMMARY=False, **kw)
    return gbuf, (dz if z is not None else None)


class _SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, return_last, reverse):
        d = _Dir(u, delta, A, B, C, D, delta_bias)
        out, hss, last, cfg = _fwd([d], z, softplus, reverse, store_states=True, return_last=return_last)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, hss[0])
        ctx.cfg, ctx.flags = cfg, (softplus, reverse)
        if return_last:  # the last state is differentiable too: its gradient seeds the adjoint
            return out, last
        return out

    @staticmethod
    def backward(ctx, dout, dlast=None):
        u, delta, A, B, C, D, z, delta_bias, hs = ctx.saved_tensors
        softplus, reverse = ctx.flags
        d = _Dir(u, delta, A, B, C, D, delta_bias)
        gb, dz = _bwd([d], z, [hs], dout, dlast, softplus, reverse, ctx.cfg)
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
    out, _hs, last, _cfg = _fwd([d], z, bool(delta_softplus), bool(reverse), False, bool(return_last_state))
    return (out, last) if return_last_state else out


class _BiSelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, softplus):
        dirs = [_Dir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f),
                _Dir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)]
        out, hss, _last, cfg = _fwd(dirs, z, softplus, False, store_states=True, return_last=False)
        ctx.save_for_backward(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                              u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, *hss)
        ctx.cfg, ctx.softplus = cfg, softplus
        return out

    @staticmethod
    def backward(ctx, dout):
        (u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
         u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, hs_f, hs_b) = ctx.saved_tensors
        dirs = [_Dir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f),
                _Dir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)]
        gbuf, dz = _bwd(dirs, z, [hs_f, hs_b], dout, None, ctx.softplus, False, ctx.cfg)
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
    dirs = [_Dir(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f),
            _Dir(u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b)]
    out, _hs, _last, _cfg = _fwd(dirs, z, bool(delta_softplus), False, store_states=False, return_last=False)
    return out
