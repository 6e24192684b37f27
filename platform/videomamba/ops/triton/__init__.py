"""Triton kernels of the selective scan (README.md beside this file: the design)."""

from .bimamba_inner import BiMambaInnerTriton, BiMambaTriton, save_scan_states
from .runtime import triton_available
from .selective_scan import bi_selective_scan_triton, selective_scan_triton

__all__ = ["selective_scan_triton", "bi_selective_scan_triton", "BiMambaInnerTriton", "BiMambaTriton", "save_scan_states",
           "triton_available"]
