"""Triton helpers shared by the selective-scan kernels: the affine combine of the scan, softplus
and sigmoid, delta loading, per-program channel setup, tile order and positions, and the fold of
segment summaries into a carried state (README.md beside this file: the design)."""

from __future__ import annotations

from .runtime import HAS_TRITON, INTERPRET, jit, tl

__all__ = ["adjoint_combine", "affine_combine", "softplus", "softplus_grad", "sigmoid", "rcp", "lane_stride", "bfly", "bfly_states",
           "prefetch_l1", "load_vec_rows", "load_delta",
           "channel_setup", "tile_index", "tile_positions", "segment_span", "segment_tile", "fold_summaries", "store_bi"]

if HAS_TRITON:
    _COMPILED = tl.constexpr(not INTERPRET)  # inline PTX only when compiled (the interpreter has none)

    @jit
    def rcp(x):
        """1 / x in fp32 by PTX ``div.full.f32`` (full range, at most 2 ulp: MUFU.RCP and a few
        FMAs) instead of the IEEE division (a Newton step, a range check and a slow-path branch);
        x / inf = 0. The interpreter divides exactly."""
        if _COMPILED:
            r = tl.inline_asm_elementwise("div.full.f32 $0, 0f3F800000, $1;", "=r,r", [x], dtype=tl.float32,
                                          is_pure=True, pack=1)
        else:
            r = 1.0 / x
        return r

    @jit
    def lane_stride(cb, s3, NS: tl.constexpr):
        """Lane distance between neighbouring channels of a one-warp (NS, BLOCK_D, .) tile: NS
        when the state lanes are the fastest in the warp (lane = s + NS c), else 1 (lane = c +
        BLOCK_D s); (NS, BD, 1) int32. The interpreter has no lanes: 1."""
        if _COMPILED:
            lane = tl.inline_asm_elementwise("mov.u32 $0, %laneid;", "=r,r", [cb + s3], dtype=tl.int32,
                                             is_pure=True, pack=1)
            sc = tl.where(lane == s3 + NS * cb, NS, 1)
        else:
            sc = tl.full((cb + s3).shape, 1, tl.int32)
        return sc

    @jit
    def _shfl_bfly(x, m):
        """x (fp32) from lane ``laneid ^ m`` of the warp (PTX ``shfl.sync.bfly``; m broadcast to x)."""
        m = m + tl.zeros(x.shape, tl.int32)
        return tl.inline_asm_elementwise("shfl.sync.bfly.b32 $0, $1, $2, 0x1f, 0xffffffff;", "=r,r,r", [x, m],
                                         dtype=tl.float32, is_pure=True, pack=1)

    @jit
    def bfly(x, t: tl.constexpr, sc, NS: tl.constexpr, BD: tl.constexpr, K: tl.constexpr):
        """x (NS, BD, K) from the channel lane c ^ 2^t (same state lane, same registers): a warp
        butterfly shuffle (``shfl.sync.bfly`` by the lane distance ``sc << t``). The interpreter
        permutes the channel axis the same way."""
        if _COMPILED:
            y = _shfl_bfly(x, sc << t)
        else:
            y = tl.reshape(tl.flip(tl.reshape(x, (NS, BD >> (t + 1), 2, 1 << t, K)), 2), (NS, BD, K))
        return y

    @jit
    def bfly_states(x, ssd, t: tl.constexpr = 0, NS: tl.constexpr = 2):
        """x (NS, BD, K) from the state lane s ^ 2^t of a tile whose state lanes lie in one warp (same
        channel, same registers): ``shfl.sync.bfly`` by their lane distance ``ssd << t`` (ssd: 1 when
        the state lanes are the fastest in the warp, else the lanes between states). The interpreter
        permutes the state axis the same way."""
        if _COMPILED:
            y = _shfl_bfly(x, ssd << t)
        else:
            y = tl.reshape(tl.flip(tl.reshape(x, (NS >> (t + 1), 2, 1 << t, x.shape[1], x.shape[2])), 1), x.shape)
        return y

    @jit
    def prefetch_l1(ptrs):
        """Bring the lines at ``ptrs`` (any shape; valid addresses) into L1 ahead of their loads:
        PTX ``prefetch.global.L1``, no register written, nothing waits on it. The interpreter skips it."""
        if _COMPILED:
            tl.inline_asm_elementwise("prefetch.global.L1 [$1];\n\tmov.u32 $0, 0;", "=r,l", [ptrs.to(tl.int64)],
                                      dtype=tl.int32, is_pure=False, pack=1)

    def _ld16_asm(kind: int, reverse: bool) -> str:
        """PTX of ``_ld16``: one ``ld.global.v4.b32`` at operand $P (the pack's first address,
        P = the number of outputs), its elements widened to fp32 into $0 .. $P-1, in reverse with
        ``reverse``. kind 0: 8 bf16 (the bits shifted into the upper half), 1: 8 fp16 (cvt), 2: 4 fp32."""
        n = 4 if kind == 2 else 8
        order = list(range(n))[::-1] if reverse else list(range(n))  # element of the load per output
        if kind == 2:
            return "ld.global.v4.b32 {" + ", ".join(f"${order.index(e)}" for e in range(n)) + f"}}, [${n}];"
        lines = [".reg .b32 w<4>;"]
        if kind == 1:
            lines.append(".reg .b16 h<8>;")
        lines.append(f"ld.global.v4.b32 {{w0, w1, w2, w3}}, [${n}];")
        if kind == 1:
            lines += [f"mov.b32 {{h{2 * i}, h{2 * i + 1}}}, w{i};" for i in range(4)]
        for out, e in enumerate(order):
            if kind == 1:
                lines.append(f"cvt.f32.f16 ${out}, h{e};")
            elif e % 2:
                lines.append(f"and.b32 ${out}, w{e // 2}, 0xFFFF0000;")
            else:
                lines.append(f"shl.b32 ${out}, w{e // 2}, 16;")
        return "{\n\t" + "\n\t".join(lines) + "\n\t}"

    def _ld16_constraints(n: int) -> str:
        return ",".join(["=r"] * n + ["l"] * n + ["r"] * n)

    _LD16_BF16 = tl.constexpr(_ld16_asm(0, False))
    _LD16_BF16_REV = tl.constexpr(_ld16_asm(0, True))
    _LD16_F16 = tl.constexpr(_ld16_asm(1, False))
    _LD16_F16_REV = tl.constexpr(_ld16_asm(1, True))
    _LD16_F32 = tl.constexpr(_ld16_asm(2, False))
    _LD16_F32_REV = tl.constexpr(_ld16_asm(2, True))
    _LD16_C8 = tl.constexpr(_ld16_constraints(8))
    _LD16_C4 = tl.constexpr(_ld16_constraints(4))

    @jit
    def _ld16(ptrs, like, ASM: tl.constexpr, VEC: tl.constexpr):
        """One 16-byte load per VEC consecutive elements of ``ptrs`` (int64 addresses, in the thread's
        registers; every element of a pack holds the same 16-byte aligned address, the first one's is used),
        widened to fp32 by the PTX ``ASM`` (``_ld16_asm``). ``like``: an fp32 tensor of the same shape, an
        operand the PTX does not read: the result takes its layout."""
        cons: tl.constexpr = _LD16_C4 if VEC == 4 else _LD16_C8
        return tl.inline_asm_elementwise(ASM, cons, [ptrs, like], dtype=tl.float32, is_pure=True, pack=VEC)

    @jit
    def load_vec_rows(row, start, L, like, REVERSE: tl.constexpr, NS: tl.constexpr, BD: tl.constexpr,
                      BL: tl.constexpr, VEC: tl.constexpr):
        """A (NS, BD, BL) fp32 tile of rows ``row`` ((NS, BD, 1) pointers to position 0 of each row)
        at positions start .. start + BL - 1 in processing order (descending when REVERSE), loaded
        by VEC-element 16-byte vector loads (VEC = 16 bytes / the element size) instead of BL scalar
        ones. Needs positions in each thread's registers, start and every row 16-byte aligned, and
        rows readable up to L rounded up to VEC (the launcher checks: ``launch.bc_vec_width``).
        Positions past L read the values of the last group that holds position L - 1: the row's
        padding there, if any, unmasked. ``like``: a (NS, BD, BL) fp32 tensor in the tile's layout
        (an operand of the load that it does not read: without it, Triton 3.6 laid some tiles' state
        loops out anew around the load, breaking the kernels' lane shuffles). The interpreter loads the
        same elements one by one."""
        j = tl.arange(0, BL)
        if REVERSE:  # register j holds position start + BL - 1 - j: group start + BL - VEC - VEC (j // VEC)
            gs = start + (BL - VEC) - (j // VEC) * VEC
        else:
            gs = start + (j // VEC) * VEC
        gs = tl.minimum(gs, ((L - 1) // VEC) * VEC)  # groups past L: the last one (in bounds)
        # each register holds its group's address (LLVM folds the VEC equal ones of a group into one):
        # 3-D arithmetic only, so that the tile keeps the layout the kernels' lane shuffles expect
        ptrs = row + gs[None, None, :]  # (NS, BD, BL)
        if _COMPILED:
            ety: tl.constexpr = row.dtype.element_ty
            p64 = ptrs.to(tl.int64)
            if ety == tl.bfloat16:
                v = _ld16(p64, like, _LD16_BF16_REV if REVERSE else _LD16_BF16, VEC)
            elif ety == tl.float16:
                v = _ld16(p64, like, _LD16_F16_REV if REVERSE else _LD16_F16, VEC)
            else:
                v = _ld16(p64, like, _LD16_F32_REV if REVERSE else _LD16_F32, VEC)
        else:
            e = j % VEC
            if REVERSE:
                e = VEC - 1 - e
            v = tl.load(ptrs + e[None, None, :]).to(tl.float32)
        return v

    @jit
    def affine_combine(a1, b1, a2, b2):
        # compose x -> a1 x + b1 (applied first) with x -> a2 x + b2
        return a1 * a2, a2 * b1 + b2

    @jit
    def adjoint_combine(p1, b1, f1, p2, b2, f2):
        # The adjoint g_t = beta_t + a_{t+1} g_{t+1} needs a_{t+1}: element t is (p, b, f) =
        # (1, beta_t, a_t) and a run [t..e] summarises to g_t = b + p * a_{e+1} * g_{e+1} with
        # p = prod a_{t+1..e}, f = a_t. Reverse scan: (p1, b1, f1) is the later run, applied first.
        return p2 * f1 * p1, b2 + p2 * f1 * b1, f2

    @jit
    def softplus_grad(x):
        """torch's softplus (threshold 20) and its derivative sigmoid(x), sharing one exp and one
        reciprocal; log1p(e) via the log(w) - ((w-1)-e)/w correction, sigmoid as e / (1 + e)
        (relative accuracy for x << 0)."""
        e = tl.exp(x)
        w = 1.0 + e
        r = rcp(w)
        sp = tl.log(w) - ((w - 1.0) - e) * r
        big = x > 20.0
        return tl.where(big, x, sp), tl.where(big, 1.0, e * r)

    @jit
    def softplus(x):
        sp, _sig = softplus_grad(x)
        return sp

    @jit
    def sigmoid(x):
        return rcp(1.0 + tl.exp(-x))

    @jit
    def load_delta(ptrs, bias, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
        """delta tile (BLOCK_L, BLOCK_D) in fp32 after bias/softplus, 0 where masked; also the
        pre-softplus value (for the softplus gradient). bias: (BLOCK_D,)."""
        raw = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            raw = raw + bias[None, :]
        dt = raw
        if SOFTPLUS:
            dt = softplus(raw)
        dt = tl.where(mask, dt, 0.0)
        return dt, raw

    @jit
    def channel_setup(A_ptr, D_ptr, bias_ptr, s_A_d, s_A_n, d_start, dim, n_state,
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

    @jit
    def tile_index(i, k_lo, k_hi, DESCENDING: tl.constexpr):
        """The i-th tile of [k_lo, k_hi) in ascending or descending order."""
        if DESCENDING:
            k = k_hi - 1 - i
        else:
            k = k_lo + i
        return k

    @jit
    def tile_positions(k, offs_j, L, REVERSE: tl.constexpr, BLOCK_L: tl.constexpr):
        """Positions of tile k in processing order (descending when REVERSE), their masks, and
        the next position in processing order (for a_{t+1} in the backward)."""
        if REVERSE:
            pos = k * BLOCK_L + (BLOCK_L - 1 - offs_j)
            pos1 = pos - 1
        else:
            pos = k * BLOCK_L + offs_j
            pos1 = pos + 1
        return pos, pos < L, pos1, (pos1 >= 0) & (pos1 < L)

    @jit
    def segment_span(seg, tps, SEG_TILE: tl.constexpr, L, BLOCK_L: tl.constexpr, SKIP: tl.constexpr,
                     skip_seg):
        """Positions [p_lo, p_hi) of segment ``seg`` (``tps`` tiles of the main launch's SEG_TILE
        positions) and the number of BLOCK_L-position tiles a summary pass walks over them: 0 when
        SKIP and ``seg == skip_seg`` (the segment whose summary no other segment folds in)."""
        p_lo = seg * (tps * SEG_TILE)
        p_hi = tl.minimum(p_lo + tps * SEG_TILE, L)
        n_t = (p_hi - p_lo + BLOCK_L - 1) // BLOCK_L
        if SKIP:
            n_t = tl.where(seg == skip_seg, 0, n_t)
        return p_lo, p_hi, n_t

    @jit
    def segment_tile(k, offs_j, p_lo, p_hi, L, REVERSE: tl.constexpr, BLOCK_L: tl.constexpr):
        """Positions of tile k (in position order) of a segment's BLOCK_L tiles from p_lo, in processing
        order (descending when REVERSE), masked to the segment's end p_hi; and the next position in
        processing order, masked to [0, L) and to the tile's own mask (it may lie in the next
        segment). Tiles start at p_lo + k BLOCK_L whatever the direction (aligned like p_lo)."""
        if REVERSE:
            pos = p_lo + k * BLOCK_L + (BLOCK_L - 1 - offs_j)
            pos1 = pos - 1
        else:
            pos = p_lo + k * BLOCK_L + offs_j
            pos1 = pos + 1
        mask_l = pos < p_hi
        return pos, mask_l, pos1, mask_l & (pos1 >= 0) & (pos1 < L)

    @jit
    def fold_summaries(sh_ptr, ss_ptr, sum_off, offs_n, mask_d, mask_dn, A2, h, start, step, count, n_state):
        """Fold ``count`` segment summaries into a carried state, segment start, start+step, ...:
        ``h <- exp(A * ss_j) * h + sh_j`` (sh (BD, BN) and ss (BD,) at (b, d, j))."""
        for jj in range(0, count):
            j = start + jj * step
            hj = tl.load(sh_ptr + (sum_off[:, None] + j) * n_state + offs_n[None, :], mask=mask_dn, other=0.0)
            sj = tl.load(ss_ptr + sum_off + j, mask=mask_d, other=0.0)
            h = tl.exp2(A2 * sj[:, None]) * h + hj
        return h

    @jit
    def store_bi(val, out_ptr, part_ptr, off, mask, ACCUMULATE: tl.constexpr, TO_PART: tl.constexpr):
        """A result both BiMamba directions add to: the first direction stores its fp32 partial
        (TO_PART), the second adds the partial back (ACCUMULATE) and stores the sum in the output's
        dtype; a single direction stores to the output. ``off`` and ``mask`` as for both buffers."""
        if ACCUMULATE:
            val += tl.load(part_ptr + off, mask=mask, other=0.0)
        if TO_PART:
            tl.store(part_ptr + off, val.to(part_ptr.dtype.element_ty), mask=mask)
        else:
            tl.store(out_ptr + off, val.to(out_ptr.dtype.element_ty), mask=mask)
