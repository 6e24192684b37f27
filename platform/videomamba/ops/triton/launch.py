"""Host side of the selective-scan kernels: per-direction argument packing (:class:`ScanDir`),
gradient buffers (:class:`GradBuffers`) and the forward/backward launchers that the autograd
functions (``selective_scan.py``, ``bimamba_inner.py``) call."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import LAST_LAUNCH, env_flag, lane_shuffles, scan_config
from .runtime import interpreting, triton, triton_available
from .selective_scan_bwd import selective_scan_bwd_kernel
from .selective_scan_fwd import selective_scan_fwd_kernel
from .selective_scan_sloop import sloop_bwd_kernel, sloop_fwd_kernel

__all__ = ["ScanDir", "GradBuffers", "SegmentSummaries", "check_inputs", "bc_vec_width", "scan_fwd", "scan_bwd"]


def empty_rows(batch, dim, length, pitch, device, dtype, zero_pad=True):
    """(B, D, L) view of a (B, D, pitch) buffer (contiguous when pitch is L or None), the columns
    past L zeroed unless ``zero_pad`` is False: the scan kernels' outputs, written at the pitch."""
    if pitch is None or pitch == length:
        return torch.empty(batch, dim, length, device=device, dtype=dtype)
    if pitch < length:
        raise ValueError(f"row pitch {pitch} < length {length}")
    buf = torch.empty(batch, dim, pitch, device=device, dtype=dtype)
    if zero_pad:
        buf[..., length:].zero_()
    return buf[..., :length]


def _lastdim_contig(t):
    return t if t is None or t.stride(-1) == 1 else t.contiguous()


class ScanDir:
    """Arguments of one scan direction, normalised for the kernels. ``bc_pad_finite``: B and C are
    views of rows whose columns past L, up to L rounded up to the vector width (8 bf16 / fp16, 4 fp32),
    hold finite values (the model's x_proj output at its padded pitch), so the kernels' vector loads
    may read them (:func:`bc_vec_width`)."""

    def __init__(self, u, delta, A, B, C, D, delta_bias, bc_pad_finite=False):
        self.bc_pad_finite = bc_pad_finite
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


_VEC_ELEMS = {torch.bfloat16: 8, torch.float16: 8, torch.float32: 4}  # elements per 16-byte vector load


def _rows_vec_ok(t: torch.Tensor, vec: int, length: int) -> bool:
    """Whether every (..., L) row of t starts 16-byte aligned, is contiguous, and can be read up to
    L rounded up to ``vec`` elements without leaving t's storage."""
    if t.stride(-1) != 1 or any(s % vec for s in t.stride()[:-1]) or t.data_ptr() % 16:
        return False
    last_row = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape[:-1], t.stride()[:-1]))
    return last_row + -(-length // vec) * vec <= t.untyped_storage().nbytes() // t.element_size()


def bc_vec_width(dirs, length: int, cfg: dict, tiles: tuple[int, ...]) -> int:
    """Elements per 16-byte vector load of the B and C rows in the sloop kernels
    (``scan_common.load_vec_rows``: one load for 8 bf16 / fp16 or 4 fp32 positions instead of one per
    position), or 0 for the scalar loads. Vector loads need every B / C row of every direction
    16-byte aligned, contiguous along L and readable up to L rounded up to the vector; with L not a
    multiple of the vector, the columns read past L must hold finite values (they meet a zero
    delta u and dy, and NaN x 0 is NaN), which only the caller can vouch for (``ScanDir.bc_pad_finite``:
    the model's x_proj output at its padded row pitch, :func:`bimamba_inner.row_pitch`). Also tiles
    of whole vectors (``tiles``: the kernels' positions per tile), all N states in one block, and on
    the GPU the tile layout with positions in each thread's registers (``config.lane_shuffles``).
    ``VIDEOMAMBA_TRITON_BC_VEC=0`` turns them off."""
    if not env_flag("VIDEOMAMBA_TRITON_BC_VEC", True) or cfg["kernel"] != "sloop":
        return 0
    if dirs[0].A.shape[1] != cfg["BLOCK_N"] or not (interpreting() or lane_shuffles()):
        return 0
    rows = [t for d in dirs for t in (d.B4, d.C4)]
    vec = _VEC_ELEMS.get(rows[0].dtype, 0)
    if not vec or any(t.dtype != rows[0].dtype for t in rows) or any(bl % vec for bl in tiles):
        return 0
    if length % vec and not all(d.bc_pad_finite for d in dirs):
        return 0
    return vec if all(_rows_vec_ok(t, vec, length) for t in rows) else 0


def _dims(d: ScanDir):
    batch, dim, length = d.u.shape
    return batch, dim, length, d.A.shape[1]


@dataclass
class SegmentSummaries:
    """The forward's segment summaries: ``state`` (ndir, B, D, nseg, N), the state after each
    segment entered from zero, and ``dsum`` (ndir, B, D, nseg), each segment's sum of delta; fp32.
    Empty (None) until a :func:`scan_fwd` given it fills them; a later :func:`scan_fwd` on the same
    inputs given the filled object skips its summary launch (a recomputing backward re-runs the
    forward kernel: the summaries are (N + 1) x 4 bytes per (direction, batch, channel, segment),
    the segments being few and independent of L; ``nseg == 1`` has none)."""
    state: torch.Tensor | None = None
    dsum: torch.Tensor | None = None

    def fits(self, ndir, batch, dim, n_state, nseg) -> bool:
        return self.state is not None and tuple(self.state.shape) == (ndir, batch, dim, nseg, n_state)


def _summaries(ndir, batch, dim, n_state, cfg, device):
    """Segment summary buffers (state (ndir, B, D, nseg, N), delta sums (ndir, B, D, nseg)), or
    None with a single segment (no summary launch)."""
    if cfg["nseg"] == 1:
        return None
    f32 = dict(device=device, dtype=torch.float32)
    return (torch.empty(ndir, batch, dim, cfg["nseg"], n_state, **f32),
            torch.empty(ndir, batch, dim, cfg["nseg"], **f32))


def _launch_cfg(cfg, summary=False):
    """Block constexprs and warps of the main launch, or of the summary launch (whose kernel is
    always the tile3d one, with its own channel blocks and position tiles)."""
    kw = {k: cfg[k] for k in ("BLOCK_N", "BLOCK_L")}
    if summary:  # its own tiles over the main launch's segments (SEG_TILE: the main launch's tile)
        kw.update(BLOCK_L=cfg["SUM_BLOCK_L"], SEG_TILE=cfg["BLOCK_L"], SUM_SKIP=cfg["sum_skip"],
                  BLOCK_D=cfg["SUM_BLOCK_D"], num_warps=cfg["sum_num_warps"])
        return kw
    if cfg["kernel"] == "tile3d":
        kw["BLOCK_D"], kw["num_warps"] = cfg["BLOCK_D"], cfg["num_warps"]
    else:
        kw.update(BLOCK_D=cfg["BLOCK_D"], num_warps=cfg["num_warps"], NS=cfg["NS"])
    if cfg.get("maxnreg"):  # a register cap for ptxas (tuning: VIDEOMAMBA_TRITON_MAXNREG)
        kw["maxnreg"] = cfg["maxnreg"]
    return kw


def _grid(cfg, batch, dim, summary=False):
    return (triton.cdiv(dim, cfg["SUM_BLOCK_D" if summary else "BLOCK_D"]), batch, cfg["nseg"])


def _dir_blocks(dirs, dummy, hss, summ):
    blocks = []
    for i, d in enumerate(dirs):
        sh, ss = (summ[0][i], summ[1][i]) if summ is not None else (dummy, dummy)
        blocks.append(d.args(dummy, hss[i], sh, ss))
    return blocks


class GradBuffers:
    """Gradient outputs of one or two directions, packed so that the host side costs few
    launches: one fp32 (ndir, nseg, B, D, N+2) buffer for the per-(segment, batch) partials
    [dA | dD | dbias] (one sum), and one fp32 buffer for every dB/dC. ``atomic``: the dB/dC
    buffer is zeroed and each channel block adds its sum into (B, G, N, L) (one memset, one cast;
    the rounding order is not deterministic). Otherwise each channel block writes its own rows
    of (B, nblk, N, L) partials with plain stores and one sum over the blocks of each group
    reduces them (no atomics, deterministic; nblk x the bytes, read once)."""

    def __init__(self, dirs, batch, dim, n_state, length, nseg, block_d, atomic, pitch=None, bc_pitch=None):
        dev = dirs[0].u.device
        self.dirs, self.n_state, self.atomic, self.length = dirs, n_state, atomic, length
        self.nblk = triton.cdiv(dim, block_d)
        self.small = torch.empty(len(dirs), nseg, batch, dim, n_state + 2, device=dev, dtype=torch.float32)
        rows = [r for d in dirs for r in ((d.G_B, d.G_C) if atomic else (self.nblk, self.nblk))]
        # dB/dC rows at the kernels' pitch (ntiles * BLOCK_L >= L): the padded positions are
        # written too (zeros), so the stores need no position mask; sliced off in grads()
        self.bc_pitch = bc_pitch or length
        shapes = [(batch, r, n_state, self.bc_pitch) for r in rows]
        sizes = [math.prod(s) for s in shapes]
        alloc = torch.zeros if atomic else torch.empty
        self.big = alloc(sum(sizes), device=dev, dtype=torch.float32)
        self.views = []  # (offset, shape) of dB, dC per direction
        off = 0
        for shape, size in zip(shapes, sizes):
            self.views.append((off, shape))
            off += size
        self.bufs = []
        for i, d in enumerate(dirs):
            (ob, sb), (oc, sc) = self.views[2 * i], self.views[2 * i + 1]
            self.bufs.append(dict(
                du=empty_rows(batch, dim, length, pitch, dev, d.u.dtype),
                ddt=empty_rows(batch, dim, length, pitch, dev, d.delta.dtype),
                small=self.small[i],
                dB=self.big[ob:ob + math.prod(sb)].view(sb),
                dC=self.big[oc:oc + math.prod(sc)].view(sc),
                rows=(sb[1], sc[1]),
            ))

    def args(self, i):
        """The kernel's per-direction gradient block (after the direction's argument block)."""
        b = self.bufs[i]
        return [b["du"], b["ddt"], b["small"], b["dB"], b["dC"], *b["rows"]]

    def grads(self, Bs, Cs):
        """Per direction (du, ddelta, dA, dB, dC, dD, ddelta_bias) in the inputs' dtypes/shapes."""
        n = self.n_state
        small = self.small.sum((1, 2))  # (ndir, D, N+2)
        dtypes = {t.dtype for t in (*Bs, *Cs)}
        big = self.big.to(dtypes.pop()) if self.atomic and len(dtypes) == 1 else None  # one cast for all
        out = []
        for i, (d, B, C) in enumerate(zip(self.dirs, Bs, Cs)):
            dBC = []
            for (off, shape), groups, grouped, like in ((self.views[2 * i], d.G_B, d.B_grouped, B),
                                                        (self.views[2 * i + 1], d.G_C, d.C_grouped, C)):
                src = big if big is not None else self.big
                g = src[off:off + math.prod(shape)].view(shape)
                if not self.atomic:  # blocks of a group are consecutive (a block never straddles groups)
                    g = g.view(shape[0], groups, shape[1] // groups, *shape[2:]).sum(2)
                g = g[..., :self.length].to(like.dtype)
                dBC.append(g if grouped else g[:, 0])
            dA = small[i, :, :n].to(d.A.dtype)
            dD = small[i, :, n].to(d.D.dtype) if d.D is not None else None
            dbias = small[i, :, n + 1].to(d.bias.dtype) if d.bias is not None else None
            out.append((self.bufs[i]["du"], self.bufs[i]["ddt"], dA, dBC[0], dBC[1], dD, dbias))
        return out


def check_inputs(u, A):
    if not triton_available():
        raise RuntimeError("triton is not usable here (needs CUDA, or TRITON_INTERPRET=1)")
    if not interpreting() and u.device.type != "cuda":
        raise RuntimeError(f"compiled triton needs CUDA tensors, got {u.device} (TRITON_INTERPRET=1 runs on CPU)")
    if A.is_complex():
        raise TypeError("complex A is not supported")


def _flags(dirs, reverse, softplus, z):
    """Constexpr flags shared by the forward and backward launches."""
    d1 = dirs[-1]
    return dict(BI=len(dirs) == 2, REV0=reverse, HAS_D0=dirs[0].D is not None, HAS_D1=d1.D is not None,
                HAS_BIAS0=dirs[0].bias is not None, HAS_BIAS1=d1.bias is not None, HAS_Z=z is not None,
                SOFTPLUS=softplus)


def scan_fwd(dirs, z, softplus, reverse, store_states, return_last, pitch=None, summaries=None,
             states_only=False):
    """Forward of one direction (``reverse`` applies) or both BiMamba directions (dirs =
    [forward, backward]; output = their sum). Returns out, per-direction tile states, last, cfg.
    ``pitch``: out is a (B, D, L) view of a (B, D, pitch) buffer with zero columns past L.
    ``summaries`` (:class:`SegmentSummaries`): filled with this call's segment summaries when
    empty; when already filled for this shape (an earlier call on the same inputs), used as they
    are and the summary launch is skipped. ``states_only`` (with ``store_states``): the tile
    states alone, out returned as None (the sloop kernel skips C and the output; a recomputing
    backward whose backward kernel writes the output itself, :func:`scan_bwd`'s ``write_y``)."""
    df = dirs[0]
    batch, dim, length, n_state = _dims(df)
    cfg = scan_config(batch, dim, n_state, length, tuple(g for d in dirs for g in d.dpg), df.u.device)
    dev = df.u.device
    pitch = pitch or length
    states_only = states_only and store_states and cfg["kernel"] == "sloop"
    bi = len(dirs) == 2
    if states_only:  # nothing is written there
        out = part = torch.empty(1, device=dev, dtype=df.u.dtype)
    else:
        out = empty_rows(batch, dim, length, pitch, dev, df.u.dtype)
        part = empty_rows(batch, dim, length, pitch, dev, torch.float32, zero_pad=False) \
            if bi and out.dtype != torch.float32 else out
    f32 = dict(device=dev, dtype=torch.float32)
    nths = triton.cdiv(length, cfg["BLOCK_L"] // cfg["HS_SPLIT"])  # states stored per row (the backward's tiles)
    hss = [torch.empty(batch, dim, nths if store_states else 1, n_state, **f32) for _ in dirs]
    last = torch.empty(batch, dim, n_state, **f32) if return_last else hss[0]
    zz = _lastdim_contig(z) if z is not None else out
    reuse = summaries is not None and summaries.fits(len(dirs), batch, dim, n_state, cfg["nseg"])
    summ = (summaries.state, summaries.dsum) if reuse else _summaries(len(dirs), batch, dim, n_state, cfg, dev)
    if summaries is not None and summ is not None and not reuse:
        summaries.state, summaries.dsum = summ
    blocks = _dir_blocks(dirs, out, hss, summ)
    args = [*blocks[0], *blocks[-1], zz, zz.stride(0), zz.stride(1), out, part, last,
            dim, length, pitch, n_state, cfg["ntiles"], cfg["nseg"], cfg["tps"]]
    kw = dict(**_flags(dirs, reverse, softplus, z), STORE_STATES=store_states, RETURN_LAST=return_last)
    if summ is not None and not reuse:
        LAST_LAUNCH["fwd_summary"] = selective_scan_fwd_kernel[_grid(cfg, batch, dim, True)](
            *args, SUMMARY=True, **kw, **_launch_cfg(cfg, True))
    if cfg["kernel"] == "sloop":
        bc_vec = LAST_LAUNCH["fwd_bc_vec"] = bc_vec_width(dirs, length, cfg, (cfg["BLOCK_L"],))
        LAST_LAUNCH["fwd"] = sloop_fwd_kernel[_grid(cfg, batch, dim)](
            *args, **kw, EVEN_N=n_state == cfg["BLOCK_N"], HS_SPLIT=cfg["HS_SPLIT"], STATES_ONLY=states_only,
            PREFETCH=cfg["prefetch"], SPLIT=cfg["fwd_split"], BC_VEC=bc_vec, PREFETCH_BC=cfg["prefetch_bc"],
            **_launch_cfg(cfg))
    else:
        LAST_LAUNCH["fwd"] = selective_scan_fwd_kernel[_grid(cfg, batch, dim)](
            *args, SUMMARY=False, **kw, **_launch_cfg(cfg))
    return (None if states_only else out), hss, (last if return_last else None), cfg


def scan_bwd(dirs, z, hss, dout, dlast, softplus, reverse, fwd_cfg, pitch=None, y_out=None):
    """Backward of :func:`scan_fwd` (its own blocks and segments; tiles of the forward's BLOCK_L /
    HS_SPLIT positions, whose stored states it reads): the gradient buffers and dz. ``pitch``: du,
    ddelta and dz as (B, D, L) views of (B, D, pitch) buffers with zero columns past L.
    ``y_out`` (with z; sloop kernels): a (B, D, L) view of a (B, D, pitch) buffer that receives the
    forward's output, from the states the backward recomputes (after a ``states_only`` forward)."""
    df = dirs[0]
    batch, dim, length, n_state = _dims(df)
    cfg = scan_config(batch, dim, n_state, length, tuple(g for d in dirs for g in d.dpg), df.u.device,
                      backward=True, block_l=fwd_cfg["BLOCK_L"] // fwd_cfg["HS_SPLIT"])
    dout = _lastdim_contig(dout)
    pitch = pitch or length
    gbuf = GradBuffers(dirs, batch, dim, n_state, length, cfg["nseg"], cfg["BLOCK_D"], cfg["dbc_atomic"], pitch,
                       bc_pitch=cfg["ntiles"] * cfg["BLOCK_L"])
    if z is not None:
        dz = empty_rows(batch, dim, length, pitch, z.device, z.dtype)
        bi = len(dirs) == 2
        dzpart = empty_rows(batch, dim, length, pitch, z.device, torch.float32, zero_pad=False) \
            if bi and dz.dtype != torch.float32 else dz
        zz = _lastdim_contig(z)
    else:
        dz = dzpart = zz = dout
    if y_out is not None:
        if z is None or cfg["kernel"] != "sloop":
            raise RuntimeError("y_out needs z and the sloop kernels")
        ypart = empty_rows(batch, dim, length, pitch, y_out.device, torch.float32, zero_pad=False) \
            if len(dirs) == 2 and y_out.dtype != torch.float32 else y_out
    dl = dlast.contiguous() if dlast is not None else dout
    summ = _summaries(len(dirs), batch, dim, n_state, cfg, df.u.device)
    blocks = _dir_blocks(dirs, dout, hss, summ)
    last = len(dirs) - 1
    args = [*blocks[0], *gbuf.args(0), *blocks[last], *gbuf.args(last),
            zz, zz.stride(0), zz.stride(1), dout, dout.stride(0), dout.stride(1), dl, dz, dzpart,
            dim, length, pitch, n_state, cfg["ntiles"], cfg["nseg"], cfg["tps"]]
    kw = dict(**_flags(dirs, reverse, softplus, z), HAS_DLAST=dlast is not None, DBC_ATOMIC=cfg["dbc_atomic"])
    if summ is not None:
        LAST_LAUNCH["bwd_summary"] = selective_scan_bwd_kernel[_grid(cfg, batch, dim, True)](
            *args, SUMMARY=True, EXP_ONCE=cfg["exp_once"], **kw, **_launch_cfg(cfg, True))
    if cfg["kernel"] == "sloop":
        bc_vec = LAST_LAUNCH["bwd_bc_vec"] = bc_vec_width(dirs, length, cfg, (cfg["BLOCK_L"] // cfg["SUB"],))
        LAST_LAUNCH["bwd"] = sloop_bwd_kernel[_grid(cfg, batch, dim)](
            *args, **kw, EVEN_N=n_state == cfg["BLOCK_N"], **_launch_cfg(cfg), SUB=cfg["SUB"],
            WRITE_Y=y_out is not None, y_ptr=y_out if y_out is not None else dz,
            ypart_ptr=ypart if y_out is not None else dz, DBC_SCATTER=cfg["dbc_scatter"], PRELOAD=cfg["preload"],
            SPLIT_TAIL=cfg["split_tail"], SPLIT_HEAD=cfg["split_head"], BC_VEC=bc_vec, UNROLL=cfg["bwd_unroll"],
            PREFETCH_BC=cfg["prefetch_bc"], PREFETCH_PART=cfg["prefetch_part"])
    else:
        LAST_LAUNCH["bwd"] = selective_scan_bwd_kernel[_grid(cfg, batch, dim)](
            *args, SUMMARY=False, EXP_ONCE=cfg["exp_once"], **kw, **_launch_cfg(cfg))
    return gbuf, (dz if z is not None else None)


