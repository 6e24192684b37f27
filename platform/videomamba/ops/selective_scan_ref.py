"""Sequential reference of the selective scan (mamba-ssm semantics). For tests only: it loops
over the sequence in Python, runs in any dtype (float64 in tests) and is autograd-correct."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
):
    """h_t = exp(delta_t * A) h_{t-1} + delta_t * B_t * u_t;  y_t = <C_t, h_t> + D * u_t;  y *= silu(z).

    u, delta, z: (B, D, L); A: (D, N); B, C: (B, N, L) or (B, G, N, L) with D % G == 0;
    D, delta_bias: (D,). Returns y (B, D, L) in u's dtype (and the last state (B, D, N)).
    The state is kept in at least float32.
    """
    dtype_in = u.dtype
    compute = torch.promote_types(u.dtype, torch.float32)
    u, delta, A, B, C = (t.to(compute) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[..., None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    n = A.shape[1]
    if B.dim() == 4:  # grouped: (B, G, N, L) -> (B, D, N, L)
        B = B.repeat_interleave(dim // B.shape[1], dim=1)
    else:
        B = B[:, None].expand(batch, dim, n, length)
    if C.dim() == 4:
        C = C.repeat_interleave(dim // C.shape[1], dim=1)
    else:
        C = C[:, None].expand(batch, dim, n, length)
    dA = torch.exp(delta[:, :, None, :] * A[None, :, :, None])  # (B, D, N, L)
    dBu = delta[:, :, None, :] * B * u[:, :, None, :]  # (B, D, N, L)
    h = u.new_zeros(batch, dim, n)
    ys = []
    for t in range(length):
        h = dA[..., t] * h + dBu[..., t]
        ys.append((h * C[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D.to(compute)[:, None]
    if z is not None:
        y = y * F.silu(z.to(compute))
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y


def bi_selective_scan_ref(
    u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
    u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b,
    z, delta_softplus: bool = True,
):
    """Both BiMamba directions on sequences in original order: the backward direction is the
    published flip -> scan -> flip. Returns y_f + y_b, (B, D, L)."""
    y_f = selective_scan_ref(u_f, delta_f, A_f, B_f, C_f, D_f, z, delta_bias_f, delta_softplus)
    flip = lambda t: None if t is None else t.flip(-1)  # noqa: E731
    y_b = selective_scan_ref(
        flip(u_b), flip(delta_b), A_b, flip(B_b), flip(C_b), D_b, flip(z), delta_bias_b, delta_softplus
    ).flip(-1)
    return y_f + y_b
