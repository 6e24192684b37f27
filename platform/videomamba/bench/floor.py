"""Physical floor of one step: the least time the hardware needs, whatever the kernels.

Per clip, ``L = 1 + (T/k) * (H/p) * (W/p)`` tokens, ``n`` layers, width ``D``, and for a
VideoMamba layer ``E = d_inner = 2D``, ``N = d_state = 16``, ``R = dt_rank = ceil(D/16)``,
activation bytes ``s = 2`` (bf16). Three independent lower bounds:

* tensor-core FLOPs (projections; 2 FLOPs per multiply-add), forward per token per layer
  ``F_tok = 2*D*2E (in_proj) + 2*2*E*(R + 2N) (x_proj, both directions)
  + 2*2*R*E (dt_proj, both) + 2*E*D (out_proj)``; plus the patch embedding
  ``2 * 3*k*p*p * D`` per patch token. Inference ``F = L*n*F_tok + patch``;
  training (fwd + bwd) ``3 F``.  ``t_mma = F / P_mma`` (H100 SXM bf16 dense ~989 TFLOP/s).
* HBM bytes of the fused bidirectional scan (every operand read or written once): forward
  reads ``u_f, delta_f, u_b, delta_b, z`` and ``B_f, C_f, B_b, C_b``, writes ``y``:
  ``(6E + 4N) s``; backward reads those plus ``dy`` and writes ``du, ddelta`` (both
  directions), ``dz``, ``dB, dC`` (both): ``(11E + 8N) s``. Per clip ``bytes = L*n*that``.
  ``t_hbm = bytes / BW`` (H100 SXM ~3.35 TB/s).  This excludes every other activation
  (in_proj output, conv, norms), so it is a strict floor, not an estimate of a real kernel.
* special-function unit: the scan needs ``exp(delta*A)`` for each (token, channel, state,
  direction): ``2*E*N`` per token per layer, once forward and once again in the backward
  (recomputed): ``t_sfu = n_exp / (SMs * 16 * f_clk)`` (16 ex2/clk/SM on sm_90; a kernel can
  move part of it to FMA units with a polynomial, so this bound is soft).

``t_floor = max(t_mma, t_hbm, t_sfu)``; a backend's *distance* is measured time / floor.
For the attention baseline the same idea: ``F_tok = 24 D^2`` (qkv, proj, MLP 4x) plus
``4 L D`` (QK^T, PV) per token per layer, training ``3 F`` (FlashAttention's backward is
~2.5x forward: a slight underestimate); ``exp`` count ``heads * L^2`` per layer, twice in
training; HBM bytes are not the binding bound and are left out.

Example, VideoMamba-Ti, 64 frames, 224 px, per clip (L = 12545, n = 24, D = 192):
training ``3F ~ 0.49 TFLOP -> 0.49 ms``, scan bytes ``4.05 GB -> 1.21 ms``,
``exp 7.4e9 -> 1.77 ms`` (H100 SXM, 132 SMs, 1.98 GHz): floor ~1.8 ms per clip, ~560 clips/s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Peaks:
    """Hardware peaks: dense bf16 tensor-core FLOP/s, HBM bytes/s, exp/s on the SFUs."""

    name: str
    mma_flops: float
    hbm_bytes: float
    sfu_exp: float


_SFU_PER_SM_CLK = 16
PEAKS = {
    "h100_sxm": Peaks("H100 SXM", 989.5e12, 3.35e12, 132 * _SFU_PER_SM_CLK * 1.98e9),
    "h100_pcie": Peaks("H100 PCIe", 756.0e12, 2.0e12, 114 * _SFU_PER_SM_CLK * 1.755e9),
    "h200": Peaks("H200", 989.5e12, 4.8e12, 132 * _SFU_PER_SM_CLK * 1.98e9),
}


def peaks_for(device_name: str | None) -> Peaks:
    """Peaks of a device by name (``torch.cuda.get_device_name``); H100 SXM if unknown."""
    name = (device_name or "").lower()
    if "h200" in name:
        return PEAKS["h200"]
    if "h100" in name and "pcie" in name:
        return PEAKS["h100_pcie"]
    return PEAKS["h100_sxm"]


@dataclass(frozen=True)
class Dims:
    """What the floor needs of a model. ``kind`` is ``"mamba"`` or ``"attention"``."""

    kind: str
    embed_dim: int
    depth: int
    patch_size: int = 16
    kernel_size: int = 1
    d_inner: int = 0
    d_state: int = 16
    dt_rank: int = 0
    num_heads: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def mamba_dims(embed_dim: int, depth: int, *, patch_size: int = 16, kernel_size: int = 1) -> Dims:
    """Published BiMamba dims for a width: ``E = 2D``, ``N = 16``, ``R = ceil(D/16)``."""
    return Dims("mamba", embed_dim, depth, patch_size, kernel_size, 2 * embed_dim, 16, math.ceil(embed_dim / 16))


def first_int(x) -> int:
    return int(x[0] if isinstance(x, (tuple, list)) else x)


def dims_of(model) -> Dims:
    """Read dims off a built model (VideoMamba by its published parameter names, or the
    attention baseline)."""
    patch = first_int(model.patch_size)
    if hasattr(model, "blocks") and hasattr(model.blocks[0], "attn"):
        return Dims("attention", model.embed_dim, model.depth, patch, 1, num_heads=model.blocks[0].attn.num_heads)
    mixer = model.layers[0].mixer
    return Dims(
        "mamba", model.embed_dim, len(model.layers), patch, first_int(getattr(model, "kernel_size", 1)),
        d_inner=mixer.in_proj.weight.shape[0] // 2, d_state=mixer.A_log.shape[1], dt_rank=mixer.dt_proj.weight.shape[1],
    )


def tokens_per_clip(dims: Dims, frames: int, img_size: int) -> int:
    """``1 + (T/k) * (H/p)^2`` (cls included)."""
    return 1 + (frames // dims.kernel_size) * (img_size // dims.patch_size) ** 2


def floor_per_clip(dims: Dims, frames: int, img_size: int, mode: str, peaks: Peaks, act_bytes: int = 2) -> dict:
    """Lower bounds in seconds per clip for ``mode`` in {"infer", "train"}.

    Returns ``{"flops", "bytes", "exps", "t_mma", "t_hbm", "t_sfu", "t_floor", "bound"}``.
    """
    if mode not in ("infer", "train"):
        raise ValueError(f"mode must be 'infer' or 'train', got {mode!r}")
    train = mode == "train"
    length = tokens_per_clip(dims, frames, img_size)
    d, n = dims.embed_dim, dims.depth
    patch = 2 * 3 * dims.kernel_size * dims.patch_size**2 * d * (length - 1)
    if dims.kind == "mamba":
        e, s, r = dims.d_inner, dims.d_state, dims.dt_rank
        f_tok = 2 * d * 2 * e + 2 * 2 * e * (r + 2 * s) + 2 * 2 * r * e + 2 * e * d
        flops = length * n * f_tok + patch
        scan_bytes = (6 * e + 4 * s) + ((11 * e + 8 * s) if train else 0)
        nbytes = float(length * n * scan_bytes * act_bytes)
        exps = float(length * n * 2 * e * s)
    elif dims.kind == "attention":
        flops = length * n * (24 * d * d + 4 * length * d) + patch
        nbytes = 0.0
        exps = float(n * dims.num_heads * length * length)
    else:
        raise ValueError(f"unknown dims kind {dims.kind!r}")
    if train:
        flops, exps = 3 * flops, 2 * exps
    terms = {"t_mma": flops / peaks.mma_flops, "t_hbm": nbytes / peaks.hbm_bytes, "t_sfu": exps / peaks.sfu_exp}
    bound = max(terms, key=terms.get)
    return {"flops": float(flops), "bytes": nbytes, "exps": exps, **terms, "t_floor": terms[bound], "bound": bound[2:]}


def scan_floor(d_inner: int, batch: int, length: int, peaks: Peaks, n_state: int = 16, act_bytes: int = 2) -> dict:
    """Floor of ONE bidirectional scan op (both directions; bf16 activations): the HBM bytes and
    SFU terms of the module docstring for ``batch * length`` tokens of one layer, forward alone
    (``fwd``: one exp per (token, channel, state, direction)) and forward + backward
    (``fwd_bwd``: the backward recomputes the exp once more). Seconds."""
    e, n, tokens = d_inner, n_state, batch * length
    out = {}
    for mode, nbytes, exps in (("fwd", (6 * e + 4 * n) * act_bytes, 2 * e * n),
                               ("fwd_bwd", (17 * e + 12 * n) * act_bytes, 4 * e * n)):
        terms = {"t_hbm": tokens * nbytes / peaks.hbm_bytes, "t_sfu": tokens * exps / peaks.sfu_exp}
        out[mode] = terms | {"t_floor": max(terms.values())}
    return out


__all__ = ["Peaks", "PEAKS", "peaks_for", "Dims", "mamba_dims", "dims_of", "tokens_per_clip", "floor_per_clip",
           "scan_floor"]
