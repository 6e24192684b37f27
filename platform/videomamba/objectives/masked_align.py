"""Masked modeling, Unmasked-Teacher style (``objective.name: masked_align``).

Per step: the frozen teacher sees the full clip and gives its token maps on the student's grid
(:mod:`videomamba.objectives.teachers`); a mask ``(B, T', H', W')`` of exactly the configured
ratio is drawn (:mod:`videomamba.objectives.masking`; ``attention`` uses the teacher's cls
attention); the student processes only cls + visible tokens (``forward_tokens(mask=...)``, scan
order as configured in the model); for each aligned layer a light decoder (LayerNorm + Linear to
the teacher width), applied after adding a fixed sinusoidal position table at the visible
positions, predicts the teacher's L2-normalised features at those positions (cls included unless
``align_cls: false``). Loss ``l2`` (``2 - 2 cos``), ``mse`` or ``smooth_l1``, averaged over the
aligned layers. ``align_layers: K`` aligns the student's last K block outputs (the last being the
final normed output) with the teacher's last K layers; ``K = 1`` (default) is the paper's choice.

The student's classifier is not trained here (frozen); the decoders are extra heads (``heads.pt``)
and never part of the exported ``model.pt``, which fine-tunes through ``model.pretrained``.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from videomamba.modules.tokens import take_tokens
from videomamba.objectives.base import Batch, Objective, ObjectiveConfigBase
from videomamba.objectives.distill import student_grid
from videomamba.objectives.losses import AlignLoss, align_loss
from videomamba.objectives.masking import MaskType, effective_ratio, flatten_mask, is_exact, make_mask
from videomamba.objectives.teachers import Teacher, TeacherConfig, build_teacher

logger = logging.getLogger(__name__)


class MaskConfig(ObjectiveConfigBase):
    type: MaskType = Field("clip_row", description="random | tube | clip_row | frame_row | attention (ViT teacher)")
    ratio: float = Field(0.8, gt=0, lt=1, description="fraction of patch tokens hidden, in (0, 1)")


class MaskedAlignConfig(ObjectiveConfigBase):
    name: Literal["masked_align"] = "masked_align"
    teacher: TeacherConfig
    mask: MaskConfig = Field(default_factory=MaskConfig)
    align_layers: int = Field(1, ge=1, description="align the last K layers (1: the final output only)")
    loss: AlignLoss = "l2"
    align_cls: bool = Field(True, description="also align the (always visible) cls token")


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """Fixed sin/cos position table ``(n_position, dim)`` (Transformer / UMT
    ``get_sinusoid_encoding_table``): even channels sin, odd channels cos of ``pos / 10000^(2i/dim)``."""
    pos = torch.arange(n_position, dtype=torch.float64)[:, None]
    i = torch.arange(dim, dtype=torch.float64)[None]
    angle = pos / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)
    table = torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()


def visible_index(mask: torch.Tensor) -> torch.Tensor:
    """Positions in ``(B, 1 + L)`` token maps kept by a ``(B, L)`` mask: cls (0) then the visible
    patch tokens (canonical order, +1): ``(B, 1 + L_vis)``."""
    b = mask.shape[0]
    vis = torch.nonzero(~mask)[:, 1].view(b, -1) + 1
    return torch.cat([vis.new_zeros(b, 1), vis], dim=1)


class MaskedAlignObjective(Objective):
    name = "masked_align"

    def __init__(self, cfg: MaskedAlignConfig, model: nn.Module, teacher: Teacher | None = None):
        super().__init__(cfg, model)
        teacher = teacher if teacher is not None else build_teacher(cfg.teacher)
        if cfg.mask.type == "attention" and not teacher.supports_attention:
            raise ValueError(
                f"objective.mask.type: 'attention' needs a teacher that exposes attention; "
                f"{type(teacher).__name__} does not (use objective.teacher.kind: vit)"
            )
        k = cfg.align_layers
        if k > min(model.depth, teacher.depth):
            raise ValueError(f"objective.align_layers={k} exceeds the depth of the student ({model.depth}) or teacher ({teacher.depth})")
        self.register_frozen("teacher", teacher)
        self.layers = list(range(-k, 0))  # the last K, -1 = final output
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(model.embed_dim), nn.Linear(model.embed_dim, teacher.embed_dim)) for _ in self.layers
        )
        self._tables: dict[tuple, torch.Tensor] = {}
        model.get_classifier().requires_grad_(False)  # unused in pretraining (keeps DDP static)
        grid, ratio = model.grid_size, cfg.mask.ratio
        if not is_exact(cfg.mask.type, grid, ratio):
            logger.warning(
                "mask %s ratio %.3f is not a whole number of units on grid %s: %.4f of the tokens are hidden",
                cfg.mask.type, ratio, grid, effective_ratio(cfg.mask.type, grid, ratio),
            )
        logger.info(
            "masked_align: %s mask %.2f on grid %s; student D=%d layers %s -> teacher %s D=%d; loss %s",
            cfg.mask.type, ratio, grid, model.embed_dim, self.layers, type(teacher).__name__, teacher.embed_dim, cfg.loss,
        )

    # -- pieces (each tested) -------------------------------------------------------------------
    def pos_table(self, n: int, device) -> torch.Tensor:
        """The fixed sinusoidal table ``(n, D_student)`` (cached per size and device; not state)."""
        key = (n, str(device))
        if key not in self._tables:
            self._tables[key] = sinusoid_table(n, self.model.embed_dim).to(device)
        return self._tables[key]

    def encode(self, video: torch.Tensor, mask: torch.Tensor | None) -> dict[int, torch.Tensor]:
        """The student on cls + visible tokens: aligned layer -> ``(B, 1 + L_vis, D)``."""
        if self.layers == [-1]:
            return {-1: self.model.forward_tokens(video, mask=mask)}
        _, states = self.model.forward_tokens(video, mask=mask, return_layers=self.layers)
        return states

    def decode(self, states: dict[int, torch.Tensor], index: torch.Tensor, num_tokens: int) -> dict[int, torch.Tensor]:
        """Add the position table (``num_tokens = 1 + L`` rows) at ``index (B, 1 + L_vis)``, then
        LayerNorm + Linear per aligned layer: ``(B, 1 + L_vis, D)`` -> ``(B, 1 + L_vis, D_t)``."""
        pos = self.pos_table(num_tokens, index.device)[index]
        return {i: dec(states[i] + pos.to(states[i].dtype)) for i, dec in zip(self.layers, self.decoders)}

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        video = batch["video"]
        grid = student_grid(self.model, video)
        teacher = self.teacher(video, grid, self.layers, attention=cfg.mask.type == "attention")
        mask = flatten_mask(
            make_mask(cfg.mask.type, video.shape[0], grid, cfg.mask.ratio, attention=teacher.attention, device=video.device)
        )
        index = visible_index(mask)
        preds = self.decode(self.encode(video, mask), index, 1 + mask.shape[1])
        start = 0 if cfg.align_cls else 1
        losses = [
            align_loss(cfg.loss, preds[i][:, start:], take_tokens(teacher.layers[i], index)[:, start:]) for i in self.layers
        ]
        loss = torch.stack(losses).mean()
        metrics = {"loss": loss.detach(), "align_loss": loss.detach(), "mask_ratio": mask.float().mean()}
        if len(losses) > 1:
            metrics.update({f"align_loss_last{-i}": l.detach() for i, l in zip(self.layers, losses)})
        return loss, metrics

