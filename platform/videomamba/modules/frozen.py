"""``FrozenHolder``: an ``nn.Module`` that can keep frozen sub-modules outside its state.

A module registered with :meth:`FrozenHolder.register_frozen` is reachable as an attribute,
follows ``.to()`` / ``.cuda()`` / dtype casts and stays in eval mode, but is not in
``parameters()``, ``state_dict()`` or DDP (frozen teachers, frozen text towers).
"""

from __future__ import annotations

from typing import Any

from torch import nn


class FrozenHolder(nn.Module):
    """Base class for modules holding frozen, non-state sub-modules."""

    def __init__(self) -> None:
        super().__init__()
        self.__dict__["_frozen"] = {}

    def register_frozen(self, name: str, module: nn.Module) -> nn.Module:
        """Keep ``module`` as a frozen attribute: no grads, eval mode, not in parameters/state."""
        module.requires_grad_(False).eval()
        self.__dict__["_frozen"][name] = module
        return module

    def __getattr__(self, name: str) -> Any:
        frozen = self.__dict__.get("_frozen", {})
        if name in frozen:
            return frozen[name]
        return super().__getattr__(name)

    def _apply(self, fn, recurse: bool = True):  # noqa: D401 - follows nn.Module
        super()._apply(fn, recurse)
        for module in self.__dict__["_frozen"].values():
            module._apply(fn, recurse)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.__dict__["_frozen"].values():
            module.eval()
        return self
