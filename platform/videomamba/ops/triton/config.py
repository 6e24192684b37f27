"""Launch configuration of the selective-scan kernels: block sizes, warps and the segmentation
of the sequence, per shape and device, with environment overrides for tuning."""

from __future__ import annotations

import functools
import logging
import os

import torch

from .runtime import interpreting, triton

logger = logging.getLogger(__name__)

__all__ = ["scan_config", "quantized_segments", "resident_programs", "env_flag", "lane_shuffles", "LAST_LAUNCH",
           "SEG_WAVES", "KERNELS"]

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


def quantized_segments(base: int, ntiles: int, target: int, slots: int) -> int:
    """The number of segments (each a whole number of tiles) for a grid of ``base x segments``
    programs, ``slots`` of them resident at a time: ``target`` when its grid fills its last wave
    to 95% or more, else the count in 1..target whose last wave is fullest (ties go to fewer
    segments: each count above 1 costs a summary pass). A grid 2.18x or 4.36x the resident programs
    leaves most SMs idle in its last fraction of a wave: on an H200 (benchmarks/2026-12-02-h200-session7,
    same run) Ti 8f ran 1.12x and M 64f 1.12x faster with the counts this picks, while at the
    shapes whose target fills its waves (Ti/S 64f) a count with fewer, equally full waves was 1% slower."""
    def fill(n):
        waves = base * n / slots
        return waves / -(-waves // 1)

    def whole(n):  # segments of whole tiles
        return triton.cdiv(ntiles, triton.cdiv(ntiles, n))

    target = whole(max(1, target))
    if fill(target) >= 0.95:
        return target
    best, best_fill = 1, -1.0
    for n in map(whole, range(1, target + 1)):
        f = fill(n)
        if f > best_fill + 1e-9:
            best, best_fill = n, f
    return best


def env_flag(name: str, default: bool) -> bool:
    """An on/off switch from the environment: ``1`` or ``0``, the default when unset; any other
    value raises naming it (``true`` would otherwise silently mean one of the two)."""
    v = (os.environ.get(name) or "").strip()
    if not v:
        return default
    if v not in ("0", "1"):
        raise ValueError(f"{name}={v!r}: expected 0 or 1")
    return v == "1"


def lane_shuffles() -> bool:
    """Whether the sloop kernels' lane shuffles (the dB/dC reduce-scatter, the split tail / head, the
    forward's split) may run on the GPU. They address lanes, so they need the tile layout Triton gave
    on the releases in LANE_LAYOUT_TRITON, which the CUDA tests checked. ``VIDEOMAMBA_TRITON_LANE_SHUFFLES``
    = 1 / 0 forces them on / off (1: to check a new release with the CUDA tests)."""
    return env_flag("VIDEOMAMBA_TRITON_LANE_SHUFFLES", triton.__version__.startswith(LANE_LAYOUT_TRITON))


@functools.lru_cache(maxsize=None)
def _warn_no_shuffles(version: str) -> None:
    logger.warning("Triton %s: the scan's lane-shuffle paths are off (their tile layouts were checked on Triton %s "
                   "only); the layout-independent reductions run instead, slower (VIDEOMAMBA_TRITON_LANE_SHUFFLES)",
                   version, " / ".join(v.rstrip(".") for v in LANE_LAYOUT_TRITON))


def resident_programs(num_warps: int, regs: int) -> int:
    """Programs of ``num_warps`` warps at ``regs`` registers per thread that one SM holds at a time
    (sm_80 / sm_90: 65,536 registers allocated per warp in units of 256, at most 64 warps and 32
    programs). The sloop kernels use no shared memory, so registers bound it: the forward at its
    cap of 128 on 2 warps and the backward at 255 on 1 warp hold 8 each. Segment counts are chosen
    so that the grid fills its last wave of n_SM x this many programs (:func:`quantized_segments`)."""
    per_warp = -(-regs * 32 // 256) * 256
    return max(1, min(32, 64 // num_warps, 65536 // (per_warp * num_warps)))


def _pow2_divisor(x: int, cap: int) -> int:
    """Largest power of two <= cap dividing x."""
    p = 1
    while p * 2 <= cap and x % (p * 2) == 0:
        p *= 2
    return p


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def scan_config(batch: int, dim: int, n_state: int, length: int, group_dims: tuple[int, ...], device,
            backward: bool = False, block_l: int | None = None) -> dict:
    """Kernel, block sizes and the segmentation of the sequence, for the forward or the backward.

    ``kernel`` (VIDEOMAMBA_TRITON_KERNEL): ``sloop`` (default; ``selective_scan_sloop.py``: tile
    (NS states, BLOCK_D channels, BLOCK_L positions), the N states visited NS at a time) or
    ``tile3d`` (the previous whole-state kernels, kept for same-run comparisons; their SUMMARY
    launch gives both kernels' segment summaries, with its own channel blocks SUM_BLOCK_D).
    On the GPU BLOCK_L = 16 positions per thread (the scans run serially in registers). sloop:
    (BLOCK_D, NS, warps) = SLOOP_FWD / SLOOP_BWD, one (state, channel) pair per thread; measured on
    an H200 (benchmarks/2026-12-01-h200-scan-b): forward + backward 1.3-1.6x faster than tile3d at
    the Ti/S/M shapes; NS = 2 or 8, 1 or 4 warps, a ptxas register cap of 128 on the backward and
    sub-tiles (SUB = 2) were slower; the forward runs under a register cap of SLOOP_FWD_MAXNREG.
    Since session 6 (benchmarks/2026-12-02-h200-session6) the backward runs 8-position tiles
    (SLOOP_BWD_BLOCK_L, states stored every 8 positions by the forward) on one warp, 2 state lanes
    x 16 channels: forward + backward 1.33-1.35x faster than before at Ti 8f / 64f.
    tile3d: the forward gives each thread one (channel, state)
    (BLOCK_D = 8, 4 warps at N = 16), the backward BLOCK_D = 16 on 4 warps.
    The sequence is cut into ``nseg`` segments of ``tps`` tiles scanned by separate programs
    (grid ``(D / BLOCK_D, batch, nseg)``), enough for ~``SEG_WAVES`` programs of 4 warps per SM:
    one program per (batch, channel block) walking all of L leaves most SMs idle on long clips
    with small batches (forward 1.9x faster at 64 frames, batch 4). Each segment costs a summary
    pass (closed form, no scan) so that it starts from the right state. For the sloop kernels that
    count is an upper bound, lowered to fill the grid's last wave (:func:`quantized_segments`).
    ``dbc_scatter``: the sloop backward sums dB/dC over its channel lanes by a reduce-scatter.
    ``block_l``: the backward's BLOCK_L, given by its forward's configuration (BLOCK_L /
    HS_SPLIT: the forward stores the state after every BLOCK_L / HS_SPLIT positions, the tiles the
    backward reads them at; sloop: SLOOP_BWD_BLOCK_L on the GPU, half the forward's tile in the
    interpreter, VIDEOMAMBA_TRITON_BWD_BLOCK_L = BLOCK_L or BLOCK_L / 2).
    Env overrides for tuning: VIDEOMAMBA_TRITON_KERNEL, _BLOCK_D / _BLOCK_L / _NUM_WARPS / _NS /
    _SEGMENTS / _MAXNREG (both kernels; SEGMENTS=1: one program walks the whole sequence), and
    _BWD_SEGMENTS / _BWD_BLOCK_L / _BWD_BLOCK_D / _BWD_NUM_WARPS / _BWD_NS / _BWD_SUB / _BWD_MAXNREG (the backward only; the segment count is
    chosen for the resident programs its register cap allows, :func:`resident_programs`);
    _BWD_ATOMIC=1 (dB/dC by atomics), _BWD_DBC_SCATTER=0 (dB/dC by two all-reduces per state instead
    of one reduce-scatter across the channel lanes), _PREFETCH=0 (the sloop forward without its L1
    prefetch of the next tile's rows), _BWD_PRELOAD=0 (the sloop backward without loading the next tile's rows
    after a tile's state loop, in flight during its tail), _BWD_SPLIT_TAIL=0 (the backward's two state
    lanes each doing all of a tile's per-position tail instead of half), _BWD_SPLIT_HEAD=0 (the lanes
    not sharing its loads and their preparation), _FWD_SPLIT=0 (the sloop forward's state lanes each
    doing all of a tile's loads, softplus and output instead of their part), _BWD_UNROLL (the sloop
    backward's loop over the states unrolled: =1), _PREFETCH_BC / _BWD_PREFETCH_BC (0 / 1: the sloop forward /
    backward asking L1 for the next tile's B and C rows), _BWD_PREFETCH_PART (0 / 1: the backward's second
    direction asking L1 for the next tile's partials of dz and y from the first), _BWD_PRELOAD_PART (0 / 1:
    loading them into registers with the next tile's rows instead), _SUM_BLOCK_L / _BWD_SUM_BLOCK_L (the summary launches'
    position tiles, any power of two: they walk the main launch's segments in tiles of their own),
    _SUM_SKIP=0 (the summary launches also compute the one segment's summary that no segment folds in)."""
    env = "VIDEOMAMBA_TRITON_"
    kernel = os.environ.get(env + "KERNEL") or "sloop"
    if kernel not in KERNELS:
        raise ValueError(f"{env}KERNEL={kernel!r}: expected one of {KERNELS}")
    block_n = max(triton.next_power_of_2(n_state), 2)
    if interpreting() or device.type != "cuda":
        block_d = 4  # small tiles: the interpreter's scan runs per element in Python
        bl = max(16, min(256 // (block_d * block_n), triton.next_power_of_2(max(length, 1))))
        num_warps = min(8, max(1, block_d * block_n // 32))
        ns = min(2, block_n)  # several state iterations, as on the GPU
        sub = 1
        sum_block_d, sum_warps = block_d, num_warps
        target_programs, min_tiles = 0, 1
    else:
        n_sm = _sm_count(device.index if device.index is not None else torch.cuda.current_device())
        # the whole-state tile3d kernels' blocks (also the summary launch's)
        sum_block_d = max(1, min(16 if backward else 8, (256 if backward else 128) // block_n))
        sum_warps = min(8, max(1, sum_block_d * block_n // (64 if backward else 32)))
        bl = 16
        if kernel == "sloop":
            block_d, ns, num_warps = SLOOP_BWD if backward else SLOOP_FWD
            ns = min(ns, block_n)
        else:
            block_d, ns, num_warps = sum_block_d, block_n, sum_warps
        sub = SLOOP_BWD_SUB
        # programs of fewer warps: more of them, so more segments for the same occupancy
        target_programs, min_tiles = SEG_WAVES * n_sm * 4 // num_warps, 8
    block_d = (backward and _env_int(env + "BWD_BLOCK_D", True)) or _env_int(env + "BLOCK_D", True) or block_d
    for g in group_dims:  # a channel block must not straddle a B/C group (g = channels per group)
        if g != dim and g % block_d:
            block_d = _pow2_divisor(g, block_d)
        if g != dim and g % sum_block_d:
            sum_block_d = _pow2_divisor(g, sum_block_d)
    block_l = block_l or _env_int(env + "BLOCK_L", True) or bl
    # the forward stores its states at the backward's tiles: BLOCK_L / HS_SPLIT positions apart
    hs_split = 1
    if not backward and kernel == "sloop":
        bwd_env = _env_int(env + "BWD_BLOCK_L", True)
        bwd_bl = bwd_env or (SLOOP_BWD_BLOCK_L if target_programs else bl // 2)
        hs_split = block_l // bwd_bl if bwd_bl < block_l else 1
        if hs_split > 2:
            if bwd_env:
                raise ValueError(f"{env}BWD_BLOCK_L={bwd_bl}: expected BLOCK_L={block_l} or half of it")
            hs_split = 2  # a larger forward tile (BLOCK_L override): the backward takes half of it
    num_warps = (backward and _env_int(env + "BWD_NUM_WARPS", True)) or _env_int(env + "NUM_WARPS", True) or num_warps
    if kernel == "sloop":
        ns = (backward and _env_int(env + "BWD_NS", True)) or _env_int(env + "NS", True) or ns
        ns = min(ns, block_n)
        sub = _env_int(env + "BWD_SUB", True) or sub
        if sub > 2 or block_l % sub:
            raise ValueError(f"{env}BWD_SUB={sub}: expected 1 or 2 (dividing BLOCK_L={block_l})")
    else:
        ns = block_n
    # the summary launch's own position tiles over the main launch's segments: the interpreter takes 16
    # (the backward's 8-position segments walked in tiles that straddle them)
    sum_block_l = ((backward and _env_int(env + "BWD_SUM_BLOCK_L", True)) or _env_int(env + "SUM_BLOCK_L", True)
                   or (16 if not target_programs else SUM_BLOCK_L_GPU.get(backward, block_l)))
    sum_skip = env_flag(env + "SUM_SKIP", True)
    ntiles = triton.cdiv(max(length, 1), block_l)
    base = batch * triton.cdiv(dim, block_d)
    maxnreg = (backward and _env_int(env + "BWD_MAXNREG")) or _env_int(env + "MAXNREG")
    if maxnreg is None and kernel == "sloop" and not backward and target_programs:
        maxnreg = SLOOP_FWD_MAXNREG
    if target_programs:
        nseg = min(triton.cdiv(target_programs, base), max(1, ntiles // min_tiles))
        if kernel == "sloop":  # at most that many, cut so that the grid's last wave is as full as can be
            nseg = quantized_segments(base, ntiles, nseg, n_sm * resident_programs(num_warps, maxnreg or 255))
    else:
        nseg = min(3, ntiles)  # the interpreter: exercise the segmented path on small inputs
    nseg = max(1, min((backward and _env_int(env + "BWD_SEGMENTS")) or _env_int(env + "SEGMENTS") or nseg, ntiles))
    tps = triton.cdiv(ntiles, nseg)
    nseg = triton.cdiv(ntiles, tps)
    exp_once = env_flag(env + "BWD_EXP_ONCE", True)
    dbc_atomic = env_flag(env + "BWD_ATOMIC", False)
    # dB/dC by a reduce-scatter across the channel lanes (selective_scan_sloop._store_dbc_scatter):
    # its shuffles address lanes, so on the GPU only for one-warp blocks whose lane layout the CUDA
    # tests have checked (SCATTER_BLOCKS_GPU); the interpreter runs it for any block
    shuffles = not target_programs or lane_shuffles()
    if kernel == "sloop" and not shuffles:
        _warn_no_shuffles(triton.__version__)
    dbc_scatter = (env_flag(env + "BWD_DBC_SCATTER", True) and kernel == "sloop" and backward and shuffles
                   and not dbc_atomic and block_d >= 2
                   and (not target_programs or (num_warps == 1 and (block_d, ns) in SCATTER_BLOCKS_GPU)))
    # the sloop forward asks L1 for the next tile's rows while a tile computes (SLOOP_PREFETCH)
    prefetch = env_flag(env + "PREFETCH", SLOOP_PREFETCH) and kernel == "sloop" and not backward
    # the sloop forward's state lanes share each tile's loads, softplus and output: its shuffles address the
    # state lanes, so on the GPU only for blocks whose layout puts them fastest in one warp (FWD_SPLIT_BLOCKS_GPU)
    fwd_split = (env_flag(env + "FWD_SPLIT", SLOOP_FWD_SPLIT) and kernel == "sloop" and not backward and shuffles
                 and ns in (2, 4) and (not target_programs or (block_d, ns, num_warps) in FWD_SPLIT_BLOCKS_GPU))
    # the sloop backward loads the next tile's rows during a tile's tail (whole tiles only: SUB = 1)
    preload = env_flag(env + "BWD_PRELOAD", SLOOP_BWD_PRELOAD) and backward and kernel == "sloop" and sub == 1
    # the two state lanes share the per-position tail of each backward tile: its shuffles address the
    # lanes, so only with two state lanes laid out as the reduce-scatter's (dbc_scatter)
    split_tail = env_flag(env + "BWD_SPLIT_TAIL", SLOOP_BWD_SPLIT_TAIL) and dbc_scatter and ns == 2
    # ... and also its loads and their preparation (softplus, gate), exchanging delta, delta u and dy
    split_head = env_flag(env + "BWD_SPLIT_HEAD", SLOOP_BWD_SPLIT_HEAD) and split_tail
    # the sloop backward's loop over the states unrolled (the carries' columns picked at compile time)
    bwd_unroll = env_flag(env + "BWD_UNROLL", SLOOP_BWD_UNROLL) and backward and kernel == "sloop"
    # the sloop kernels ask L1 for the next tile's B and C rows (the backward with its preload)
    prefetch_bc = kernel == "sloop" and (env_flag(env + "BWD_PREFETCH_BC", SLOOP_BWD_PREFETCH_BC) and preload
                                         if backward else env_flag(env + "PREFETCH_BC", SLOOP_PREFETCH_BC))
    # ... and the backward's second direction the first one's fp32 partials of dz and y (its tail adds to them)
    prefetch_part = env_flag(env + "BWD_PREFETCH_PART", SLOOP_BWD_PREFETCH_PART) and preload and backward
    # ... or loads them into registers with the next tile's rows (2; needs the split tail's half-tile layout)
    if env_flag(env + "BWD_PRELOAD_PART", SLOOP_BWD_PRELOAD_PART) and preload and backward and split_tail:
        prefetch_part = 2
    return dict(kernel=kernel, BLOCK_D=block_d, BLOCK_N=block_n, BLOCK_L=block_l, NS=ns, SUB=sub, num_warps=num_warps, maxnreg=maxnreg,
                SUM_BLOCK_D=sum_block_d, sum_num_warps=sum_warps, SUM_BLOCK_L=sum_block_l, sum_skip=sum_skip,
                ntiles=ntiles, nseg=nseg, tps=tps, exp_once=exp_once, dbc_atomic=dbc_atomic, dbc_scatter=dbc_scatter,
                HS_SPLIT=hs_split, prefetch=prefetch, preload=preload, split_tail=split_tail,
                split_head=split_head, fwd_split=fwd_split, bwd_unroll=bwd_unroll, prefetch_bc=prefetch_bc,
                prefetch_part=prefetch_part)


KERNELS = ("sloop", "tile3d")
# Triton releases whose sm_90 layouts of the sloop tiles put the state and channel lanes where the kernels'
# lane shuffles expect them (checked by the CUDA tests on an H200: the GPU image's Triton 3.6). Triton 3.8
# (torch 2.14's) lays the tiles' positions across lanes instead (scripts/sass_stats.py, TTGIR), so with it the
# shuffle paths are off on the GPU and the layout-independent reductions run (lane_shuffles)
LANE_LAYOUT_TRITON = ("3.6.",)
# state-loop main kernels on the GPU: (BLOCK_D, NS, num_warps), forward and backward
SLOOP_FWD = (16, 4, 2)
SLOOP_BWD = (16, 2, 1)  # at 8-position tiles: 1 warp, 2 state lanes x 16 channels (H200 sweep, session 6)
# ptxas register cap of the sloop forward on the GPU: 147-156 -> 128 registers gives 8 instead of 6
# two-warp programs per SM; 0.80x the forward's time at Ti 64 frames, equal at 8 frames (H200,
# benchmarks/2026-12-01-h200-session4). The backward's cap stays off (128 spilled, 25-35% slower)
SLOOP_FWD_MAXNREG = 128
# the backward's tile on the GPU (the forward, at BLOCK_L = 16, stores its states every 8 positions
# for it: HS_SPLIT = 2): 8 positions per thread leave the backward a smaller live set
SLOOP_BWD_BLOCK_L = 8
# (BLOCK_D, NS) of one-warp sloop backward blocks that run the dB/dC reduce-scatter on the GPU: Triton lays
# their tile out with lane = state + NS x channel, and the CUDA tests (H200, session 7) check the result.
# Other blocks (8 x 4, 32 x 1: laid out alike in sm_90 TTGIR, not yet run under the CUDA tests) use the all-reduces
SCATTER_BLOCKS_GPU = frozenset({(16, 2)})
# the sloop forward prefetches the next tile's rows (u, delta, z, the first direction's partials) into L1
# (PTX prefetch.global.L1): forward 1.02-1.08x faster at Ti 64f / 8f, fwd + bwd 1.01-1.02x. The same in the
# backward (dout and the saved state too) was 1.05x slower (H200, benchmarks/2026-12-02-h200-session8)
SLOOP_PREFETCH = True
# the sloop forward's state lanes each load and prepare (softplus) 1 / NS of a tile's rows and exchange delta
# and delta u for the state loop, then sum y by a reduce-scatter and gate and store their own part: forward
# 1.34-1.48x faster at every Ti/S/M shape, forward + backward 1.12-1.16x (H200, benchmarks/2026-12-02-h200-session9
# call 3, same run). On the GPU only for (BLOCK_D, NS, warps) whose TTGIR lays the NS state lanes fastest in a
# warp (threadsPerWarp [NS, 32 / NS, 1], order [0, 1, 2]; Triton 3.6, sm_90), checked by the CUDA tests
SLOOP_FWD_SPLIT = True
FWD_SPLIT_BLOCKS_GPU = frozenset({(16, 4, 2)})
# the sloop backward issues the next tile's loads (u, delta, dout, z, its saved state) after a tile's state
# loop, so that they are in flight during its tail instead of waited on at the next tile's start (ncu,
# benchmarks/2026-12-02-h200-session8 call 3: ~31% of the backward's stall samples): forward + backward
# 1.07-1.08x faster at every Ti/S/M shape (H200, benchmarks/2026-12-02-h200-session9 call 2, same run)
SLOOP_BWD_PRELOAD = True
# the sloop backward's two state lanes each do half of a tile's per-position tail (sums over states by a
# reduce-scatter, du, ddelta, dz, y) instead of both doing all of it: with the preload, forward + backward
# another 1.04-1.06x faster at every Ti/S/M shape (same run as the preload's)
SLOOP_BWD_SPLIT_TAIL = True
# ... and each lane loads and prepares (softplus, gate) half of a tile's rows, the lanes exchanging delta,
# delta u and dy for the state loop (three shuffles per position pair): fwd + bwd another 1.00-1.01x at every
# shape (same run as FWD_SPLIT's; 1.2% fewer instructions per tile)
SLOOP_BWD_SPLIT_HEAD = True
# the sloop backward's loop over the N / NS state iterations unrolled (VIDEOMAMBA_TRITON_BWD_UNROLL=1): each
# iteration's columns of the carried (NS, BD, N / NS) values (A, the entering state, the adjoint, dA) are then
# picked at compile time instead of by chains of selects: 2351 instead of ~3180 instructions per tile at Ti 8f
# (sm_90, Triton 3.6, with the B/C vector loads; scripts/sass_stats.py), 104 bytes of spills at 255 registers,
# and yet 1.01-1.02x slower (H200, benchmarks/2026-12-03-h200-session12 call 2, interleaved: Ti 8f 2.42 vs
# 2.39 ms, 64f 2.46 vs 2.41) and minutes more to compile. Off
SLOOP_BWD_UNROLL = False
# the sloop kernels ask L1 for the next tile's B and C rows (prefetch.global.L1, one per thread) before the
# state loop reads them: not yet timed
SLOOP_PREFETCH_BC = True
SLOOP_BWD_PREFETCH_BC = True
SLOOP_BWD_PREFETCH_PART = True
SLOOP_BWD_PRELOAD_PART = False
SLOOP_BWD_SUB = 1  # sub-tiles per tile of BLOCK_L positions in the backward (2: half the live tile, slower on an H200)
# the summary launches' position tiles on the GPU, forward (False) and backward (True); absent: the main
# launch's tile (16 forward, 8 backward). Larger tiles were slower on an H200 (more registers: backward summary
# 0.322 / 0.392 / 0.511 ms at 8 / 16 / 32 positions, Ti 8f; benchmarks/2026-12-03-h200-session13 call 2)
SUM_BLOCK_L_GPU: dict[bool, int] = {}
SEG_WAVES = 8  # segments are added until the grid has about this many programs per SM (an upper bound for sloop)

