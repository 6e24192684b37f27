"""Forward kernels of the selective scan: the segment summary pass and the main pass, one
direction or both BiMamba directions in one program (README.md beside this file: the design)."""

from __future__ import annotations

from .runtime import HAS_TRITON, jit, tl
from .scan_common import (affine_combine, channel_setup, fold_summaries, load_delta, segment_span, segment_tile,
                          sigmoid, store_bi, tile_index, tile_positions)

__all__ = ["selective_scan_fwd_kernel"]

if HAS_TRITON:

    @jit
    def _fwd_summary_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SEG_TILE: tl.constexpr,
        SKIP: tl.constexpr,
    ):
        """Segment summary of the forward recurrence: the state at the segment's end when it is
        entered with h = 0, ``sh (B, D, nseg, N)``, and its total delta ``ss (B, D, nseg)`` (the
        segment multiplies an incoming state by exp(A * ss)). Closed form per tile (no scan):
        ``h_end = exp(A tot) h + sum_t exp(A (tot - cumsum_t)) delta_t B_t u_t``. The segment is
        ``tps`` tiles of the main launch's SEG_TILE positions, walked in tiles of BLOCK_L (its own
        size); SKIP: nothing is computed for the segment processed last (never folded in)."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = channel_setup(
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
        p_lo, p_hi, n_t = segment_span(seg, tps, SEG_TILE, L, BLOCK_L, SKIP, 0 if REVERSE else (nseg - 1))
        for i in range(0, n_t):  # tiles in processing order
            pos, mask_l, _p1, _m1 = segment_tile(tile_index(i, 0, n_t, REVERSE), offs_j, p_lo, p_hi, L, REVERSE,
                                                 BLOCK_L)
            pos = pos[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)
            dt, _raw = load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mask_l[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
            tot = tl.sum(dt, axis=0)
            w = tl.exp2((tot[None, :] - tl.cumsum(dt, axis=0))[:, :, None] * A2[None, :, :])
            h = tl.exp2(tot[:, None] * A2) * h + tl.sum(w * ((dt * u)[:, :, None] * Bt[:, None, :]), axis=0)
            sdt += tot
        sum_off = (b64 * dim + offs_d) * nseg + seg
        tl.store(sh_ptr + sum_off[:, None] * n_state + offs_n[None, :], h, mask=mask_dn)
        tl.store(ss_ptr + sum_off, sdt, mask=mask_d)

    @jit
    def _fwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
        pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
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
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = channel_setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N)
        A2 = A * LOG2E
        offs_j = tl.arange(0, BLOCK_L)
        mask_n = offs_n < n_state
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + offs_d[None, :] * s_u_d  # (1, BD)
        dt_row = dt_ptr + b64 * s_dt_b + offs_d[None, :] * s_dt_d
        z_row = z_ptr + b64 * s_z_b + offs_d[None, :] * s_z_d
        o_off = (b64 * dim + offs_d[None, :]) * LP
        B_row = B_ptr + b64 * s_B_b + (d_start // dpg_B) * s_B_g + offs_n[None, :] * s_B_n  # (1, BN)
        C_row = C_ptr + b64 * s_C_b + (d_start // dpg_C) * s_C_g + offs_n[None, :] * s_C_n
        hs_row = hs_ptr + ((b64 * dim + offs_d[:, None]) * ntiles) * n_state + offs_n[None, :]
        # state entering the segment: the summaries of the segments before it, in processing order
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        sum_off = (b64 * dim + offs_d) * nseg
        if REVERSE:
            h = fold_summaries(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, h, nseg - 1, -1, nseg - 1 - seg, n_state)
        else:
            h = fold_summaries(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, h, 0, 1, seg, n_state)
        last_row = (offs_j == BLOCK_L - 1)[:, None, None]
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        for i in range(0, k_hi - k_lo):
            k = tile_index(i, k_lo, k_hi, REVERSE)
            pos, mask_l, _p1, _m1 = tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            pos = pos[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            mnl = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)  # (BL, BD)
            dt, _raw = load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            Bt = tl.load(B_row + pos * s_B_l, mask=mnl, other=0.0).to(tl.float32)  # (BL, BN)
            Ct = tl.load(C_row + pos * s_C_l, mask=mnl, other=0.0).to(tl.float32)
            dA = tl.exp2(dt[:, :, None] * A2[None, :, :])  # (BL, BD, BN)
            dBu = (dt * u)[:, :, None] * Bt[:, None, :]
            a_cum, b_cum = tl.associative_scan((dA, dBu), 0, affine_combine)
            hh = a_cum * h[None, :, :] + b_cum
            y = tl.sum(hh * Ct[:, None, :], axis=2)  # (BL, BD)
            h = tl.sum(tl.where(last_row, hh, 0.0), axis=0)  # padded positions carry h unchanged
            if HAS_D:
                y += Dv[None, :] * u
            if HAS_Z:
                zt = tl.load(z_row + pos, mask=m2, other=0.0).to(tl.float32)
                y *= zt * sigmoid(zt)
            store_bi(y, out_ptr, part_ptr, o_off + pos, m2, ACCUMULATE, TO_PART)
            if STORE_STATES:
                tl.store(hs_row + k * n_state, h, mask=mask_dn)
        if RETURN_LAST:  # the segment scanned last holds the final state
            if REVERSE:
                is_last = seg == 0
            else:
                is_last = seg == nseg - 1
            tl.store(last_ptr + (b64 * dim + offs_d[:, None]) * n_state + offs_n[None, :], h,
                     mask=mask_dn & is_last)

    @jit
    def selective_scan_fwd_kernel(
        u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
        s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
        s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
        u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
        s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
        s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
        dim, L, LP, n_state, ntiles, nseg, tps,
        BI: tl.constexpr, REV0: tl.constexpr, HAS_D0: tl.constexpr, HAS_D1: tl.constexpr,
        HAS_BIAS0: tl.constexpr, HAS_BIAS1: tl.constexpr, HAS_Z: tl.constexpr, SOFTPLUS: tl.constexpr,
        STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr, SUMMARY: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SEG_TILE: tl.constexpr = 0,
        SUM_SKIP: tl.constexpr = False,
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
                pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                REV0, HAS_BIAS0, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L, SEG_TILE, SUM_SKIP)
            if BI:
                _fwd_summary_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                    True, HAS_BIAS1, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L, SEG_TILE, SUM_SKIP)
        else:
            _fwd_dir(
                u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
                s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
                s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
                z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
                pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                REV0, HAS_D0, HAS_Z, HAS_BIAS0, SOFTPLUS, False, BI, STORE_STATES, RETURN_LAST,
                BLOCK_D, BLOCK_N, BLOCK_L)
            if BI:
                tl.debug_barrier()
                _fwd_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
                    pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                    True, HAS_D1, HAS_Z, HAS_BIAS1, SOFTPLUS, True, False, STORE_STATES, False,
                    BLOCK_D, BLOCK_N, BLOCK_L)

