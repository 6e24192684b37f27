"""The video-text dual encoder: VideoMamba as the video tower (its final cls feature) and a text
tower (:mod:`videomamba.modules.text_tower`), each linearly projected to a shared ``embed_dim``
and L2-normalised; similarities are ``scale * v @ t.T`` with a learnable temperature
(``scale = exp(logit_scale)``, clamped to ``max_scale`` as in CLIP).

State layout, shared with the ``contrastive`` objective: ``model.*`` is the VideoMamba
(published keys; a training checkpoint's ``model.pt``) and ``heads.*`` the
:class:`VideoTextHeads` (projections, temperature, optional matching head, and the text tower's
weights when it is fine-tuned; ``heads.pt``). A frozen text tower is not state: it is rebuilt from
its source (the config's ``objective.text.model``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from videomamba.modules.frozen import FrozenHolder
from videomamba.modules.text_tower import TextTower


class MatchingHead(nn.Module):
    """Video-text matching (binary) on a pair of embeddings ``(N, E)`` each: an MLP over
    ``[v, t, v * t, |v - t|]`` -> logits ``(N, 2)`` (index 1 = the pair matches)."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * dim, dim), nn.GELU(), nn.Linear(dim, 2))

    def forward(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([v, t, v * t, (v - t).abs()], dim=-1))


class VideoTextHeads(FrozenHolder):
    """Everything of the dual encoder but the video tower.

    ``video_dim``: the video tower's feature width D; ``text``: the text tower (kept frozen,
    outside the state, unless ``train_text``); ``temperature``: initial softmax temperature.
    """

    def __init__(
        self,
        video_dim: int,
        text: TextTower,
        *,
        embed_dim: int = 256,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        max_scale: float = 100.0,
        train_text: bool = False,
        matching_head: bool = False,
    ):
        super().__init__()
        self.train_text = train_text
        if train_text:
            self.text = text
        else:
            self.register_frozen("text", text)
        self.video_proj = nn.Linear(video_dim, embed_dim)
        self.text_proj = nn.Linear(text.embed_dim, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learn_temperature)
        self.max_log_scale = math.log(max_scale)
        self.matching = MatchingHead(embed_dim) if matching_head else None
        self.embed_dim = embed_dim

    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)`` clamped to ``max_scale`` (a scalar tensor)."""
        return self.logit_scale.clamp(max=self.max_log_scale).exp()

    def embed_video(self, features: torch.Tensor) -> torch.Tensor:
        """Video tower features ``(B, D)`` -> unit embeddings ``(B, E)`` (fp32)."""
        return F.normalize(self.video_proj(features).float(), dim=-1)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """``N`` strings -> unit embeddings ``(N, E)`` (fp32); no graph through a frozen tower."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_text):
            features = self.text(texts)
        return F.normalize(self.text_proj(features).float(), dim=-1)


class VideoTextModel(nn.Module):
    """``model`` (VideoMamba) + ``heads`` (:class:`VideoTextHeads`) for inference and retrieval."""

    def __init__(self, model: nn.Module, heads: VideoTextHeads):
        super().__init__()
        self.model = model
        self.heads = heads

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> unit embeddings ``(B, E)``."""
        return self.heads.embed_video(self.model.forward_features(video))

    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """``N`` strings -> unit embeddings ``(N, E)`` (encoded ``batch_size`` at a time)."""
        texts = list(texts)
        return torch.cat([self.heads.embed_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])

    def forward(self, video: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Scaled similarity logits ``(B, N)`` between ``B`` clips and ``N`` texts."""
        return self.heads.scale() * self.encode_video(video) @ self.encode_text(texts).T
