"""The Objective interface shared by every training objective.

An :class:`Objective` is an ``nn.Module`` that owns the student as ``.model`` plus any extra
trainable heads; ``forward(batch) -> (loss, metrics)``. The training loop wraps the whole
objective in DDP (``ray.train.torch.prepare_model``), so heads are synchronised like the model.
Frozen teachers are registered with :meth:`Objective.register_frozen`: they follow ``.to()`` /
``.cuda()`` but stay out of ``parameters()``, ``state_dict()`` and DDP, and always run in eval mode.

Checkpoints store ``.model`` as a plain published-format state dict (``model.pt``) and the
extra heads separately (:meth:`Objective.extra_state_dict`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

Batch = dict[str, torch.Tensor]


class ObjectiveConfigBase(BaseModel):
    """Base of every ``objective:`` config section; subclasses add ``name: Literal[...]``."""

    model_config = ConfigDict(extra="forbid")


class Objective(nn.Module):
    """Base class: the student is ``self.model``; subclasses implement :meth:`forward`."""

    name: ClassVar[str] = ""
    #: set when some trainable parameters are legitimately unused in a step (DDP needs to know)
    find_unused_parameters: ClassVar[bool] = False

    def __init__(self, cfg: ObjectiveConfigBase, model: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.model = model
        self.__dict__["_frozen"] = {}

    # -- frozen modules (teachers) -------------------------------------------------------------
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

    # -- the step ------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``batch`` has ``video (B,3,T,H,W)``, ``label (B,)`` (and ``index``, ``view``).
        Returns the scalar loss and detached per-batch metrics (averaged over the batch)."""
        raise NotImplementedError

    def set_progress(self, progress: float) -> None:
        """Called by the training loop before every step with the fraction of training done,
        ``(epoch + step / steps_per_epoch) / epochs`` in [0, 1] (for schedules inside objectives)."""

    def predict(self, video: torch.Tensor) -> torch.Tensor:
        """Logits used for evaluation (the student's classifier by default)."""
        return self.model(video)

    # -- checkpoint helpers ----------------------------------------------------------------------
    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        """State of everything trainable besides ``.model`` (empty for supervised)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("model.")}

    def load_extra_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            return
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("model.")]
        if missing or unexpected:
            raise RuntimeError(f"objective heads: missing {missing}, unexpected {unexpected}")
