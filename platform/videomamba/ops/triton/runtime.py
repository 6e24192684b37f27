"""Triton import guard and execution mode (compiled on CUDA, or the CPU interpreter).

The package must import without triton (the dispatcher probes it lazily): kernel modules
define their kernels under ``if HAS_TRITON:``."""

from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    HAS_TRITON = False

__all__ = ["HAS_TRITON", "INTERPRET", "triton", "tl", "jit", "interpreting", "triton_available"]


def _read_interpret() -> bool:
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _triton_mode() -> bool:
    """Whether triton itself was imported in interpreter mode: its own @jit helpers (tl.sum's
    combine, ...) are then interpreted, and ours must be too. TRITON_INTERPRET must therefore be
    set before triton is first imported in the process (tests/conftest.py does so without CUDA)."""
    try:
        from triton.runtime.interpreter import InterpretedFunction

        return isinstance(tl.standard._sum_combine, InterpretedFunction)
    except Exception:  # pragma: no cover - other triton layouts
        return _read_interpret()


INTERPRET = HAS_TRITON and _triton_mode()


def jit(fn):
    """triton.jit in the mode triton was imported in (whatever TRITON_INTERPRET says now)."""
    if INTERPRET == _read_interpret():
        return triton.jit(fn)
    if INTERPRET:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(fn)
    return triton.runtime.jit.JITFunction(fn)


def interpreting() -> bool:
    """True when the kernels run in the CPU interpreter."""
    return INTERPRET


def triton_available() -> bool:
    """True when triton imports and its kernels can run here: a CUDA GPU, or the CPU
    interpreter (``TRITON_INTERPRET=1`` when triton was first imported)."""
    return HAS_TRITON and (INTERPRET or torch.cuda.is_available())
