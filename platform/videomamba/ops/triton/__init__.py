"""Triton kernels of the selective scan and of the causal conv1d (README.md beside this file: the design)."""

from .bimamba_inner import BiMambaInnerTriton, BiMambaTriton, save_scan_states
from .causal_conv1d import bi_causal_conv1d_triton, causal_conv1d_triton
from .runtime import triton_available
from .selective_scan import bi_selective_scan_triton, selective_scan_triton

__all__ = ["selective_scan_triton", "bi_selective_scan_triton", "BiMambaInnerTriton", "BiMambaTriton",
           "save_scan_states", "causal_conv1d_triton", "bi_causal_conv1d_triton", "triton_available"]
