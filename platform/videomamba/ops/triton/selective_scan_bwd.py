"""Backward kernels of the selective scan: the adjoint's segment summary pass and the main pass
(recomputes each tile's forward states from the saved tile-boundary states), one direction or
both BiMamba directions in one program (README.md beside this file: the design)."""

from __future__ import annotations

from .runtime import HAS_TRITON, jit, tl
from .scan_common import (adjoint_combine, affine_combine, channel_setup, fold_summaries, load_delta, segment_span,
                          segment_tile, sigmoid, store_bi, tile_index, tile_positions)

__all__ = ["selective_scan_bwd_kernel"]

if HAS_TRITON:

    @jit
    def _bwd_summary_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
        pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SEG_TILE: tl.constexpr,
        SKIP: tl.constexpr,
    ):
        """Segment summary of the adjoint recurrence ``g_t = C_t dy_t + a_{t+1} g_{t+1}`` (g =
        dL/dh; a_{t+1} = exp(A delta at the next position in processing order): the adjoint at
        the segment's first position when nothing comes in from after it, ``sh``, and the delta
        summed over the positions one ahead, ``ss`` (the segment multiplies an incoming adjoint
        by exp(A * ss)). It needs no forward state: ``dy = dout * silu(z)``. The segment is ``tps``
        tiles of the main launch's SEG_TILE positions, walked in tiles of BLOCK_L (its own size);
        SKIP: nothing is computed for the segment processed first (its summary is never folded in)."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = channel_setup(
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
        p_lo, p_hi, n_t = segment_span(seg, tps, SEG_TILE, L, BLOCK_L, SKIP, (nseg - 1) if REVERSE else 0)
        for i in range(0, n_t):  # tiles last to first in processing order
            pos, mask_l, pos1, mask_l1 = segment_tile(tile_index(i, 0, n_t, not REVERSE), offs_j, p_lo, p_hi, L,
                                                      REVERSE, BLOCK_L)
            pos = pos[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            dt1, _raw1 = load_delta(dt_row + pos1[:, None], bias, mask_l1[:, None] & mask_d[None, :],
                                     HAS_BIAS, SOFTPLUS)
            Ct = tl.load(C_row + pos * s_C_l, mask=mask_l[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
            dy = tl.load(do_row + pos, mask=m2, other=0.0).to(tl.float32)
            if HAS_Z:
                zt = tl.load(z_row + pos, mask=m2, other=0.0).to(tl.float32)
                dy = dy * zt * sigmoid(zt)
            tot1 = tl.sum(dt1, axis=0)
            w = tl.exp2((tl.cumsum(dt1, axis=0) - dt1)[:, :, None] * A2[None, :, :])  # prod a_1..a_t
            g = tl.exp2(tot1[:, None] * A2) * g + tl.sum(w * (Ct[:, None, :] * dy[:, :, None]), axis=0)
            s1 += tot1
        sum_off = (b64 * dim + offs_d) * nseg + seg
        tl.store(sh_ptr + sum_off[:, None] * n_state + offs_n[None, :], g, mask=mask_dn)
        tl.store(ss_ptr + sum_off, s1, mask=mask_d)

    @jit
    def _bwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        du_ptr, ddt_ptr, dsmall_ptr, dB_ptr, dC_ptr, G_B, G_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
        pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        EXP_ONCE: tl.constexpr, DBC_ATOMIC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        """Backward of one direction over segment ``seg``. du, ddt, dz(part) contiguous (B, D, L);
        dsmall (nseg, B, D, N+2) fp32 per-(segment, batch) partials [dA | dD | dbias]; dB
        (B, G_B, N, L), dC (B, G_C, N, L) fp32, accumulated atomically."""
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d, offs_n, mask_d, mask_dn, A, Dv, bias = channel_setup(
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
        o_off = (b64 * dim + offs_d[None, :]) * LP
        gB = d_start // dpg_B
        gC = d_start // dpg_C
        B_row = B_ptr + b64 * s_B_b + gB * s_B_g + offs_n[None, :] * s_B_n  # (1, BN)
        C_row = C_ptr + b64 * s_C_b + gC * s_C_g + offs_n[None, :] * s_C_n
        LBp = ntiles * BLOCK_L  # dB/dC row pitch: every tile's positions, padding included
        if DBC_ATOMIC:  # dB (B, G_B, N, LBp), dC (B, G_C, N, LBp), every channel block adds in
            dB_row = dB_ptr + ((b64 * G_B + gB) * n_state + offs_n[None, :]) * LBp
            dC_row = dC_ptr + ((b64 * G_C + gC) * n_state + offs_n[None, :]) * LBp
        else:  # this channel block's own rows of (B, nblk, N, LBp) partials (G_B = G_C = nblk)
            blk = d_start // BLOCK_D
            dB_row = dB_ptr + ((b64 * G_B + blk) * n_state + offs_n[None, :]) * LBp
            dC_row = dC_ptr + ((b64 * G_C + blk) * n_state + offs_n[None, :]) * LBp
        hs_row = hs_ptr + ((b64 * dim + offs_d[:, None]) * ntiles) * n_state + offs_n[None, :]
        # adjoint entering the segment from after it: dlast, folded through the later segments
        g_carry = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        if HAS_DLAST:
            g_carry = tl.load(dlast_ptr + (b64 * dim + offs_d[:, None]) * n_state + offs_n[None, :],
                              mask=mask_dn, other=0.0).to(tl.float32)
        sum_off = (b64 * dim + offs_d) * nseg
        if REVERSE:
            g_carry = fold_summaries(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, g_carry, 0, 1, seg, n_state)
        else:
            g_carry = fold_summaries(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, g_carry,
                             nseg - 1, -1, nseg - 1 - seg, n_state)
        dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        dD_acc = tl.zeros([BLOCK_L, BLOCK_D], dtype=tl.float32)  # reduced over L after the loop
        dbias_acc = tl.zeros([BLOCK_L, BLOCK_D], dtype=tl.float32)
        first_row = (offs_j == 0)[:, None, None]
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        if EXP_ONCE:
            # a at the position after the segment in processing order (1 past the sequence's end):
            # the factor between the incoming adjoint and the segment's last position
            if REVERSE:
                p_next = k_lo * BLOCK_L - 1
            else:
                p_next = k_hi * BLOCK_L
            in_seq = (p_next >= 0) & (p_next < L)
            dt_n, _raw_n = load_delta(dt_row + p_next, bias, mask_d[None, :] & in_seq, HAS_BIAS, SOFTPLUS)
            a_carry = tl.exp2(tl.sum(dt_n, axis=0)[:, None] * A2)  # (BD, BN); 1 where dt = 0
        for i in range(0, k_hi - k_lo):  # tiles last to first in processing order
            k = tile_index(i, k_lo, k_hi, not REVERSE)
            pos, mask_l, pos1, mask_l1 = tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            pos = pos[:, None]
            pos1 = pos1[:, None]
            m2 = mask_l[:, None] & mask_d[None, :]
            m2n = mask_l1[:, None] & mask_d[None, :]
            mnl = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + pos, mask=m2, other=0.0).to(tl.float32)  # (BL, BD)
            dt, raw = load_delta(dt_row + pos, bias, m2, HAS_BIAS, SOFTPLUS)
            if not EXP_ONCE:
                dt1, _raw1 = load_delta(dt_row + pos1, bias, m2n, HAS_BIAS, SOFTPLUS)
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
            a_cum, b_cum = tl.associative_scan((dA, dBu), 0, affine_combine)
            hh = a_cum * h0[None, :, :] + b_cum  # h_t
            if HAS_Z:
                zt = tl.load(z_row + pos, mask=m2, other=0.0).to(tl.float32)
                sig = sigmoid(zt)
                y = tl.sum(hh * Ct[:, None, :], axis=2) + Dv[None, :] * u
                dz = dout * y * sig * (1.0 + zt * (1.0 - sig))
                dy = dout * zt * sig
                store_bi(dz, dz_ptr, dzpart_ptr, o_off + pos, m2, ACCUMULATE, TO_PART)
            else:
                dy = dout
            # adjoint: g_t = C_t dy_t + a_{t+1} g_{t+1}; a := 1 past the end
            beta = Ct[:, None, :] * dy[:, :, None]
            if EXP_ONCE:  # a_{t+1} from this tile's a_t (no second exp): see adjoint_combine
                gp, gb, _gf = tl.associative_scan((tl.full(dA.shape, 1.0, tl.float32), beta, dA), 0,
                                                  adjoint_combine, reverse=True)
                g = gb + gp * (a_carry * g_carry)[None, :, :]
                a_carry = tl.sum(tl.where(first_row, dA, 0.0), axis=0)
            else:  # a_{t+1} recomputed from delta one position ahead
                a_next = tl.exp2(dt1[:, :, None] * A23)
                ga, gb = tl.associative_scan((a_next, beta), 0, affine_combine, reverse=True)
                g = gb + ga * g_carry[None, :, :]
            g_carry = tl.sum(tl.where(first_row, g, 0.0), axis=0)
            hb = hh - dBu  # a_t * h_{t-1}
            gdt = g * dt[:, :, None]
            du = tl.sum(gdt * Bt[:, None, :], axis=2) + dy * Dv[None, :]
            ddt = tl.sum(g * (Bt[:, None, :] * u[:, :, None] + A3 * hb), axis=2)
            if SOFTPLUS:
                ddt = ddt * sigmoid(raw)
            ddt = tl.where(m2, ddt, 0.0)
            dA_acc += tl.sum(gdt * hb, axis=0)
            dD_acc += dy * u
            dbias_acc += ddt
            tl.store(du_ptr + o_off + pos, du.to(du_ptr.dtype.element_ty), mask=m2)
            tl.store(ddt_ptr + o_off + pos, ddt.to(ddt_ptr.dtype.element_ty), mask=m2)
            dBt = tl.sum(gdt * u[:, :, None], axis=1)  # (BL, BN), summed over the block's channels
            dCt = tl.sum(hh * dy[:, :, None], axis=1)
            if DBC_ATOMIC:
                tl.atomic_add(dB_row + pos, dBt, mask=mnl)
                tl.atomic_add(dC_row + pos, dCt, mask=mnl)
            else:  # plain stores: segments split L, so each element is written by one program
                tl.store(dB_row + pos, dBt, mask=mnl)
                tl.store(dC_row + pos, dCt, mask=mnl)
        s_off = ((seg * tl.num_programs(1) + b64) * dim + offs_d) * (n_state + 2)
        tl.store(dsmall_ptr + s_off[:, None] + offs_n[None, :], dA_acc, mask=mask_dn)
        tl.store(dsmall_ptr + s_off + n_state, tl.sum(dD_acc, axis=0), mask=mask_d)
        tl.store(dsmall_ptr + s_off + n_state + 1, tl.sum(dbias_acc, axis=0), mask=mask_d)

    @jit
    def selective_scan_bwd_kernel(
        u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
        s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
        s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
        du0, ddt0, dsmall0, dB0, dC0, G_B0, G_C0,
        u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
        s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
        s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
        du1, ddt1, dsmall1, dB1, dC1, G_B1, G_C1,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
        dim, L, LP, n_state, ntiles, nseg, tps,
        BI: tl.constexpr, REV0: tl.constexpr, HAS_D0: tl.constexpr, HAS_D1: tl.constexpr,
        HAS_BIAS0: tl.constexpr, HAS_BIAS1: tl.constexpr, HAS_Z: tl.constexpr, SOFTPLUS: tl.constexpr,
        HAS_DLAST: tl.constexpr, SUMMARY: tl.constexpr, EXP_ONCE: tl.constexpr, DBC_ATOMIC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SEG_TILE: tl.constexpr = 0,
        SUM_SKIP: tl.constexpr = False,
    ):
        """Backward of :func:`selective_scan_fwd_kernel`, same grid and direction structure (dz is the one
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
                pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                REV0, HAS_Z, HAS_BIAS0, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L, SEG_TILE, SUM_SKIP)
            if BI:
                _bwd_summary_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
                    pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                    True, HAS_Z, HAS_BIAS1, SOFTPLUS, BLOCK_D, BLOCK_N, BLOCK_L, SEG_TILE, SUM_SKIP)
        else:
            _bwd_dir(
                u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
                s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
                s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
                du0, ddt0, dsmall0, dB0, dC0, G_B0, G_C0,
                z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
                pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                REV0, HAS_D0, HAS_Z, HAS_BIAS0, SOFTPLUS, HAS_DLAST, False, BI, EXP_ONCE, DBC_ATOMIC,
                BLOCK_D, BLOCK_N, BLOCK_L)
            if BI:
                tl.debug_barrier()
                _bwd_dir(
                    u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                    s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                    s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                    du1, ddt1, dsmall1, dB1, dC1, G_B1, G_C1,
                    z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr,
                    pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                    True, HAS_D1, HAS_Z, HAS_BIAS1, SOFTPLUS, False, True, False, EXP_ONCE, DBC_ATOMIC,
                    BLOCK_D, BLOCK_N, BLOCK_L)


