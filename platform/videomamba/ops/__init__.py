"""Functional ops of the BiMamba mixer with pluggable backends (mamba-ssm's layout): the
selective scan, the depthwise causal conv, and one or both Mamba directions after ``in_proj``.

Backends: ``"torch"`` (chunked pure PyTorch, CPU and GPU, autograd), ``"triton"`` (Triton
kernels in :mod:`videomamba.ops.triton`, CUDA or ``TRITON_INTERPRET=1``), ``"mamba_ssm"`` (the
mamba-ssm / causal-conv1d CUDA extensions), ``"reference"`` (sequential, tests) and ``"auto"``.
Dispatch tables and backend resolution: :mod:`videomamba.ops.dispatch`.
"""

from .dispatch import (
    BACKENDS,
    available_backends,
    backend_status,
    bi_selective_scan_fn,
    bimamba_fn,
    bimamba_inner_fn,
    causal_conv1d_fn,
    fastest_backend,
    check_backend,
    has_fused_inner,
    has_fused_mixer,
    mamba_inner_fn,
    resolve_backend,
    selective_scan_fn,
    take_along_seq,
)

__all__ = [
    "BACKENDS", "available_backends", "backend_status", "check_backend", "resolve_backend", "fastest_backend", "take_along_seq",
    "selective_scan_fn", "bi_selective_scan_fn", "causal_conv1d_fn", "mamba_inner_fn", "has_fused_inner", "bimamba_inner_fn",
    "has_fused_mixer", "bimamba_fn",
]
