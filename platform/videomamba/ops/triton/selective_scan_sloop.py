"""State-loop kernels of the selective scan (forward and backward main passes; README.md beside
this file: the design). A program's tile is ``(NS, BLOCK_D, BLOCK_L)``: NS of the N states,
channels, positions; the N states are visited NS at a time by a loop of ``N / NS``
iterations (not unrolled), so the reductions over states (y, du, ddelta) are running sums in each thread's
registers, reduced over the NS lanes once per tile, and the live tile is N / NS times smaller
than the whole-state tile of ``selective_scan_fwd.py`` / ``selective_scan_bwd.py``. Positions
are the last axis and lie in each thread's registers (the scans run serially, no shuffles).
Per-state values that cross tiles (the carried state, the adjoint, dA) are
``(NS, BLOCK_D, N / NS)`` tensors whose last axis is in each thread's registers: picking or
replacing iteration i's column is a select, no memory and no shuffles. The adjoint's reverse
scan is a forward scan of the flipped tile. Same
arguments, buffers, grid and segment summaries as those kernels (their SUMMARY launch provides
the summaries)."""

from __future__ import annotations

from .runtime import HAS_TRITON, jit, tl
from .scan_common import (adjoint_combine, affine_combine, bfly, bfly_states, lane_stride, load_vec_rows,
                          prefetch_l1, sigmoid, softplus_grad,
                          store_bi, tile_index, tile_positions)

__all__ = ["sloop_fwd_kernel", "sloop_bwd_kernel"]

if HAS_TRITON:

    @jit
    def _pick(x, cols, c):
        """Column c of x along its last axis (in each thread's registers: a select, no shuffle)."""
        return tl.sum(tl.where(cols == c, x, 0.0), axis=2)

    @jit
    def _prefetch_bc(B_row, C_row, s_B_n, s_B_l, s_C_n, s_C_l, pos, n_state, offs_s, BD: tl.constexpr,
                     HAS_C: tl.constexpr):
        """Ask L1 for the B and C rows at position ``pos`` (a tile's first; times the hidden 1) ahead of a
        tile's state loop: channel lane c takes state row min(c, N - 1), even state lanes B, odd ones C (B only
        without HAS_C); one ``prefetch.global.L1`` per thread. B_row / C_row: (1, BD, 1) row pointers."""
        nb = tl.minimum(tl.arange(0, BD)[None, :, None], n_state - 1)
        pb = B_row + nb * s_B_n + pos * s_B_l
        if HAS_C:
            pb = tl.where((offs_s % 2 == 0)[:, None, None], pb, C_row + nb * s_C_n + pos * s_C_l)
        else:
            pb = pb + (offs_s * 0)[:, None, None]
        prefetch_l1(pb)

    @jit
    def _halve(x, t: tl.constexpr, cb, sc, NS: tl.constexpr, BD: tl.constexpr, K: tl.constexpr):
        """One reduce-scatter step over channel lanes c and c ^ 2^t: of x's K registers, the lane
        keeps the half of parity bit t of c (even / odd registers) plus its partner's same half."""
        lo, hi = tl.split(tl.reshape(x, (NS, BD, K // 2, 2)))
        bit = ((cb >> t) & 1) != 0
        return tl.where(bit, hi, lo) + bfly(tl.where(bit, lo, hi), t, sc, NS, BD, K // 2)

    @jit
    def _store_dbc_scatter(vb, vc, dB_row, dC_row, n_i, LBp, ks, unit, cb, sc, n_state,
                           REVERSE: tl.constexpr, EVEN_N: tl.constexpr,
                           NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr):
        """dB / dC of one sub-tile summed over the block's channels and stored, by a reduce-scatter
        across the channel lanes: vb, vc (NS, BD, BL) are each (state, channel, position)'s terms.
        The first step pairs dB with dC (lanes of even c keep dB), each later one halves the
        positions, so a warp shuffles 2 BL (1 - 1 / BD) values per state lane instead of the
        2 BL log2(BD) of two all-reduces (``tl.sum`` over lanes), and every lane stores distinct
        sums (2 BL / BD of them), no layout conversion. With BD > 2 BL the last log2(BD / 2 BL) steps
        are all-reduces and the lanes c < 2 BL store. Needs BD a power of two >= 2, and on the GPU a
        one-warp program whose lanes are exactly (NS, BD)."""
        bit = (cb & 1) != 0
        x = tl.where(bit, vc, vb) + bfly(tl.where(bit, vb, vc), 0, sc, NS, BD, BL)
        if BD >= 4 and BL >= 2:
            x = _halve(x, 1, cb, sc, NS, BD, BL)
        if BD >= 8 and BL >= 4:
            x = _halve(x, 2, cb, sc, NS, BD, BL // 2)
        if BD >= 16 and BL >= 8:
            x = _halve(x, 3, cb, sc, NS, BD, BL // 4)
        if BD >= 32 and BL >= 16:
            x = _halve(x, 4, cb, sc, NS, BD, BL // 8)
        # register r of lane c holds position index j = r BD / 2 + c // 2 (processing order) of dB (even c) or dC
        if BD <= 2 * BL:
            R: tl.constexpr = 2 * BL // BD
            jj = tl.arange(0, R)[None, None, :] * (BD // 2) + (cb >> 1)  # (1, BD, R)
            keep = jj >= 0
        else:  # more lanes than sums: after log2(2 BL) halvings, all-reduce steps; the lanes c < 2 BL store
            if 2 * BL <= 2 and BD >= 4:
                x = x + bfly(x, 1, sc, NS, BD, 1)
            if 2 * BL <= 4 and BD >= 8:
                x = x + bfly(x, 2, sc, NS, BD, 1)
            if 2 * BL <= 8 and BD >= 16:
                x = x + bfly(x, 3, sc, NS, BD, 1)
            if 2 * BL <= 16 and BD >= 32:
                x = x + bfly(x, 4, sc, NS, BD, 1)
            jj = (cb >> 1) & (BL - 1)
            keep = cb < 2 * BL
        if REVERSE:
            pos = ks * BL + (BL - 1 - jj)
        else:
            pos = ks * BL + jj
        row = tl.where((cb & 1) == 0, dB_row, dC_row)
        ptrs = row + n_i * LBp + pos * unit  # rows at pitch LBp >= every tile's positions: no position mask
        if EVEN_N and BD <= 2 * BL:
            tl.store(ptrs, x)
        else:
            tl.store(ptrs, x, mask=(n_i < n_state) & keep)

    @jit
    def _half(x, sbit, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr):
        """State lane s's half of x (NS, BD, BL), every lane holding all BL positions: positions
        2 r + s, (NS, BD, BL / 2) (a select in registers; sbit (NS, 1, 1) is s == 1)."""
        lo, hi = tl.split(tl.reshape(x, (NS, BD, BL // 2, 2)))
        return tl.where(sbit, hi, lo)

    @jit
    def _sum_states_half(x, sbit, ssd, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr, t: tl.constexpr = 0):
        """x (NS, BD, BL) summed over state lanes s and s ^ 2^t (sbit: bit t of s), each keeping half
        of the positions (as ``_half``): one reduce-scatter step, one shuffle per kept sum (an
        all-reduce: one per position)."""
        lo, hi = tl.split(tl.reshape(x, (NS, BD, BL // 2, 2)))
        return tl.where(sbit, hi, lo) + bfly_states(tl.where(sbit, lo, hi), ssd, t, NS)

    @jit
    def _part(x, offs_s, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr):
        """State lane s's part of x (NS, BD, BL), every lane holding all BL positions: positions
        NS q + s, (NS, BD, BL / NS) (selects in registers; NS = 2 or 4)."""
        x = _half(x, ((offs_s & 1) != 0)[:, None, None], NS, BD, BL)
        if NS == 4:
            x = _half(x, ((offs_s & 2) != 0)[:, None, None], NS, BD, BL // 2)
        return x

    @jit
    def _sum_states_part(x, offs_s, ssd, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr):
        """x (NS, BD, BL) summed over the NS state lanes, lane s keeping positions NS q + s (as
        ``_part``): a reduce-scatter, BL (1 - 1 / NS) shuffles (an all-reduce: BL log2(NS))."""
        x = _sum_states_half(x, ((offs_s & 1) != 0)[:, None, None], ssd, NS, BD, BL, 0)
        if NS == 4:
            x = _sum_states_half(x, ((offs_s & 2) != 0)[:, None, None], ssd, NS, BD, BL // 2, 1)
        return x

    @jit
    def _gather_part(xp, offs_s, ssd, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr):
        """The inverse of ``_part``: xp (NS, BD, BL / NS), lane s holding positions NS q + s, -> (NS, BD, BL)
        with every position on every lane (an all-gather: BL (1 - 1 / NS) shuffles)."""
        if NS == 4:
            xp = _join_halves(xp, ((offs_s & 2) != 0)[:, None, None], ssd, NS, BD, BL // 2, 1)
        return _join_halves(xp, ((offs_s & 1) != 0)[:, None, None], ssd, NS, BD, BL, 0)

    @jit
    def _load_delta(ptrs, bias, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
        """delta in fp32 after bias and softplus, 0 where masked; and d delta / d raw (softplus's
        sigmoid; 1 without softplus)."""
        return _delta(tl.load(ptrs, mask=mask, other=0.0), bias, mask, HAS_BIAS, SOFTPLUS)

    @jit
    def _delta(raw, bias, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
        """_load_delta of loaded values (the input's dtype)."""
        raw = raw.to(tl.float32)
        if HAS_BIAS:
            raw = raw + bias
        dt = raw
        dsp = tl.full(raw.shape, 1.0, tl.float32)
        if SOFTPLUS:
            dt, dsp = softplus_grad(raw)
        return tl.where(mask, dt, 0.0), dsp

    @jit
    def _load_bc(ptrs, n_i, n_state, EVEN_N: tl.constexpr):
        """B or C (NS, 1, BL) of states n_i in fp32, at positions clamped into the sequence (no
        position mask: past L, delta and dy are 0, so nothing read there contributes); states
        past N read as 0 unless EVEN_N (N == BLOCK_N)."""
        if EVEN_N:
            v = tl.load(ptrs)
        else:
            v = tl.load(ptrs, mask=n_i < n_state, other=0.0)
        return v.to(tl.float32)

    @jit
    def _bc_rows(row, n_i, s_n, s_l, pc3, start, L, like, n_state, REVERSE: tl.constexpr, EVEN_N: tl.constexpr,
                 NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr, BC_VEC: tl.constexpr):
        """B or C (NS, BD, BL) of states n_i at a tile's positions in fp32: by BC_VEC-element vector loads
        (``load_vec_rows``; past L, finite values that meet a zero delta u and dy: launch.bc_vec_width),
        or with BC_VEC = 0 one scalar load per position (``_load_bc``, at the clamped positions pc3)."""
        if BC_VEC:
            v = load_vec_rows(row + n_i * s_n, start, L, like, REVERSE, NS, BD, BL, BC_VEC)
        else:
            v = _load_bc(row + n_i * s_n + pc3 * s_l, n_i, n_state, EVEN_N)
        return v

    @jit
    def _setup(A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state,
               HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
               BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, NS: tl.constexpr):
        """Channel offsets (BD,), the iteration index (1, 1, N/NS), the (NS, 1, N/NS) state
        index, the carry mask, A * log2(e) as a (NS, BD, N/NS) carry, D and the delta bias (BD,),
        and a 1 the compiler cannot see (positions are addressed through it too: see the tile loops)."""
        NIT: tl.constexpr = BLOCK_N // NS
        LOG2E: tl.constexpr = 1.4426950408889634
        offs_d = d_start + tl.arange(0, BLOCK_D)
        mask_d = offs_d < dim
        cols = tl.arange(0, NIT)[None, None, :]
        # state of (lane, iteration). Multiplied by a 1 the compiler cannot see: with the states'
        # contiguity visible, the coalescing of the carry loads would put NS in each thread and
        # lay the whole tile out that way (the lanes then go to positions and the scans shuffle)
        unit = n_state // n_state
        n3 = (cols * NS + tl.arange(0, NS)[:, None, None]) * unit
        d3 = offs_d[None, :, None]
        mask3 = (n3 < n_state) & mask_d[None, :, None]
        A2c = tl.load(A_ptr + d3 * s_A_d + n3 * s_A_n, mask=mask3, other=0.0).to(tl.float32) * LOG2E
        Dv = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        bias = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        return offs_d, mask_d, cols, n3, d3, mask3, A2c, Dv, bias, unit

    @jit
    def _fold3(sh_ptr, ss_ptr, sum_off, n3, mask3, md3, A2c, h, start, step, count, n_state):
        """fold_summaries for (NS, BD, N/NS) carries; sum_off and the channel mask md3 (1, BD, 1)."""
        for jj in range(0, count):
            j = start + jj * step
            hj = tl.load(sh_ptr + (sum_off + j) * n_state + n3, mask=mask3, other=0.0)
            # (1, BD, 1), broadcast: loaded at the carries' shape, its own layout drew the fold (and
            # with the B/C vector loads, the tile loops' scans) into a layout of its own (Triton 3.6)
            sj = tl.load(ss_ptr + sum_off + j, mask=md3, other=0.0)
            h = tl.exp2(A2c * sj) * h + hj
        return h

    @jit
    def _sloop_fwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
        pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr, EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, NS: tl.constexpr,
        HS_SPLIT: tl.constexpr, STATES_ONLY: tl.constexpr, PREFETCH: tl.constexpr, SPLIT: tl.constexpr,
        BC_VEC: tl.constexpr, PREFETCH_BC: tl.constexpr,
    ):
        """One direction of the forward scan over segment ``seg`` (as ``_fwd_dir``), NS states at a
        time. STORE_STATES: the state after each sub-tile of BLOCK_L / HS_SPLIT positions (HS_SPLIT
        1 or 2; the backward's tiles), hs (B, D, cdiv(L, BLOCK_L / HS_SPLIT), N), in position order.
        STATES_ONLY: the states alone (no C, no output: a backward's re-run that gets y elsewhere).
        SPLIT (NS = 2 or 4 state lanes in one warp, the fastest): each state lane loads and prepares
        (softplus) only its part of a tile's rows (positions NS q + s, ``_part``), the lanes exchange
        delta and delta u for the state loop (``_gather_part``), and after it sum y over the lanes by
        a reduce-scatter and gate and store their own part (instead of every lane doing all
        positions and one storing). BC_VEC: B and C by BC_VEC-element vector loads
        (``load_vec_rows``; 0: one scalar load per position). PREFETCH_BC: each tile asks L1 for the next
        tile's B and C rows (``_prefetch_bc``)."""
        NIT: tl.constexpr = BLOCK_N // NS
        offs_d, mask_d, cols, n3, d3, mask3, A2c, Dv, bias, unit = _setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N, NS)
        offs_j = tl.arange(0, BLOCK_L)
        offs_s = tl.arange(0, NS)
        first3 = (offs_j == 0)[None, None, :]
        last3 = (offs_j == BLOCK_L - 1)[None, None, :]
        lane0 = (offs_s == 0)[:, None, None]  # the state lane that stores (BD, BL) results
        zs3 = tl.zeros([NS, 1, 1], dtype=tl.int32)  # broadcasts (BD, BL) pointers over the state lanes
        zd3 = tl.zeros([1, BLOCK_D, 1], dtype=tl.int32)  # broadcasts (NS, BL) pointers over the channels
        ssd = 1  # SPLIT: lanes between neighbouring state lanes (the fastest in the warp; config.FWD_SPLIT_BLOCKS_GPU)
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + d3 * s_u_d + zs3  # (NS, BD, 1)
        dt_row = dt_ptr + b64 * s_dt_b + d3 * s_dt_d + zs3
        z_row = z_ptr + b64 * s_z_b + d3 * s_z_d + zs3
        o_off = (b64 * dim + d3) * LP + zs3
        B_row = B_ptr + b64 * s_B_b + (d_start // dpg_B) * s_B_g + zd3
        C_row = C_ptr + b64 * s_C_b + (d_start // dpg_C) * s_C_g + zd3
        bias3 = bias[None, :, None]
        BLH: tl.constexpr = BLOCK_L // HS_SPLIT
        nths = (L + BLH - 1) // BLH  # stored states per row
        hs_row = hs_ptr + ((b64 * dim + d3) * nths) * n_state + n3  # (NS, BD, NIT)
        mid3 = (offs_j == BLH - 1)[None, None, :]  # the last position of the first sub-tile
        sum_off = (b64 * dim + d3) * nseg
        H = tl.zeros([NS, BLOCK_D, NIT], dtype=tl.float32)
        Hm = H
        if REVERSE:
            H = _fold3(sh_ptr, ss_ptr, sum_off, n3, mask3, mask_d[None, :, None], A2c, H, nseg - 1, -1, nseg - 1 - seg, n_state)
        else:
            H = _fold3(sh_ptr, ss_ptr, sum_off, n3, mask3, mask_d[None, :, None], A2c, H, 0, 1, seg, n_state)
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        for it in range(0, k_hi - k_lo):
            k = tile_index(it, k_lo, k_hi, REVERSE)
            if PREFETCH:  # the next tile's rows into L1 while this one computes (its first loads waited on L2)
                p_n = tl.minimum(tile_index(tl.minimum(it + 1, k_hi - k_lo - 1), k_lo, k_hi, REVERSE) * BLOCK_L,
                                 L - 1) * unit
                prefetch_l1(u_row + p_n)
                prefetch_l1(dt_row + p_n)
                if HAS_Z and not STATES_ONLY:
                    prefetch_l1(z_row + p_n)
                    if ACCUMULATE:
                        prefetch_l1(part_ptr + o_off + p_n)
            if PREFETCH_BC:  # the next tile's B and C rows (the state loop's loads)
                p_nb = tl.minimum(tile_index(tl.minimum(it + 1, k_hi - k_lo - 1), k_lo, k_hi, REVERSE) * BLOCK_L,
                                  L - 1) * unit
                _prefetch_bc(B_row, C_row, s_B_n, s_B_l, s_C_n, s_C_l, p_nb, n_state, offs_s, BLOCK_D,
                             not STATES_ONLY)
            pos, mask_l, _p1, _m1 = tile_positions(k, offs_j, L, REVERSE, BLOCK_L)
            # positions times the hidden 1: loads and stores then take the tile's own layout
            # (positions in each thread; scalar accesses, served by L1), no layout conversions.
            # With the contiguity visible they would be coalesced across lanes (rows of odd L
            # are not 16-byte aligned, so they cannot be vectorized in a thread either)
            p3 = (pos * unit)[None, None, :]
            pc3 = (tl.minimum(pos, L - 1) * unit)[None, None, :]  # B/C positions, clamped
            ml3 = mask_l[None, None, :]
            m3 = mask_d[None, :, None] & ml3
            if SPLIT:  # this lane's positions NS q + s: loaded and prepared here, exchanged for the state loop
                full = tl.zeros([NS, BLOCK_D, BLOCK_L], tl.int32)
                pp = _part(p3 + full, offs_s, NS, BLOCK_D, BLOCK_L)
                mp = _part(tl.where(m3, 1, 0) + full, offs_s, NS, BLOCK_D, BLOCK_L) != 0
                up = tl.load(u_row + pp, mask=mp, other=0.0).to(tl.float32)
                dtp, _dsp = _load_delta(dt_row + pp, bias3, mp, HAS_BIAS, SOFTPLUS)
                dt = _gather_part(dtp, offs_s, ssd, NS, BLOCK_D, BLOCK_L)
                dtu = _gather_part(dtp * up, offs_s, ssd, NS, BLOCK_D, BLOCK_L)
            else:
                u = tl.load(u_row + p3, mask=m3, other=0.0).to(tl.float32)  # (NS, BD, BL), same on every state lane
                dt, _dsp = _load_delta(dt_row + p3, bias3, m3, HAS_BIAS, SOFTPLUS)
                dtu = dt * u
            Y = tl.zeros([NS, BLOCK_D, BLOCK_L], dtype=tl.float32)
            for i in range(0, NIT * unit):  # not unrolled: B/C loads of later states would be hoisted
                n_i = (i * NS + offs_s)[:, None, None]
                Bi = _bc_rows(B_row, n_i, s_B_n, s_B_l, pc3, k * BLOCK_L, L, dt, n_state, REVERSE, EVEN_N, NS,
                              BLOCK_D, BLOCK_L, BC_VEC)
                a = tl.exp2(dt * _pick(A2c, cols, i)[:, :, None])
                bb = dtu * Bi
                bb = tl.where(first3, a * _pick(H, cols, i)[:, :, None] + bb, bb)  # the carried state enters
                _ac, h = tl.associative_scan((a, bb), 2, affine_combine)
                if not STATES_ONLY:
                    Ci = _bc_rows(C_row, n_i, s_C_n, s_C_l, pc3, k * BLOCK_L, L, dt, n_state, REVERSE, EVEN_N, NS,
                                  BLOCK_D, BLOCK_L, BC_VEC)
                    Y += h * Ci
                if STORE_STATES and HS_SPLIT == 2:
                    Hm = tl.where(cols == i, _pick(h, mid3.to(tl.int32), 1)[:, :, None], Hm)
                H = tl.where(cols == i, _pick(h, last3.to(tl.int32), 1)[:, :, None], H)
            if not STATES_ONLY and SPLIT:
                y = _sum_states_part(Y, offs_s, ssd, NS, BLOCK_D, BLOCK_L)
                if HAS_D:
                    y += Dv[None, :, None] * up
                if HAS_Z:
                    zt = tl.load(z_row + pp, mask=mp, other=0.0).to(tl.float32)
                    y *= zt * sigmoid(zt)
                store_bi(y, out_ptr, part_ptr, o_off + pp, mp, ACCUMULATE, TO_PART)
            elif not STATES_ONLY:
                y = tl.sum(Y, axis=0)[None, :, :]
                if HAS_D:
                    y += Dv[None, :, None] * u
                if HAS_Z:
                    zt = tl.load(z_row + p3, mask=m3, other=0.0).to(tl.float32)
                    y *= zt * sigmoid(zt)
                store_bi(y, out_ptr, part_ptr, o_off + p3, m3 & lane0, ACCUMULATE, TO_PART)
            if STORE_STATES:
                if HS_SPLIT == 2:  # sub-tiles 2k, 2k+1 in position order: forward, mid then end
                    if REVERSE:
                        tl.store(hs_row + (2 * k + 1) * n_state, Hm, mask=mask3 & (2 * k + 1 < nths))
                        tl.store(hs_row + (2 * k) * n_state, H, mask=mask3)
                    else:
                        tl.store(hs_row + (2 * k) * n_state, Hm, mask=mask3)
                        tl.store(hs_row + (2 * k + 1) * n_state, H, mask=mask3 & (2 * k + 1 < nths))
                else:
                    tl.store(hs_row + k * n_state, H, mask=mask3)
        if RETURN_LAST:
            if REVERSE:
                is_last = seg == 0
            else:
                is_last = seg == nseg - 1
            tl.store(last_ptr + (b64 * dim + d3) * n_state + n3, H, mask=mask3 & is_last)

    @jit
    def sloop_fwd_kernel(
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
        STORE_STATES: tl.constexpr, RETURN_LAST: tl.constexpr, EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, NS: tl.constexpr,
        HS_SPLIT: tl.constexpr, STATES_ONLY: tl.constexpr, PREFETCH: tl.constexpr = False, PREFETCH_BC: tl.constexpr = False,
        SPLIT: tl.constexpr = False, BC_VEC: tl.constexpr = 0,
    ):
        """Main forward pass, grid (channel blocks, batch, segments); the arguments of
        ``selective_scan_fwd_kernel`` (without SUMMARY; that kernel's summary launch comes first),
        the states stored at every BLOCK_L / HS_SPLIT positions. PREFETCH: each tile asks L1 for the
        next tile's rows (``prefetch_l1``) before its own loads. SPLIT: the state lanes share each tile's
        loads, softplus and output (``_sloop_fwd_dir``). BC_VEC: B and C by vector loads (``_sloop_fwd_dir``)."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        seg = tl.program_id(2)
        _sloop_fwd_dir(
            u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
            s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
            s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
            z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
            pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
            REV0, HAS_D0, HAS_Z, HAS_BIAS0, SOFTPLUS, False, BI, STORE_STATES, RETURN_LAST, EVEN_N,
            BLOCK_D, BLOCK_N, BLOCK_L, NS, HS_SPLIT, STATES_ONLY, PREFETCH, SPLIT, BC_VEC, PREFETCH_BC)
        if BI:
            tl.debug_barrier()
            _sloop_fwd_dir(
                u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                z_ptr, s_z_b, s_z_d, out_ptr, part_ptr, last_ptr,
                pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                True, HAS_D1, HAS_Z, HAS_BIAS1, SOFTPLUS, True, False, STORE_STATES, False, EVEN_N,
                BLOCK_D, BLOCK_N, BLOCK_L, NS, HS_SPLIT, STATES_ONLY, PREFETCH, SPLIT, BC_VEC, PREFETCH_BC)

    @jit
    def _sub_states(ks, H, L, unit, offs_j, offs_s, cols, A2c, mask_d, u_row, dt_row, B_row, bias3, s_B_n, s_B_l,
                    n_state, REVERSE: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                    EVEN_N: tl.constexpr, NS: tl.constexpr, NIT: tl.constexpr, BL: tl.constexpr,
                    BD: tl.constexpr, BC_VEC: tl.constexpr):
        """The carried state (NS, BD, N/NS) after sub-tile ks of BL positions, entered with H."""
        pos, mask_l, _p1, _m1 = tile_positions(ks, offs_j, L, REVERSE, BL)
        p3 = (pos * unit)[None, None, :]
        pc3 = (tl.minimum(pos, L - 1) * unit)[None, None, :]
        m3 = mask_d[None, :, None] & mask_l[None, None, :]
        first3 = (offs_j == 0)[None, None, :]
        last3 = (offs_j == BL - 1)[None, None, :]
        u = tl.load(u_row + p3, mask=m3, other=0.0).to(tl.float32)
        dt, _dsp = _load_delta(dt_row + p3, bias3, m3, HAS_BIAS, SOFTPLUS)
        dtu = dt * u
        for i in range(0, NIT * unit):
            n_i = (i * NS + offs_s)[:, None, None]
            Bi = _bc_rows(B_row, n_i, s_B_n, s_B_l, pc3, ks * BL, L, dt, n_state, REVERSE, EVEN_N, NS, BD, BL, BC_VEC)
            a = tl.exp2(dt * _pick(A2c, cols, i)[:, :, None])
            bb = dtu * Bi
            bb = tl.where(first3, a * _pick(H, cols, i)[:, :, None] + bb, bb)
            _ac, h = tl.associative_scan((a, bb), 2, affine_combine)
            H = tl.where(cols == i, _pick(h, last3.to(tl.int32), 1)[:, :, None], H)
        return H

    @jit
    def _join_halves(xh, sbit, ssd, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr, t: tl.constexpr = 0):
        """The inverse of ``_half`` across state lanes s and s ^ 2^t (sbit: bit t of s): xh (NS, BD,
        BL / 2), lane s holding the half of its bit, -> (NS, BD, BL) (one shuffle per value)."""
        other = bfly_states(xh, ssd, t, NS)
        return tl.reshape(tl.join(tl.where(sbit, other, xh), tl.where(sbit, xh, other)), (NS, BD, BL))

    @jit
    def _tile_offsets(k, L, unit, offs_j, mask_d, REVERSE: tl.constexpr, BL: tl.constexpr, HALF: tl.constexpr,
                      NS: tl.constexpr, BD: tl.constexpr):
        """Backward (sub-)tile k's row offsets (times the hidden 1) and their mask: (1, 1, BL) and
        (1, BD, BL), or with HALF each state lane's half of them (positions 2 r + s, ``_half``), (NS, BD, BL / 2)."""
        pos, mask_l, _p1, _m1 = tile_positions(k, offs_j, L, REVERSE, BL)
        p3 = (pos * unit)[None, None, :]
        m3 = mask_d[None, :, None] & mask_l[None, None, :]
        if HALF:
            sbit = (tl.arange(0, NS) == 1)[:, None, None]
            full = tl.zeros([NS, BD, BL], tl.int32)
            p3 = _half(p3 + full, sbit, NS, BD, BL)
            m3 = _half(tl.where(m3, 1, 0) + full, sbit, NS, BD, BL) != 0
        return p3, m3

    @jit
    def _tile_rows(k, L, unit, offs_j, mask_d, u_row, dt_row, do_row, z_row,
                   REVERSE: tl.constexpr, HAS_Z: tl.constexpr, BL: tl.constexpr, HALF: tl.constexpr,
                   NS: tl.constexpr, BD: tl.constexpr):
        """Backward (sub-)tile k's (NS, BD, BL) rows of u, delta (raw), dout and z as loaded (z: u
        without HAS_Z); with HALF each state lane's half of the positions, (NS, BD, BL / 2)."""
        p3, m3 = _tile_offsets(k, L, unit, offs_j, mask_d, REVERSE, BL, HALF, NS, BD)
        u = tl.load(u_row + p3, mask=m3, other=0.0)
        dt = tl.load(dt_row + p3, mask=m3, other=0.0)
        do = tl.load(do_row + p3, mask=m3, other=0.0)
        z = u
        if HAS_Z:
            z = tl.load(z_row + p3, mask=m3, other=0.0)
        return u, dt, do, z

    @jit
    def _tile_parts(k, L, unit, offs_j, mask_d, o_off, dzpart_ptr, ypart_ptr, REVERSE: tl.constexpr,
                    BL: tl.constexpr, NS: tl.constexpr, BD: tl.constexpr, WRITE_Y: tl.constexpr):
        """The first direction's fp32 partials of dz and y (y: dz's without WRITE_Y) at backward tile k, each
        state lane's half of the positions (``_half``): (NS, BD, BL / 2) each."""
        ph, mh = _tile_offsets(k, L, unit, offs_j, mask_d, REVERSE, BL, True, NS, BD)
        dzp = tl.load(dzpart_ptr + o_off + ph, mask=mh, other=0.0)
        yp = dzp
        if WRITE_Y:
            yp = tl.load(ypart_ptr + o_off + ph, mask=mh, other=0.0)
        return dzp, yp

    @jit
    def _entering_state(k, hs_row, mask3, ntiles, n_state, REVERSE: tl.constexpr):
        """The saved forward state entering backward tile k (NS, BD, N / NS); 0 for the sequence's first."""
        if REVERSE:
            h = tl.load(hs_row + (k + 1) * n_state, mask=mask3 & (k + 1 < ntiles), other=0.0)
        else:
            h = tl.load(hs_row + (k - 1) * n_state, mask=mask3 & (k > 0), other=0.0)
        return h

    @jit
    def _tile_inputs(k, L, unit, offs_j, mask_d, mask3, u_row, dt_row, do_row, z_row, hs_row, ntiles, n_state,
                     REVERSE: tl.constexpr, HAS_Z: tl.constexpr, BL: tl.constexpr, HALF: tl.constexpr,
                     NS: tl.constexpr, BD: tl.constexpr):
        """_tile_rows of tile k and its _entering_state."""
        u, dt, do, z = _tile_rows(k, L, unit, offs_j, mask_d, u_row, dt_row, do_row, z_row, REVERSE, HAS_Z, BL,
                                  HALF, NS, BD)
        return u, dt, do, z, _entering_state(k, hs_row, mask3, ntiles, n_state, REVERSE)

    @jit
    def _bwd_rows(u_r, dt_r, do_r, z_r, bias3, mask, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                  SOFTPLUS: tl.constexpr):
        """A backward tile's rows as loaded -> fp32 u, delta, d delta / d raw, dy (dout through the gate
        z sigmoid(z)), dzf (dz = dzf * y) and the gate; without HAS_Z dy = dout and the last two are dy."""
        u = u_r.to(tl.float32)
        dt, dsp = _delta(dt_r, bias3, mask, HAS_BIAS, SOFTPLUS)
        dy = do_r.to(tl.float32)
        dzf = dy
        gate = dy
        if HAS_Z:
            zt = z_r.to(tl.float32)
            sig = sigmoid(zt)
            dzf = dy * sig * (1.0 + zt * (1.0 - sig))  # dz = dzf * y
            gate = zt * sig
            dy = dy * gate
        return u, dt, dsp, dy, dzf, gate

    @jit
    def _bwd_state(i, S1, S2, Y, G, DA, B_row, C_row, s_B_n, s_C_n, s_B_l, s_C_l, pc3, p3, ks, L, LBp, unit, offs_s,
                   cols, A2c, H0, dt, dtu, dy, dt_next, first3, last3, dB_row, dC_row, cb, sc, chan0, n_state,
                   REVERSE: tl.constexpr, HAS_Z: tl.constexpr, DBC_ATOMIC: tl.constexpr, DBC_SCATTER: tl.constexpr,
                   EVEN_N: tl.constexpr, NS: tl.constexpr, BD: tl.constexpr, BL: tl.constexpr, BC_VEC: tl.constexpr):
        """State iteration i of ``_bwd_sub``'s loop (states i NS + s): the tile's forward states and
        adjoint for them, their terms added to the running sums S1, S2 (and Y with z), their columns
        of the carries G and DA replaced, and their dB / dC stored. Returns S1, S2, Y, G, DA."""
        n_i = (i * NS + offs_s)[:, None, None]
        Bi = _bc_rows(B_row, n_i, s_B_n, s_B_l, pc3, ks * BL, L, dt, n_state, REVERSE, EVEN_N, NS, BD, BL, BC_VEC)
        Ci = _bc_rows(C_row, n_i, s_C_n, s_C_l, pc3, ks * BL, L, dt, n_state, REVERSE, EVEN_N, NS, BD, BL, BC_VEC)
        A2i = _pick(A2c, cols, i)  # (NS, BD)
        a = tl.exp2(dt * A2i[:, :, None])
        bb = dtu * Bi
        h = tl.where(first3, a * _pick(H0, cols, i)[:, :, None] + bb, bb)
        _ac, h = tl.associative_scan((a, h), 2, affine_combine)  # h_t
        if HAS_Z:
            Y += h * Ci
        # adjoint; a_{t+1} past the sub-tile's last row: from the first delta of the one after it
        gin = tl.exp2(dt_next * A2i) * _pick(G, cols, i)
        beta = dy * Ci
        beta = tl.where(last3, beta + gin[:, :, None], beta)
        # the reverse scan as a forward scan of the flipped tile: tl.associative_scan(reverse=True)
        # lowers to warp shuffles even along an axis held in one thread; flips of such an axis
        # are register renames
        _gp, g, _gf = tl.associative_scan((tl.full(a.shape, 1.0, tl.float32), tl.flip(beta, 2), tl.flip(a, 2)),
                                          2, adjoint_combine)
        g = tl.flip(g, 2)
        G = tl.where(cols == i, _pick(g, first3.to(tl.int32), 1)[:, :, None], G)
        S1 += g * Bi
        ghb = g * (h - bb)  # g_t a_t h_{t-1}
        S2 += ghb * A2i[:, :, None]
        DA = tl.where(cols == i, DA + tl.sum(ghb * dt, axis=2)[:, :, None], DA)
        if DBC_SCATTER:  # summed over the block's channels and stored by a reduce-scatter
            _store_dbc_scatter(g * dtu, h * dy, dB_row, dC_row, n_i, LBp, ks, unit, cb, sc, n_state,
                               REVERSE, EVEN_N, NS, BD, BL)
        else:
            dBt = tl.sum(g * dtu, axis=1)[:, None, :]  # (NS, 1, BL), summed over the block's channels
            dCt = tl.sum(h * dy, axis=1)[:, None, :]
            # rows at pitch LBp >= every tile's positions: no position mask (0 written past L)
            if DBC_ATOMIC:  # (NS, BD, BL) pointers, channel 0's lanes add
                mnc = (n_i < n_state) & chan0
                tl.atomic_add(dB_row + n_i * LBp + p3, dBt, mask=mnc)
                tl.atomic_add(dC_row + n_i * LBp + p3, dCt, mask=mnc)
            elif EVEN_N:  # (NS, 1, BL) pointers: the stores skip the lanes that replicate an element
                tl.store(dB_row + n_i * LBp + p3, dBt)
                tl.store(dC_row + n_i * LBp + p3, dCt)
            else:
                tl.store(dB_row + n_i * LBp + p3, dBt, mask=n_i < n_state)
                tl.store(dC_row + n_i * LBp + p3, dCt, mask=n_i < n_state)
        return S1, S2, Y, G, DA

    @jit
    def _bwd_sub(
        ks, H0, G, DA, dt_next, dD_acc, dbias_acc,
        L, LBp, unit, offs_j, offs_s, cols, A2c, Dv3, bias3, mask_d, lane0, chan0,
        u_row, dt_row, z_row, do_row, o_off, B_row, C_row, dB_row, dC_row,
        s_B_n, s_B_l, s_C_n, s_C_l, n_state,
        du_ptr, ddt_ptr, dz_ptr, dzpart_ptr, y_ptr, ypart_ptr,
        REVERSE: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr, DBC_ATOMIC: tl.constexpr,
        EVEN_N: tl.constexpr, NS: tl.constexpr, NIT: tl.constexpr, BL: tl.constexpr, WRITE_Y: tl.constexpr,
        DBC_SCATTER: tl.constexpr, cb, sc, BD: tl.constexpr,
        u_in, dt_in, do_in, z_in, k_n, hs_row, ntiles, mask3, PRELOAD: tl.constexpr,
        SPLIT_TAIL: tl.constexpr, ssd, SPLIT_HEAD: tl.constexpr, BC_VEC: tl.constexpr, UNROLL: tl.constexpr,
        PREFETCH_BC: tl.constexpr, PREFETCH_PART: tl.constexpr, dzp_in, yp_in, PP2: tl.constexpr,
    ):
        """Backward over sub-tile ks (BL positions) entered with the forward state H0; the adjoint
        G, dA (DA) and the delta one past the sub-tile (dt_next) carried out to the sub-tile before it.
        PRELOAD (whole tiles): the tile's rows come in as u_in, dt_in, do_in, z_in, and the next
        tile's (k_n) are loaded after the state loop, in flight during this tile's tail, and returned
        with its entering state; otherwise those five pass through. SPLIT_TAIL (NS = 2, one warp):
        the per-position work after the state loop (sums over states, du, ddelta, dz, y) is split
        between the two state lanes, each doing and storing half of the positions (``_half``)
        instead of both doing all and one storing; dD / dbias are then per-lane partials. SPLIT_HEAD
        (with SPLIT_TAIL): each lane also loads and prepares (softplus, gate) only its half of the
        tile's rows; delta, delta u and dy are then exchanged for the state loop (``_join_halves``).
        BC_VEC: B and C by vector loads (``load_vec_rows``). UNROLL: the loop over the states
        unrolled (``_bwd_state`` inlined N / NS times). PREFETCH_BC (with PRELOAD): L1 is asked for the next
        tile's B and C rows with its other loads (``_prefetch_bc``); PREFETCH_PART (with PRELOAD) the
        first direction's fp32 partials of dz and y, which the second direction's tail adds to. PP2 (the second
        direction, with PRELOAD and SPLIT_TAIL): those partials are loaded with the next tile's rows instead
        (this tile's come in as dzp_in, yp_in; the next tile's are returned)."""
        LN2: tl.constexpr = 0.6931471805599453
        pos, mask_l, _p1, _m1 = tile_positions(ks, offs_j, L, REVERSE, BL)
        # positions times the hidden 1: loads and stores then take the tile's own layout
        # (positions in each thread; scalar accesses, served by L1), no layout conversions.
        # With the contiguity visible they would be coalesced across lanes (rows of odd L
        # are not 16-byte aligned, so they cannot be vectorized in a thread either)
        p3 = (pos * unit)[None, None, :]
        pc3 = (tl.minimum(pos, L - 1) * unit)[None, None, :]  # B/C positions, clamped
        ml3 = mask_l[None, None, :]
        m3 = mask_d[None, :, None] & ml3
        first3 = (offs_j == 0)[None, None, :]
        last3 = (offs_j == BL - 1)[None, None, :]
        if PRELOAD:
            u_r, dt_r, do_r, z_r = u_in, dt_in, do_in, z_in
        else:
            u_r, dt_r, do_r, z_r = _tile_rows(ks, L, unit, offs_j, mask_d, u_row, dt_row, do_row, z_row,
                                              REVERSE, HAS_Z, BL, SPLIT_HEAD, NS, BD)
        if SPLIT_TAIL:  # lane s: positions 2 r + s (state lanes s = 0, 1)
            sbit = (offs_s == 1)[:, None, None]
            ph, mh = _tile_offsets(ks, L, unit, offs_j, mask_d, REVERSE, BL, True, NS, BD)
        if SPLIT_HEAD:  # rows of this lane's positions: prepared here, exchanged for the state loop
            uh, dth, dsph, dyh, dzfh, gateh = _bwd_rows(u_r, dt_r, do_r, z_r, bias3, mh, HAS_Z, HAS_BIAS, SOFTPLUS)
            dt = _join_halves(dth, sbit, ssd, NS, BD, BL)
            dtu = _join_halves(dth * uh, sbit, ssd, NS, BD, BL)
            dy = _join_halves(dyh, sbit, ssd, NS, BD, BL)
        else:  # (NS, BD, BL), the same on every state lane
            u, dt, dsp, dy, dzf, gate = _bwd_rows(u_r, dt_r, do_r, z_r, bias3, m3, HAS_Z, HAS_BIAS, SOFTPLUS)
            dtu = dt * u
            if SPLIT_TAIL:  # this lane's half for the tail
                uh = _half(u, sbit, NS, BD, BL)
                dth = _half(dt, sbit, NS, BD, BL)
                dyh = _half(dy, sbit, NS, BD, BL)
                dsph = _half(dsp, sbit, NS, BD, BL)
                if HAS_Z:
                    dzfh = _half(dzf, sbit, NS, BD, BL)
                    gateh = _half(gate, sbit, NS, BD, BL)
        S1 = tl.zeros(dt.shape, dtype=tl.float32)  # sum over states of g B
        S2 = tl.zeros(dt.shape, dtype=tl.float32)  # sum over states of g A2 a h_{t-1}
        Y = tl.zeros(dt.shape, dtype=tl.float32)  # (with z) the output before the gate
        if UNROLL:  # each state's columns of the carries picked at compile time (no selects)
            for i in tl.static_range(NIT):
                S1, S2, Y, G, DA = _bwd_state(
                    i, S1, S2, Y, G, DA, B_row, C_row, s_B_n, s_C_n, s_B_l, s_C_l, pc3, p3, ks, L, LBp, unit, offs_s,
                    cols, A2c, H0, dt, dtu, dy, dt_next, first3, last3, dB_row, dC_row, cb, sc, chan0, n_state,
                    REVERSE, HAS_Z, DBC_ATOMIC, DBC_SCATTER, EVEN_N, NS, BD, BL, BC_VEC)
        else:
            for i in range(0, NIT * unit):  # not unrolled: B/C loads of later states would be hoisted
                S1, S2, Y, G, DA = _bwd_state(
                    i, S1, S2, Y, G, DA, B_row, C_row, s_B_n, s_C_n, s_B_l, s_C_l, pc3, p3, ks, L, LBp, unit, offs_s,
                    cols, A2c, H0, dt, dtu, dy, dt_next, first3, last3, dB_row, dC_row, cb, sc, chan0, n_state,
                    REVERSE, HAS_Z, DBC_ATOMIC, DBC_SCATTER, EVEN_N, NS, BD, BL, BC_VEC)
        H_n = H0
        if PRELOAD:  # the next tile's rows, in flight during the tail below
            u_in, dt_in, do_in, z_in, H_n = _tile_inputs(k_n, L, unit, offs_j, mask_d, mask3, u_row, dt_row, do_row,
                                                         z_row, hs_row, ntiles, n_state, REVERSE, HAS_Z, BL,
                                                         SPLIT_HEAD, NS, BD)
            p_nt = tl.minimum(k_n * BL, L - 1) * unit  # the next tile's first position
            if PREFETCH_BC:
                _prefetch_bc(B_row, C_row, s_B_n, s_B_l, s_C_n, s_C_l, p_nt, n_state, offs_s, BD, True)
            if PP2:  # the next tile's partials, into registers
                dzp_n, yp_n = _tile_parts(k_n, L, unit, offs_j, mask_d, o_off, dzpart_ptr, ypart_ptr, REVERSE, BL, NS,
                                          BD, WRITE_Y)
            elif PREFETCH_PART and ACCUMULATE and HAS_Z:  # the first direction's partials the tail adds to
                pp = dzpart_ptr + o_off + p_nt
                if WRITE_Y:
                    pp = tl.where((offs_s % 2 == 0)[:, None, None], pp, ypart_ptr + o_off + p_nt)
                prefetch_l1(pp)
        dt_next = _pick(dt, first3.to(tl.int32), 1)
        if SPLIT_TAIL:
            s1 = _sum_states_half(S1, sbit, ssd, NS, BD, BL)
            du = dth * s1 + dyh * Dv3
            ddt = uh * s1 + _sum_states_half(S2, sbit, ssd, NS, BD, BL) * LN2
            if SOFTPLUS:
                ddt = ddt * dsph
            ddt = tl.where(mh, ddt, 0.0)
            dD_acc += tl.sum(dyh * uh, axis=2)
            dbias_acc += tl.sum(ddt, axis=2)
            tl.store(du_ptr + o_off + ph, du.to(du_ptr.dtype.element_ty), mask=mh)
            tl.store(ddt_ptr + o_off + ph, ddt.to(ddt_ptr.dtype.element_ty), mask=mh)
            if HAS_Z:
                y_pre = _sum_states_half(Y, sbit, ssd, NS, BD, BL) + Dv3 * uh
                if PP2:  # the second direction: the first's partials came in with the rows
                    tl.store(dz_ptr + o_off + ph, (dzfh * y_pre + dzp_in).to(dz_ptr.dtype.element_ty), mask=mh)
                    if WRITE_Y:
                        tl.store(y_ptr + o_off + ph, (y_pre * gateh + yp_in).to(y_ptr.dtype.element_ty), mask=mh)
                else:
                    store_bi(dzfh * y_pre, dz_ptr, dzpart_ptr, o_off + ph, mh, ACCUMULATE, TO_PART)
                    if WRITE_Y:
                        store_bi(y_pre * gateh, y_ptr, ypart_ptr, o_off + ph, mh, ACCUMULATE, TO_PART)
        else:
            s1 = tl.sum(S1, axis=0)[None, :, :]
            du = dt * s1 + dy * Dv3
            ddt = u * s1 + tl.sum(S2, axis=0)[None, :, :] * LN2
            if SOFTPLUS:
                ddt = ddt * dsp
            ddt = tl.where(m3, ddt, 0.0)
            dD_acc += tl.sum(dy * u, axis=2)
            dbias_acc += tl.sum(ddt, axis=2)
            tl.store(du_ptr + o_off + p3, du.to(du_ptr.dtype.element_ty), mask=m3 & lane0)
            tl.store(ddt_ptr + o_off + p3, ddt.to(ddt_ptr.dtype.element_ty), mask=m3 & lane0)
            if HAS_Z:
                y_pre = tl.sum(Y, axis=0)[None, :, :] + Dv3 * u  # the forward's output before the gate
                store_bi(dzf * y_pre, dz_ptr, dzpart_ptr, o_off + p3, m3 & lane0, ACCUMULATE, TO_PART)
                if WRITE_Y:  # the forward's gated output, as the forward kernel writes it
                    store_bi(y_pre * gate, y_ptr, ypart_ptr, o_off + p3, m3 & lane0, ACCUMULATE, TO_PART)
        if PP2:
            dzp_in, yp_in = dzp_n, yp_n
        return G, DA, dt_next, dD_acc, dbias_acc, u_in, dt_in, do_in, z_in, H_n, dzp_in, yp_in

    @jit
    def _sloop_bwd_dir(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        du_ptr, ddt_ptr, dsmall_ptr, dB_ptr, dC_ptr, G_B, G_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr, y_ptr, ypart_ptr,
        pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
        REVERSE: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr,
        DBC_ATOMIC: tl.constexpr, EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, NS: tl.constexpr,
        SUB: tl.constexpr, WRITE_Y: tl.constexpr, DBC_SCATTER: tl.constexpr, PRELOAD: tl.constexpr,
        SPLIT_TAIL: tl.constexpr, SPLIT_HEAD: tl.constexpr, BC_VEC: tl.constexpr, UNROLL: tl.constexpr,
        PREFETCH_BC: tl.constexpr, PREFETCH_PART: tl.constexpr,
    ):
        """Backward of one direction over segment ``seg`` (as ``_bwd_dir`` with one exp per
        element), NS states at a time. Per state: the tile's forward states from the saved
        tile-boundary state, the adjoint ``g_t = C_t dy_t + a_{t+1} g_{t+1}`` (reverse scan over
        ``adjoint_combine`` triples, a_{t+1} from the tile's own a), then its terms of du / ddelta
        (running sums over states), dA (carried), dB / dC (reduced over the block's channels).
        SUB = 2: each tile of saved states is done as two halves (half the live registers); the
        state entering the later half is recomputed from the tile's saved state first."""
        NIT: tl.constexpr = BLOCK_N // NS
        BLS: tl.constexpr = BLOCK_L // SUB
        offs_d, mask_d, cols, n3, d3, mask3, A2c, Dv, bias, unit = _setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N, NS)
        offs_j = tl.arange(0, BLS)
        offs_s = tl.arange(0, NS)
        lane0 = (offs_s == 0)[:, None, None]  # the state lane that stores (BD, BL) results
        chan0 = (tl.arange(0, BLOCK_D) == 0)[None, :, None]  # the channel lane that stores (NS, BL) results
        cb = tl.arange(0, BLOCK_D)[None, :, None]  # channel within the block (1, BD, 1)
        sc = lane_stride(cb, offs_s[:, None, None], NS)  # lanes between neighbouring channels (DBC_SCATTER)
        ssd = tl.where(sc == NS, 1, BLOCK_D)  # lanes between the two state lanes (SPLIT_TAIL)
        zs3 = tl.zeros([NS, 1, 1], dtype=tl.int32)  # broadcasts (BD, BL) pointers over the state lanes
        zd3 = tl.zeros([1, BLOCK_D, 1], dtype=tl.int32)  # broadcasts (NS, BL) pointers over the channels
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + d3 * s_u_d + zs3  # (NS, BD, 1)
        dt_row = dt_ptr + b64 * s_dt_b + d3 * s_dt_d + zs3
        z_row = z_ptr + b64 * s_z_b + d3 * s_z_d + zs3
        do_row = dout_ptr + b64 * s_do_b + d3 * s_do_d + zs3
        o_off = (b64 * dim + d3) * LP + zs3
        gB = d_start // dpg_B
        gC = d_start // dpg_C
        B_row = B_ptr + b64 * s_B_b + gB * s_B_g + zd3
        C_row = C_ptr + b64 * s_C_b + gC * s_C_g + zd3
        LBp = ntiles * BLOCK_L  # dB/dC row pitch: every tile's positions, padding included
        if DBC_ATOMIC:  # dB (B, G_B, N, LBp), dC (B, G_C, N, LBp)
            dB_row = dB_ptr + (b64 * G_B + gB) * n_state * LBp + zd3
            dC_row = dC_ptr + (b64 * G_C + gC) * n_state * LBp + zd3
        else:  # this channel block's rows of (B, nblk, N, LBp) partials
            blk = d_start // BLOCK_D
            dB_row = dB_ptr + (b64 * G_B + blk) * n_state * LBp
            dC_row = dC_ptr + (b64 * G_C + blk) * n_state * LBp
        bias3 = bias[None, :, None]
        Dv3 = Dv[None, :, None]
        hs_row = hs_ptr + ((b64 * dim + d3) * ntiles) * n_state + n3  # (NS, BD, NIT)
        # adjoint entering the segment from after it: dlast, folded through the later segments
        G = tl.zeros([NS, BLOCK_D, NIT], dtype=tl.float32)
        if HAS_DLAST:
            G = tl.load(dlast_ptr + (b64 * dim + d3) * n_state + n3, mask=mask3, other=0.0).to(tl.float32)
        sum_off = (b64 * dim + d3) * nseg
        if REVERSE:
            G = _fold3(sh_ptr, ss_ptr, sum_off, n3, mask3, mask_d[None, :, None], A2c, G, 0, 1, seg, n_state)
        else:
            G = _fold3(sh_ptr, ss_ptr, sum_off, n3, mask3, mask_d[None, :, None], A2c, G, nseg - 1, -1, nseg - 1 - seg, n_state)
        DA = tl.zeros([NS, BLOCK_D, NIT], dtype=tl.float32)
        dD_acc = tl.zeros([NS, BLOCK_D], dtype=tl.float32)
        dbias_acc = tl.zeros([NS, BLOCK_D], dtype=tl.float32)
        k_lo = seg * tps
        k_hi = tl.minimum(k_lo + tps, ntiles)
        # delta at the position after the segment in processing order (a_{t+1} of its last position)
        if REVERSE:
            p_next = k_lo * BLOCK_L - 1
        else:
            p_next = k_hi * BLOCK_L
        in_seq = (p_next >= 0) & (p_next < L)
        dt_n, _dsp_n = _load_delta(dt_row + p_next * unit, bias3, mask_d[None, :, None] & in_seq, HAS_BIAS, SOFTPLUS)
        dt_next = tl.sum(dt_n, axis=2)  # (NS, BD), same on every state lane
        u_in = dt_next  # PRELOAD: the next tile's rows and entering state (else placeholders, passed through)
        dt_in = dt_next
        do_in = dt_next
        z_in = dt_next
        H_in = G
        if PRELOAD:
            u_in, dt_in, do_in, z_in, H_in = _tile_inputs(tile_index(0, k_lo, k_hi, not REVERSE), L, unit, offs_j,
                                                          mask_d, mask3, u_row, dt_row, do_row, z_row, hs_row,
                                                          ntiles, n_state, REVERSE, HAS_Z, BLOCK_L, SPLIT_HEAD, NS,
                                                          BLOCK_D)
        # PREFETCH_PART == 2: the second direction loads the first's partials with each tile's rows (PP2)
        PP2: tl.constexpr = (PREFETCH_PART == 2) and ACCUMULATE and HAS_Z and SPLIT_TAIL and PRELOAD and SUB == 1
        dzp_in = dt_next  # placeholders without PP2
        yp_in = dt_next
        if PP2:
            dzp_in, yp_in = _tile_parts(tile_index(0, k_lo, k_hi, not REVERSE), L, unit, offs_j, mask_d, o_off,
                                        dzpart_ptr, ypart_ptr, REVERSE, BLOCK_L, NS, BLOCK_D, WRITE_Y)
        for it in range(0, k_hi - k_lo):  # tiles last to first in processing order
            k = tile_index(it, k_lo, k_hi, not REVERSE)
            k_n = tile_index(tl.minimum(it + 1, k_hi - k_lo - 1), k_lo, k_hi, not REVERSE)
            if PRELOAD:
                H0 = H_in
            else:
                H0 = _entering_state(k, hs_row, mask3, ntiles, n_state, REVERSE)  # (NS, BD, NIT)
            for q in tl.static_range(SUB):  # the tile's sub-tiles, last to first in processing order
                hh = SUB - 1 - q
                if REVERSE:
                    ks = k * SUB + SUB - 1 - hh
                else:
                    ks = k * SUB + hh
                Hin = H0
                if hh == 1:  # (SUB <= 2) the state after the first half
                    if REVERSE:
                        ks0 = k * SUB + SUB - 1
                    else:
                        ks0 = k * SUB
                    Hin = _sub_states(ks0, H0, L, unit, offs_j, offs_s, cols, A2c, mask_d, u_row, dt_row, B_row,
                                      bias3, s_B_n, s_B_l, n_state, REVERSE, HAS_BIAS, SOFTPLUS, EVEN_N, NS, NIT, BLS,
                                      BLOCK_D, BC_VEC)
                G, DA, dt_next, dD_acc, dbias_acc, u_in, dt_in, do_in, z_in, H_in, dzp_in, yp_in = _bwd_sub(
                    ks, Hin, G, DA, dt_next, dD_acc, dbias_acc,
                    L, LBp, unit, offs_j, offs_s, cols, A2c, Dv3, bias3, mask_d, lane0, chan0,
                    u_row, dt_row, z_row, do_row, o_off, B_row, C_row, dB_row, dC_row,
                    s_B_n, s_B_l, s_C_n, s_C_l, n_state,
                    du_ptr, ddt_ptr, dz_ptr, dzpart_ptr, y_ptr, ypart_ptr,
                    REVERSE, HAS_Z, HAS_BIAS, SOFTPLUS, ACCUMULATE, TO_PART, DBC_ATOMIC, EVEN_N, NS, NIT, BLS,
                    WRITE_Y, DBC_SCATTER, cb, sc, BLOCK_D,
                    u_in, dt_in, do_in, z_in, k_n, hs_row, ntiles, mask3, PRELOAD and SUB == 1, SPLIT_TAIL, ssd,
                    SPLIT_HEAD, BC_VEC, UNROLL, PREFETCH_BC, PREFETCH_PART, dzp_in, yp_in, PP2)
        s_off = ((seg * tl.num_programs(1) + b64) * dim + d3) * (n_state + 2)  # (1, BD, 1)
        tl.store(dsmall_ptr + s_off + n3, DA, mask=mask3)
        s_off2 = tl.sum(s_off + zs3, axis=2)  # (NS, BD)
        m_d2 = (mask_d[None, :] & (offs_s == 0)[:, None])
        if SPLIT_TAIL:  # per-lane partials (each state lane did half of the positions)
            dD_acc = tl.sum(dD_acc, axis=0)[None, :] + tl.zeros_like(dD_acc)
            dbias_acc = tl.sum(dbias_acc, axis=0)[None, :] + tl.zeros_like(dbias_acc)
        tl.store(dsmall_ptr + s_off2 + n_state, dD_acc, mask=m_d2)
        tl.store(dsmall_ptr + s_off2 + n_state + 1, dbias_acc, mask=m_d2)

    @jit
    def sloop_bwd_kernel(
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
        HAS_DLAST: tl.constexpr, DBC_ATOMIC: tl.constexpr, EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, NS: tl.constexpr, SUB: tl.constexpr,
        WRITE_Y: tl.constexpr, y_ptr, ypart_ptr, DBC_SCATTER: tl.constexpr = False, PRELOAD: tl.constexpr = False,
        SPLIT_TAIL: tl.constexpr = False, SPLIT_HEAD: tl.constexpr = False, BC_VEC: tl.constexpr = 0,
        UNROLL: tl.constexpr = False, PREFETCH_BC: tl.constexpr = False, PREFETCH_PART: tl.constexpr = False,
    ):
        """Main backward pass, the arguments of ``selective_scan_bwd_kernel`` (without SUMMARY /
        EXP_ONCE; that kernel's summary launch comes first).
        WRITE_Y (needs HAS_Z) also writes the forward's gated output to y_ptr (B, D, LP) from the
        states it recomputes (ypart_ptr: the first direction's fp32 partial, as dzpart).
        DBC_SCATTER: dB / dC partials by a reduce-scatter across the channel lanes
        (``_store_dbc_scatter``) instead of two all-reduces per state. SPLIT_TAIL (NS = 2, the lane
        layout DBC_SCATTER needs): the two state lanes share each tile's per-position tail (``_bwd_sub``);
        SPLIT_HEAD (with SPLIT_TAIL) also its loads and their preparation. BC_VEC: B and C by vector
        loads, UNROLL: the loop over the states unrolled (``_bwd_sub``), PREFETCH_BC: L1 asked for the next
        tile's B and C rows with its other loads, PREFETCH_PART: 1, and the second direction the first's
        partials of dz and y; 2, those partials loaded into registers with the rows instead."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        seg = tl.program_id(2)
        _sloop_bwd_dir(
            u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
            s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
            s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
            du0, ddt0, dsmall0, dB0, dC0, G_B0, G_C0,
            z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr, y_ptr, ypart_ptr,
            pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
            REV0, HAS_D0, HAS_Z, HAS_BIAS0, SOFTPLUS, HAS_DLAST, False, BI, DBC_ATOMIC, EVEN_N,
            BLOCK_D, BLOCK_N, BLOCK_L, NS, SUB, WRITE_Y, DBC_SCATTER, PRELOAD, SPLIT_TAIL, SPLIT_HEAD, BC_VEC,
            UNROLL, PREFETCH_BC, PREFETCH_PART)
        if BI:
            tl.debug_barrier()
            _sloop_bwd_dir(
                u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                du1, ddt1, dsmall1, dB1, dC1, G_B1, G_C1,
                z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d, dlast_ptr, dz_ptr, dzpart_ptr, y_ptr, ypart_ptr,
                pid_b, d_start, seg, dim, L, LP, n_state, ntiles, nseg, tps,
                True, HAS_D1, HAS_Z, HAS_BIAS1, SOFTPLUS, False, True, False, DBC_ATOMIC, EVEN_N,
                BLOCK_D, BLOCK_N, BLOCK_L, NS, SUB, WRITE_Y, DBC_SCATTER, PRELOAD, SPLIT_TAIL, SPLIT_HEAD, BC_VEC,
            UNROLL, PREFETCH_BC, PREFETCH_PART)
