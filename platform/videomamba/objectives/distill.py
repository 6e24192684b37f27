"""Self-distillation (``objective.name: distill``), as released with VideoMamba.

A frozen teacher (a smaller trained VideoMamba) sees the same clip as the student. The student's
final token map ``(B, 1 + L, D)`` (after its final norm) goes through a projection head
(RMSNorm + Linear to the teacher width ``D_t``); both maps are L2-normalised per token and
aligned with ``2 - 2 cos``, averaged over tokens and batch (``align: cls`` aligns the cls token
only). ``loss = CE + w * align`` where ``w`` is ``distill_weight`` (constant) or follows a cosine
from ``distill_weight`` to ``distill_weight_end`` over training.

The teacher is kept out of the objective's parameters / state dict (never checkpointed); the
projection head is an extra head (``heads.pt``), not part of the exported ``model.pt``.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from videomamba.modules import RMSNorm
from videomamba.objectives.base import Batch
from videomamba.objectives.losses import cosine_loss, cosine_weight
from videomamba.objectives.supervised import SupervisedConfig, SupervisedObjective
from videomamba.objectives.teachers import Teacher, TeacherConfig, build_teacher

logger = logging.getLogger(__name__)


class DistillConfig(SupervisedConfig):
    """Supervised classification (label smoothing, mixup) plus feature distillation."""

    name: Literal["distill"] = "distill"
    teacher: TeacherConfig
    distill_weight: float = Field(1.0, ge=0, description="weight of the alignment loss (1 in the release)")
    weight_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: distill_weight -> distill_weight_end")
    distill_weight_end: float = Field(0.0, ge=0, description="final weight of the cosine schedule")
    align: Literal["tokens", "cls"] = Field("tokens", description="align every token (release) or the cls token only")


def student_grid(model: nn.Module, video: torch.Tensor) -> tuple[int, int, int]:
    """The student's token grid ``(T/k, H/p, W/p)`` for this ``video (B, 3, T, H, W)``."""
    (ph, pw), k = model.patch_size, model.kernel_size
    return video.shape[2] // k, video.shape[3] // ph, video.shape[4] // pw


def projection_head(dim: int, out_dim: int, eps: float = 1e-5) -> nn.Sequential:
    """RMSNorm(dim) + Linear(dim, out_dim): student tokens -> teacher width."""
    return nn.Sequential(RMSNorm(dim, eps=eps), nn.Linear(dim, out_dim))


class DistillObjective(SupervisedObjective):
    name = "distill"

    def __init__(self, cfg: DistillConfig, model: nn.Module, teacher: Teacher | None = None):
        super().__init__(cfg, model)
        teacher = teacher if teacher is not None else build_teacher(cfg.teacher)
        self.register_frozen("teacher", teacher)
        self.proj = projection_head(model.embed_dim, teacher.embed_dim)
        self.progress = 0.0
        logger.info(
            "distill: student D=%d -> teacher D=%d (%s), align=%s, weight=%s%s",
            model.embed_dim, teacher.embed_dim, type(teacher).__name__, cfg.align, cfg.distill_weight,
            f" cosine to {cfg.distill_weight_end}" if cfg.weight_schedule == "cosine" else "",
        )

    def set_progress(self, progress: float) -> None:
        self.progress = float(progress)

    def weight(self) -> float:
        """The alignment weight at the current training progress."""
        cfg = self.cfg
        if cfg.weight_schedule == "cosine":
            return cosine_weight(self.progress, cfg.distill_weight, cfg.distill_weight_end)
        return cfg.distill_weight

    def align_loss(self, tokens: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Student tokens ``(B, 1 + L, D)`` vs the teacher's final map of ``video``: ``2 - 2 cos``."""
        target = self.teacher(video, student_grid(self.model, video)).layers[-1]
        if self.cfg.align == "cls":
            tokens, target = tokens[:, :1], target[:, :1]
        return cosine_loss(self.proj(tokens), target)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        label = batch["label"]
        video, target = self.mix(batch["video"], label)
        tokens = self.model.forward_tokens(video)
        logits = self.model.forward_head(tokens[:, 0])
        ce = self.classification_loss(logits, label, target)
        align = self.align_loss(tokens, video)
        w = self.weight()
        loss = ce + w * align
        with torch.no_grad():
            acc = (logits.argmax(-1) == label).float().mean()
        return loss, {
            "loss": loss.detach(),
            "acc": acc,
            "ce_loss": ce.detach(),
            "align_loss": align.detach(),
            "distill_weight": torch.tensor(w),
        }
