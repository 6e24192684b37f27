"""``ModelSpec``: which registered model to build, with which ``create_model`` kwargs.

The one description of an architecture that travels between layers: the launcher resolves it
from the config (``ModelSection.spec``), the training loop builds it, checkpoints record it as
``meta["model"] = {"name": ..., "kwargs": {...}}`` (the format every videomamba checkpoint has
used, so old checkpoints load), and teachers and exports rebuild from it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model ``name`` (``videomamba.list_models()``) and its constructor ``kwargs``."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "kwargs", dict(self.kwargs))  # a private copy: the spec is a value

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ModelSpec:
        """From a checkpoint's ``meta.json`` (the whole meta, or its ``"model"`` entry)."""
        entry = meta.get("model", meta) if "name" not in meta else meta
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"checkpoint metadata has no model name (meta['model'] = {entry!r})")
        return cls(entry["name"], entry.get("kwargs") or {})

    def to_meta(self) -> dict[str, Any]:
        """``{"name", "kwargs"}``: what checkpoints record (JSON-serialisable)."""
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    def replace(self, **kwargs: Any) -> ModelSpec:
        """A copy with ``kwargs`` set over this spec's."""
        return ModelSpec(self.name, {**self.kwargs, **kwargs})

    def describe(self) -> str:
        """``name (k=v, ...)`` for logs and ``--dry-run``."""
        return f"{self.name} ({', '.join(f'{k}={v}' for k, v in self.kwargs.items())})"

    def build(self, weights: Any = None, *, inflate: str = "center", pos_grid: tuple[int, int] | None = None,
              strict: bool = False) -> torch.nn.Module:
        """``create_model(name, **kwargs)``, initialised from ``weights`` when given (a state-dict
        file or a state dict, loaded by ``videomamba.load_checkpoint`` with ``inflate``,
        ``pos_grid`` and ``strict``). Raises ValueError for an unknown model name or invalid kwargs."""
        import videomamba

        model = videomamba.create_model(self.name, **self.kwargs)
        if weights is not None:
            report = videomamba.load_checkpoint(model, weights, inflate=inflate, pos_grid=pos_grid, strict=strict)
            logger.info("%s initialised from %s: %s", self.name, weights if isinstance(weights, str) else "a state dict",
                        report)
        return model
