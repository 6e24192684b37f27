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

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from videomamba.metrics import classification_metrics
from videomamba.modules.frozen import FrozenHolder

#: ``video``, ``label``, ``index``, ``view`` tensors; ``caption`` (list of str) with ``data.captions``
Batch = dict[str, Any]


class ObjectiveConfigBase(BaseModel):
    """Base of every ``objective:`` config section; subclasses add ``name: Literal[...]``."""

    model_config = ConfigDict(extra="forbid")


class Objective(FrozenHolder):
    """Base class: the student is ``self.model``; subclasses implement :meth:`forward`.
    Frozen teachers: :meth:`register_frozen` (see :mod:`videomamba.modules.frozen`)."""

    name: ClassVar[str] = ""
    #: set when some trainable parameters are legitimately unused in a step (DDP needs to know)
    find_unused_parameters: ClassVar[bool] = False

    def __init__(self, cfg: ObjectiveConfigBase, model: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.model = model

    # -- the step ------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``batch`` has ``video (B,3,T,H,W)``, ``label (B,)`` (and ``index``, ``view``).
        Returns the scalar loss and detached per-batch metrics (averaged over the batch)."""
        raise NotImplementedError

    def set_progress(self, progress: float) -> None:
        """Called by the training loop before every step with the fraction of training done,
        ``(epoch + step / steps_per_epoch) / epochs`` in [0, 1] (for schedules inside objectives)."""

    # -- validation during training ----------------------------------------------------------------
    @classmethod
    def preflight(cls, cfg: ObjectiveConfigBase) -> None:
        """Cheap checks run by the launcher before any worker starts (raise ValueError naming the field)."""

    def eval_outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-view outputs ``{name: (B, ...)}`` of the evaluated student ``model`` (the EMA copy
        when evaluated): ``{"logits": (B, K)}`` by default."""
        return {"logits": model(batch["video"])}

    def eval_metrics(
        self, outputs: dict[str, np.ndarray], *, num_classes: int, captions: Sequence[Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """Metrics of a whole split from the concatenated :meth:`eval_outputs` plus ``index`` and
        ``label`` (all views of all workers); ``captions[row]`` are the captions of manifest row
        ``row`` (with ``data.captions``, read by the driver). Default:
        :func:`videomamba.metrics.classification_metrics` (views averaged per video)."""
        return classification_metrics(outputs["logits"], outputs["label"], index=outputs["index"], num_classes=num_classes)

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
