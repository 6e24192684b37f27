"""Segment-summary kernels in the state-loop layout (README.md beside this file: "Segments").

A segmented scan first writes, for every segment, what the segment does to a state entering it,
so that each main-launch program can start from the right state without waiting for the program
before it. Forward: the state at the segment's end entered with h = 0, and the segment's summed
delta (``h -> exp(A ss) h + sh``). Backward: the adjoint at the segment's first position in
processing order with nothing coming in after it, and the delta summed one position ahead. Both
are closed forms per tile, one exponential per (state, channel, position), no scan:

    forward:  sh = sum_t exp(A (tot - cumsum_t)) delta_t B_t u_t
    backward: sh = sum_t exp(A (cumsum1_t - delta1_t)) C_t dy_t,  dy = dout silu(z)

These kernels compute them in the state-loop tile of ``selective_scan_sloop``: (NS, BLOCK_D,
BLOCK_L) with positions in each thread's registers and the N states visited NS at a time, so the
sums over positions and the prefix sums of delta stay inside a thread (no shared memory, no
barriers), the per-position work (softplus, the gate's SiLU, the loads) is shared by N / NS
states, and B / C come by the main kernels' 16-byte vector loads. The whole-state tile3d summary
(``selective_scan_fwd.py`` / ``selective_scan_bwd.py``, ``VIDEOMAMBA_TRITON_SUM_KERNEL=tile3d``)
reduced each tile over positions across its four warps through shared memory, eight barriers per
tile. Arguments: those of the main sloop kernels, so that one argument list serves both launches.
"""

from __future__ import annotations

from .runtime import HAS_TRITON, jit, tl
from .scan_common import segment_span, segment_tile, sigmoid, tile_index
from .selective_scan_sloop import _bc_rows, _load_delta, _pick, _setup

__all__ = ["sloop_fwd_summary_kernel", "sloop_bwd_summary_kernel"]

if HAS_TRITON:

    @jit
    def _store_summary(sh_ptr, ss_ptr, H, S, b64, d3, n3, mask3, offs_s, dim, seg, nseg, n_state):
        """sh (B, D, nseg, N) from the (NS, BD, N / NS) carry H; ss (B, D, nseg) from the (NS, BD, 1)
        delta sums S (equal on every state lane: lane 0 stores)."""
        sum_off = (b64 * dim + d3) * nseg + seg  # (1, BD, 1)
        tl.store(sh_ptr + sum_off * n_state + n3, H, mask=mask3)
        lane0 = (offs_s == 0)[:, None, None] & (d3 < dim)
        tl.store(ss_ptr + sum_off + tl.zeros_like(S).to(tl.int32), S, mask=lane0)

    @jit
    def _fwd_summary_sloop(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        pid_b, d_start, seg, dim, L, n_state, nseg, tps,
        REVERSE: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, NS: tl.constexpr,
        SEG_TILE: tl.constexpr, SKIP: tl.constexpr, BC_VEC: tl.constexpr,
    ):
        """One direction's forward summary of segment ``seg`` (``tps`` tiles of SEG_TILE positions of
        the main launch), walked in tiles of BLOCK_L positions in processing order. SKIP: nothing
        computed for the segment processed last (no segment folds it in)."""
        NIT: tl.constexpr = BLOCK_N // NS
        offs_d, mask_d, cols, n3, d3, mask3, A2c, _Dv, bias, unit = _setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, False, HAS_BIAS, BLOCK_D, BLOCK_N, NS)
        offs_j = tl.arange(0, BLOCK_L)
        offs_s = tl.arange(0, NS)
        zs3 = tl.zeros([NS, 1, 1], dtype=tl.int32)
        zd3 = tl.zeros([1, BLOCK_D, 1], dtype=tl.int32)
        b64 = pid_b.to(tl.int64)
        u_row = u_ptr + b64 * s_u_b + d3 * s_u_d + zs3  # (NS, BD, 1)
        dt_row = dt_ptr + b64 * s_dt_b + d3 * s_dt_d + zs3
        B_row = B_ptr + b64 * s_B_b + (d_start // dpg_B) * s_B_g + zd3
        bias3 = bias[None, :, None]
        H = tl.zeros([NS, BLOCK_D, NIT], dtype=tl.float32)
        S = tl.zeros([NS, BLOCK_D, 1], dtype=tl.float32)
        p_lo, p_hi, n_t = segment_span(seg, tps, SEG_TILE, L, BLOCK_L, SKIP, 0 if REVERSE else (nseg - 1))
        for it in range(0, n_t):
            k = tile_index(it, 0, n_t, REVERSE)
            pos, mask_l, _p1, _m1 = segment_tile(k, offs_j, p_lo, p_hi, L, REVERSE, BLOCK_L)
            # positions times a 1 the compiler cannot see: the tile keeps positions in each thread
            p3 = (pos * unit)[None, None, :]
            pc3 = (tl.minimum(pos, L - 1) * unit)[None, None, :]
            m3 = mask_d[None, :, None] & mask_l[None, None, :]
            u = tl.load(u_row + p3, mask=m3, other=0.0).to(tl.float32)
            dt, _dsp = _load_delta(dt_row + p3, bias3, m3, HAS_BIAS, SOFTPLUS)
            dtu = dt * u
            tot = tl.sum(dt, axis=2)[:, :, None]  # (NS, BD, 1)
            rest = tot - tl.cumsum(dt, axis=2)  # delta summed after each position, to the tile's end
            for i in range(0, NIT * unit):
                n_i = (i * NS + offs_s)[:, None, None]
                Bi = _bc_rows(B_row, n_i, s_B_n, s_B_l, pc3, p_lo + k * BLOCK_L, L, dt, n_state, REVERSE, EVEN_N,
                              NS, BLOCK_D, BLOCK_L, BC_VEC)
                a2 = _pick(A2c, cols, i)[:, :, None]  # (NS, BD, 1)
                w = tl.exp2(rest * a2)
                hi = tl.exp2(tot * a2) * _pick(H, cols, i)[:, :, None] + tl.sum(w * dtu * Bi, axis=2)[:, :, None]
                H = tl.where(cols == i, hi, H)
            S += tot
        _store_summary(sh_ptr, ss_ptr, H, S, b64, d3, n3, mask3, offs_s, dim, seg, nseg, n_state)

    @jit
    def _bwd_summary_sloop(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, hs_ptr, sh_ptr, ss_ptr,
        s_u_b, s_u_d, s_dt_b, s_dt_d, s_A_d, s_A_n,
        s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l, dpg_B, dpg_C,
        z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
        pid_b, d_start, seg, dim, L, n_state, nseg, tps,
        REVERSE: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        EVEN_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
        NS: tl.constexpr, SEG_TILE: tl.constexpr, SKIP: tl.constexpr, BC_VEC: tl.constexpr,
    ):
        """One direction's backward (adjoint) summary of segment ``seg``, tiles walked last to first
        in processing order. SKIP: nothing computed for the segment processed first by the backward
        (no segment folds it in)."""
        NIT: tl.constexpr = BLOCK_N // NS
        offs_d, mask_d, cols, n3, d3, mask3, A2c, _Dv, bias, unit = _setup(
            A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state, False, HAS_BIAS, BLOCK_D, BLOCK_N, NS)
        offs_j = tl.arange(0, BLOCK_L)
        offs_s = tl.arange(0, NS)
        zs3 = tl.zeros([NS, 1, 1], dtype=tl.int32)
        zd3 = tl.zeros([1, BLOCK_D, 1], dtype=tl.int32)
        b64 = pid_b.to(tl.int64)
        dt_row = dt_ptr + b64 * s_dt_b + d3 * s_dt_d + zs3  # (NS, BD, 1)
        z_row = z_ptr + b64 * s_z_b + d3 * s_z_d + zs3
        do_row = dout_ptr + b64 * s_do_b + d3 * s_do_d + zs3
        C_row = C_ptr + b64 * s_C_b + (d_start // dpg_C) * s_C_g + zd3
        bias3 = bias[None, :, None]
        G = tl.zeros([NS, BLOCK_D, NIT], dtype=tl.float32)
        S = tl.zeros([NS, BLOCK_D, 1], dtype=tl.float32)
        p_lo, p_hi, n_t = segment_span(seg, tps, SEG_TILE, L, BLOCK_L, SKIP, (nseg - 1) if REVERSE else 0)
        for it in range(0, n_t):  # tiles last to first in processing order
            k = tile_index(it, 0, n_t, not REVERSE)
            pos, mask_l, pos1, mask_l1 = segment_tile(k, offs_j, p_lo, p_hi, L, REVERSE, BLOCK_L)
            p3 = (pos * unit)[None, None, :]
            pc3 = (tl.minimum(pos, L - 1) * unit)[None, None, :]
            md3 = mask_d[None, :, None]
            m3 = md3 & mask_l[None, None, :]
            dt1, _dsp = _load_delta(dt_row + (pos1 * unit)[None, None, :], bias3, md3 & mask_l1[None, None, :],
                                    HAS_BIAS, SOFTPLUS)  # delta one position ahead in processing order
            dy = tl.load(do_row + p3, mask=m3, other=0.0).to(tl.float32)
            if HAS_Z:
                zt = tl.load(z_row + p3, mask=m3, other=0.0).to(tl.float32)
                dy = dy * zt * sigmoid(zt)
            tot1 = tl.sum(dt1, axis=2)[:, :, None]
            before = tl.cumsum(dt1, axis=2) - dt1  # a_{first+1} ... a_t of the tile, as a sum of delta
            for i in range(0, NIT * unit):
                n_i = (i * NS + offs_s)[:, None, None]
                Ci = _bc_rows(C_row, n_i, s_C_n, s_C_l, pc3, p_lo + k * BLOCK_L, L, dt1, n_state, REVERSE, EVEN_N,
                              NS, BLOCK_D, BLOCK_L, BC_VEC)
                a2 = _pick(A2c, cols, i)[:, :, None]
                w = tl.exp2(before * a2)
                gi = tl.exp2(tot1 * a2) * _pick(G, cols, i)[:, :, None] + tl.sum(w * Ci * dy, axis=2)[:, :, None]
                G = tl.where(cols == i, gi, G)
            S += tot1
        _store_summary(sh_ptr, ss_ptr, G, S, b64, d3, n3, mask3, offs_s, dim, seg, nseg, n_state)

    @jit
    def sloop_fwd_summary_kernel(
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
        SEG_TILE: tl.constexpr, SUM_SKIP: tl.constexpr, BC_VEC: tl.constexpr,
    ):
        """The forward's summary launch, grid (channel blocks, batch, segments), the arguments of
        ``sloop_fwd_kernel``; both BiMamba directions (the second reversed) when BI."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        seg = tl.program_id(2)
        _fwd_summary_sloop(
            u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
            s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
            s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
            pid_b, d_start, seg, dim, L, n_state, nseg, tps,
            REV0, HAS_BIAS0, SOFTPLUS, EVEN_N, BLOCK_D, BLOCK_N, BLOCK_L, NS, SEG_TILE, SUM_SKIP, BC_VEC)
        if BI:
            _fwd_summary_sloop(
                u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                pid_b, d_start, seg, dim, L, n_state, nseg, tps,
                True, HAS_BIAS1, SOFTPLUS, EVEN_N, BLOCK_D, BLOCK_N, BLOCK_L, NS, SEG_TILE, SUM_SKIP, BC_VEC)

    @jit
    def sloop_bwd_summary_kernel(
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
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, NS: tl.constexpr,
        SEG_TILE: tl.constexpr, SUM_SKIP: tl.constexpr, BC_VEC: tl.constexpr,
    ):
        """The backward's summary launch, grid (channel blocks, batch, segments), the arguments of
        ``sloop_bwd_kernel`` (without its y output); both BiMamba directions when BI."""
        pid_b = tl.program_id(1)
        d_start = tl.program_id(0) * BLOCK_D
        seg = tl.program_id(2)
        _bwd_summary_sloop(
            u0, dt0, A0, B0, C0, D0, bias0, hs0, sh0, ss0,
            s_u_b0, s_u_d0, s_dt_b0, s_dt_d0, s_A_d0, s_A_n0,
            s_B_b0, s_B_g0, s_B_n0, s_B_l0, s_C_b0, s_C_g0, s_C_n0, s_C_l0, dpg_B0, dpg_C0,
            z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
            pid_b, d_start, seg, dim, L, n_state, nseg, tps,
            REV0, HAS_Z, HAS_BIAS0, SOFTPLUS, EVEN_N, BLOCK_D, BLOCK_N, BLOCK_L, NS, SEG_TILE, SUM_SKIP, BC_VEC)
        if BI:
            _bwd_summary_sloop(
                u1, dt1, A1, B1, C1, D1, bias1, hs1, sh1, ss1,
                s_u_b1, s_u_d1, s_dt_b1, s_dt_d1, s_A_d1, s_A_n1,
                s_B_b1, s_B_g1, s_B_n1, s_B_l1, s_C_b1, s_C_g1, s_C_n1, s_C_l1, dpg_B1, dpg_C1,
                z_ptr, s_z_b, s_z_d, dout_ptr, s_do_b, s_do_d,
                pid_b, d_start, seg, dim, L, n_state, nseg, tps,
                True, HAS_Z, HAS_BIAS1, SOFTPLUS, EVEN_N, BLOCK_D, BLOCK_N, BLOCK_L, NS, SEG_TILE, SUM_SKIP, BC_VEC)
