"""Mixed precision: bf16 autocast where supported, fp16 + GradScaler on other GPUs, fp32 on CPU."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import torch

logger = logging.getLogger(__name__)

PrecisionName = Literal["auto", "bf16", "fp16", "fp32"]


@dataclass
class Precision:
    """What autocast does on one device; ``scaler`` is a GradScaler for fp16 (enabled) or a no-op."""

    name: str
    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def resolve_precision(name: PrecisionName, device: torch.device) -> Precision:
    """``auto``: bf16 on GPUs that support it, fp16 (with loss scaling) on older GPUs, fp32 on CPU.

    An explicit name is honoured, except fp16 on CPU (no GradScaler there), which falls back to fp32.
    """
    kind = device.type
    if name == "auto":
        if kind == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    if name == "fp16" and kind != "cuda":
        logger.warning("fp16 needs a CUDA device; using fp32 on %s", kind)
        name = "fp32"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[name]
    scaler = torch.amp.GradScaler(kind if kind == "cuda" else "cpu", enabled=name == "fp16")
    return Precision(name=name, device_type=kind, dtype=dtype, scaler=scaler)
