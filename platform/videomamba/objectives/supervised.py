"""Supervised classification: cross-entropy with label smoothing, timm Mixup/CutMix on video."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from videomamba.objectives.base import Batch, Objective, ObjectiveConfigBase


class MixupConfig(ObjectiveConfigBase):
    """timm ``Mixup`` arguments; CutMix boxes are shared by all frames of a clip (tubes)."""

    mixup_alpha: float = Field(0.8, ge=0)
    cutmix_alpha: float = Field(1.0, ge=0)
    prob: float = Field(1.0, ge=0, le=1)
    switch_prob: float = Field(0.5, ge=0, le=1)
    mode: Literal["batch", "pair", "elem"] = "batch"


class SupervisedConfig(ObjectiveConfigBase):
    name: Literal["supervised"] = "supervised"
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    mixup: MixupConfig | None = None


class SupervisedObjective(Objective):
    name = "supervised"

    def __init__(self, cfg: SupervisedConfig, model: torch.nn.Module):
        super().__init__(cfg, model)
        self.mixup = None
        if cfg.mixup is not None:
            from timm.data import Mixup

            self.mixup = Mixup(
                **cfg.mixup.model_dump(),
                label_smoothing=cfg.label_smoothing,
                num_classes=model.num_classes,
            )

    def mix(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mixup/CutMix in training (even batches): ``(mixed video, soft targets (B, K))``; else
        ``(video, None)``. CutMix cuts the same box in every frame of a clip."""
        if not (self.training and self.mixup is not None and video.shape[0] % 2 == 0):
            return video, None
        b, c, t, h, w = video.shape
        # timm mixes (B, C, H, W); fold time into channels so CutMix cuts the same box in every frame
        mixed, target = self.mixup(video.reshape(b, c * t, h, w), label)
        return mixed.reshape(b, c, t, h, w), target

    def classification_loss(self, logits: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """Soft-target cross-entropy with ``target`` (mixup), else label-smoothed CE (train only)."""
        if target is not None:
            return torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        smoothing = self.cfg.label_smoothing if self.training else 0.0
        return F.cross_entropy(logits.float(), label, label_smoothing=smoothing)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        label = batch["label"]
        video, target = self.mix(batch["video"], label)
        logits = self.model(video)
        loss = self.classification_loss(logits, label, target)
        with torch.no_grad():
            acc = (logits.argmax(-1) == label).float().mean()
        return loss, {"loss": loss.detach(), "acc": acc}
