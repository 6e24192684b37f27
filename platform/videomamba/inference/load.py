"""Trained checkpoints loaded for inference beyond the classifier (which is
``videomamba.checkpoints.load_trained_model``): the video-text model of a ``contrastive`` run."""

from __future__ import annotations

import os

import torch

from videomamba.models.video_text import VideoTextModel
from videomamba.modules.text_tower import load_text_tower
from videomamba.objectives.contrastive import ContrastiveConfig, build_heads
from videomamba.checkpoints import load_heads, load_trained_model


def load_video_text_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(VideoTextModel in eval mode, meta)`` from a ``contrastive`` training checkpoint: the
    video tower from ``model.pt``, the heads from ``heads.pt``, a frozen text tower rebuilt from
    the config's ``objective.text``. Raises ``ValueError`` for a checkpoint of another objective."""
    model, meta = load_trained_model(checkpoint)
    objective = meta["config"].get("objective", {})
    if objective.get("name") != "contrastive":
        raise ValueError(f"{checkpoint}: trained with objective {objective.get('name')!r}, not 'contrastive' (no text tower)")
    cfg = ContrastiveConfig.model_validate(objective)
    text = load_text_tower(cfg.text.model, pooling=cfg.text.pooling, max_length=cfg.text.max_length)
    heads = build_heads(cfg, model.embed_dim, text)
    state = load_heads(checkpoint)
    heads.load_state_dict({k.removeprefix("heads."): v for k, v in state.items() if k.startswith("heads.")})
    return VideoTextModel(model, heads).to(device).eval(), meta
