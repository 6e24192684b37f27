"""RMSNorm (weight only) and the fused residual add + RMSNorm of the Mamba blocks."""

from __future__ import annotations

import torch
from torch import nn


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: at least float32 (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x * rsqrt(mean(x^2) + eps) * weight over the last dim, computed in >= fp32; x's dtype out."""
    acc = _acc_dtype(x.dtype)
    xf = x.to(acc)
    out = xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight.to(acc)
    return out.to(x.dtype)


def add_rms_norm_ref(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`add_rms_norm` composed under autograd (the reference of the fused function; autograd
    keeps the fp32 residual and the fp32 normalised product)."""
    acc = _acc_dtype(x.dtype)
    residual = x.to(acc) if residual is None else residual.to(acc) + x.to(acc)
    out = residual * torch.rsqrt(residual.square().mean(-1, keepdim=True) + eps) * weight.to(acc)
    return out.to(x.dtype), residual


_HAS_FUSED_RMS_NORM = hasattr(torch.ops.aten, "_fused_rms_norm_backward")  # torch >= 2.8


def _fused(res: torch.Tensor) -> bool:
    """Whether torch's fused RMSNorm kernels (``aten._fused_rms_norm`` and its backward, one kernel
    each way on CUDA) serve ``res``: fp32 on CUDA. Elsewhere the composed ops run."""
    return _HAS_FUSED_RMS_NORM and res.is_cuda and res.dtype == torch.float32


class _AddRMSNorm(torch.autograd.Function):
    """Forward as :func:`add_rms_norm_ref` (off CUDA the same ops in the same order: the same
    values; on CUDA torch's fused RMSNorm kernels, equal to rounding); saves only the residual,
    ``rstd`` (one number per token) and the weight: the normalised product and the output are
    recomputed in the backward (mamba-ssm's ``layer_norm_fn`` saves the same). Composed, the norm
    runs as about a dozen elementwise and reduction kernels per block and direction on CUDA; fused,
    as one (plus casts and the residual add). The weight's gradient is not the fused backward's
    (``GammaBetaBackward``: 148 us per Ti block at 8 frames x 32 clips on an H200, 2.7% of the step)
    but one product and a matrix-vector product."""

    @staticmethod
    def forward(ctx, x, residual, weight, eps):
        acc = _acc_dtype(x.dtype)
        res = x.to(acc) if residual is None else residual.to(acc) + x.to(acc)
        if _fused(res):
            normed, rstd = torch._fused_rms_norm(res, [res.shape[-1]], weight.to(acc), eps)
        else:
            rstd = torch.rsqrt(res.square().mean(-1, keepdim=True) + eps)
            normed = res * rstd * weight.to(acc)
        out = normed.to(x.dtype)
        ctx.save_for_backward(res, rstd, weight)
        ctx.dtypes = (x.dtype, None if residual is None else residual.dtype)
        return out, res

    @staticmethod
    def backward(ctx, dout, dres):
        res, rstd, weight = ctx.saved_tensors
        x_dtype, r_dtype = ctx.dtypes
        acc = res.dtype
        dweight = None
        if _fused(res):
            d32 = dout.to(acc)
            dr, _ = torch.ops.aten._fused_rms_norm_backward(d32, res, [res.shape[-1]], rstd, weight.to(acc),
                                                            [True, False])
            if ctx.needs_input_grad[2]:  # sum over tokens of dout * res * rstd: a product and a GEMV
                dim = res.shape[-1]
                dweight = (d32 * res).reshape(-1, dim).t().mv(rstd.reshape(-1)).to(weight.dtype)
        else:
            xhat = res * rstd
            dwx = dout.to(acc) * weight.to(acc)
            dr = rstd * (dwx - xhat * (dwx * xhat).mean(-1, keepdim=True))
            if ctx.needs_input_grad[2]:
                dweight = (dout.to(acc) * xhat).reshape(-1, xhat.shape[-1]).sum(0).to(weight.dtype)
        if dres is not None:
            dr = dr + dres.to(acc)
        dx = dr.to(x_dtype) if ctx.needs_input_grad[0] else None
        dresidual = dr.to(r_dtype) if r_dtype is not None and ctx.needs_input_grad[1] else None
        return dx, dresidual, dweight, None


def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused ``residual = residual + x; out = RMSNorm(residual)`` (mamba's ``rms_norm_fn`` with
    ``prenorm=True, residual_in_fp32=True``). The residual stream is kept in >= fp32; ``out``
    has x's dtype. ``residual=None`` starts the stream at x. Returns (out, residual).

    x, residual: (..., D); weight (D,). While autograd records, one autograd function that saves
    only the residual and one rstd per token (:class:`_AddRMSNorm`; its reference:
    :func:`add_rms_norm_ref`); the output is the same either way."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, residual, weight)):
        return _AddRMSNorm.apply(x, residual, weight, eps)
    return add_rms_norm_ref(x, residual, weight, eps)


class RMSNorm(nn.Module):
    """RMSNorm with a weight and no bias (state-dict key ``weight`` only)."""

    def __init__(self, dim: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        """(..., dim) -> same; with ``residual``: the fused add + norm, returns (out, residual)."""
        if residual is None:
            return rms_norm(x, self.weight, self.eps)
        return add_rms_norm(x, residual, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
