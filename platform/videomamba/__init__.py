"""VideoMamba on Ray: the published VideoMamba model, a Ray Data video pipeline,
Ray Train / Ray Tune training and MLflow tracking.

Public API::

    import videomamba
    model = videomamba.create_model("videomamba_tiny", num_frames=8, num_classes=400)
    report = videomamba.load_checkpoint(model, "videomamba_t16_k400_f8_res224.pth")

Heavy submodules (torch, ray) are imported lazily so ``import videomamba`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "create_model": "videomamba.models.videomamba",
    "list_models": "videomamba.models.videomamba",
    "VideoMamba": "videomamba.models.videomamba",
    "SCAN_ORDERS": "videomamba.models.scan_order",
    "load_checkpoint": "videomamba.models.pretrained",
    "available_backends": "videomamba.ops",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'videomamba' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
