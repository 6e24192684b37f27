"""Re-export of :func:`videomamba.env.cpu_model` for scripts under benchmarks/ written before
``videomamba.env`` existed; new code imports ``videomamba.env``."""

from videomamba.env import cpu_model

__all__ = ["cpu_model"]
