"""Lazy re-exports for sub-packages, so ``import videomamba.<pkg>`` does not import Ray/torch."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """Module ``__getattr__`` resolving ``name`` from ``{package}.{exports[name]}`` on first use."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
