"""AdamW with weight-decay exclusions and layer-wise lr decay; timm cosine schedule with warm-up."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable

import torch
from torch import nn

logger = logging.getLogger(__name__)

# Published VideoMamba exclusions: position embeddings, cls token and the SSM's A_log / D (both
# directions). Every 1-D parameter (norm weights, biases) is excluded as well.
DEFAULT_NO_WEIGHT_DECAY = ("pos_embed", "cls_token", "temporal_pos_embedding", "A_log", "D", "A_b_log", "D_b")

_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_EMBED_NAMES = ("patch_embed", "cls_token", "pos_embed", "temporal_pos_embedding")


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def layer_id(name: str, depth: int) -> int:
    """Layer id for lr decay: embeddings 0, ``layers.{i}`` i + 1, everything else (final norm,
    head, objective heads) ``depth + 1``."""
    match = _LAYER_RE.search(name)
    if match:
        return int(match.group(1)) + 1
    if name.split(".", 1)[0] in _EMBED_NAMES:
        return 0
    return depth + 1


def is_no_decay(name: str, param: torch.Tensor, patterns: Iterable[str]) -> bool:
    """True for 1-D parameters and names whose last component equals, or whose full name
    fnmatch-es, one of ``patterns``."""
    if param.ndim <= 1:
        return True
    leaf = name.rsplit(".", 1)[-1]
    return any(leaf == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def param_groups(
    module: nn.Module,
    weight_decay: float,
    *,
    no_weight_decay: Iterable[str] = DEFAULT_NO_WEIGHT_DECAY,
    layer_decay: float = 1.0,
    model_prefix: str = "",
) -> list[dict]:
    """Optimizer param groups keyed by (layer id, decay/no-decay), each with ``lr_scale`` =
    ``layer_decay ** (depth + 1 - layer_id)`` (timm schedulers multiply the lr by it).

    ``model_prefix`` (e.g. ``"model."`` for an objective) is stripped before layer ids are computed;
    parameters outside it (objective heads) get the top layer's scale.
    """
    patterns = tuple(no_weight_decay)
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    layer_ids = [int(m.group(1)) for n, _ in named if (m := _LAYER_RE.search(_strip(n, model_prefix)))]
    depth = max(layer_ids) + 1 if layer_ids else 0
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named:
        inner = _strip(name, model_prefix)
        lid = layer_id(inner, depth) if (not model_prefix or name.startswith(model_prefix)) else depth + 1
        no_decay = is_no_decay(inner, param, patterns)
        group = groups.setdefault(
            (lid, no_decay),
            {
                "params": [],
                "param_names": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": layer_decay ** (depth + 1 - lid),
                "layer_id": lid,
            },
        )
        group["params"].append(param)
        group["param_names"].append(name)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(module: nn.Module, cfg, *, lr: float, model_prefix: str = "") -> torch.optim.Optimizer:
    """AdamW over :func:`param_groups` (``cfg`` is the ``optim`` config section)."""
    groups = param_groups(
        module,
        cfg.weight_decay,
        no_weight_decay=cfg.no_weight_decay,
        layer_decay=cfg.layer_decay,
        model_prefix=model_prefix,
    )
    n_decay = sum(p.numel() for g in groups if g["weight_decay"] > 0 for p in g["params"])
    n_all = sum(p.numel() for g in groups for p in g["params"])
    logger.debug("optimizer: %d groups, %d/%d params with weight decay", len(groups), n_decay, n_all)
    fused = {"fused": True} if all(p.is_cuda for g in groups for p in g["params"]) and n_all else {}
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas), eps=cfg.eps, **fused)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, *, steps_per_epoch: int, epochs: int):
    """timm cosine schedule stepped per optimizer update (``scheduler.step_update(n)``);
    ``cfg`` is the ``schedule`` config section."""
    from timm.scheduler import CosineLRScheduler

    total = max(1, epochs * steps_per_epoch)
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), total - 1)
    return CosineLRScheduler(
        optimizer,
        t_initial=total - warmup if cfg.warmup_prefix else total,
        lr_min=cfg.min_lr,
        warmup_t=warmup,
        warmup_lr_init=cfg.warmup_lr,
        warmup_prefix=cfg.warmup_prefix,
        t_in_epochs=False,
    )
