"""One direction of the Mamba mixer after ``in_proj`` as a single op (mamba-ssm's
``mamba_inner_fn``): conv + SiLU, ``x_proj``, ``dt_proj``, selective scan with D-skip and
SiLU(z) gate, ``out_proj``. The ``mamba_ssm`` package fuses it into one autograd function with
the layouts its kernels want (no transposes, conv and delta recomputed in the backward); this
module is its composed reference on the platform's own ops."""

from __future__ import annotations

from .bimamba_inner import branch
from .projection import linear_from_bdl

__all__ = ["mamba_inner_composed"]


def mamba_inner_composed(
    xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight, out_proj_bias,
    A, D, delta_bias, *, conv_fn, scan_fn,
):
    """xz (B, 2 d_inner, L) -> (B, L, d_model), mamba-ssm's ``mamba_inner_fn`` semantics
    (variable B/C from ``x_proj``, ``delta_softplus``). ``conv_fn(x, w (D, K), b)`` and
    ``scan_fn(u, delta, A, B, C, D, z, delta_bias)`` are the backend's ops."""
    x, z = xz.chunk(2, dim=1)
    u, dt, B, C = branch(x, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A.shape[-1],
                         reverse=False, conv_fn=lambda x_, w, b, _rev: conv_fn(x_, w, b))
    y = scan_fn(u, dt, A, B, C, D, z, delta_bias)
    return linear_from_bdl(y, out_proj_weight, out_proj_bias)
