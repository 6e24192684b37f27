"""Loading published (or own) VideoMamba checkpoints into a model, adapting what can be
adapted: wrapped state dicts, 2D (image) patch embeddings, other resolutions / frame counts,
another head. ``load_checkpoint`` returns a :class:`LoadReport`; a checkpoint of a different
architecture raises :class:`CheckpointMismatchError` summarising which keys differ. (Training
checkpoint directories, which hold such a state dict as ``model.pt``, are :mod:`videomamba.checkpoints`.)"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from videomamba.modules.pos_embed import resize_spatial_pos_embed, resize_temporal_pos_embed

__all__ = [
    "load_checkpoint", "LoadReport", "CheckpointMismatchError", "unwrap_state_dict",
    "inflate_patch_embed", "resize_spatial_pos_embed", "resize_temporal_pos_embed", "filter_head",
]

logger = logging.getLogger(__name__)

PATCH_KEY, POS_KEY, TPOS_KEY = "patch_embed.proj.weight", "pos_embed", "temporal_pos_embedding"
HEAD_KEYS = ("head.weight", "head.bias")
_WRAPPERS = ("model", "module", "state_dict", "model_ema")
_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile: per key, in any order and number
_WHOLE_PREFIXES = ("model.", "model_ema.")  # a wrapping module: stripped when every key has it


class CheckpointMismatchError(ValueError):
    """The checkpoint is not of this model's architecture (other family, depth or width)."""


@dataclass
class LoadReport:
    """What ``load_checkpoint`` did. ``missing``: model keys left at their init;
    ``unexpected``: checkpoint keys not used; ``dropped``: checkpoint keys removed on purpose
    (a head of another shape); ``adapted``: one line per converted tensor."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    loaded: int = 0
    source: str = "<state_dict>"

    @property
    def complete(self) -> bool:
        """Every model tensor came from the checkpoint (nothing missing or dropped)."""
        return not self.missing and not self.dropped

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors from {self.source}"]
        lines += [f"  adapted: {a}" for a in self.adapted]
        for name in ("dropped", "missing", "unexpected"):
            keys = getattr(self, name)
            if keys:
                lines.append(f"  {name} ({len(keys)}): {summarize_keys(keys)}")
        return "\n".join(lines)


def _ranges(idx: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    out, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}-{a}")
            start = b
    return ",".join(out)


def summarize_keys(keys, limit: int = 8) -> str:
    """Readable summary of many keys: block keys grouped by the blocks they occur in
    (``layers.[24-31].* (17 tensors: norm.weight, ...)``), other numbered keys by pattern
    (``blocks.*.attn.qkv.weight (x12)``)."""
    per_suffix: dict[str, set[int]] = defaultdict(set)
    other = Counter()
    for k in keys:
        m = re.match(r"layers\.(\d+)\.(.+)", k)
        if m:
            per_suffix[m.group(2)].add(int(m.group(1)))
        else:
            other[re.sub(r"(?<=\.)\d+(?=\.)|^\d+(?=\.)", "*", k)] += 1
    by_blocks: dict[frozenset, list[str]] = defaultdict(list)
    for suffix, idx in per_suffix.items():
        by_blocks[frozenset(idx)].append(suffix)
    parts = []
    for idx, suffixes in by_blocks.items():
        where = f"layers.[{_ranges(sorted(idx))}]"
        if len(suffixes) == 1:
            parts.append(f"{where}.{suffixes[0]}")
        else:
            shown = ", ".join(suffixes[:3]) + (", ..." if len(suffixes) > 3 else "")
            parts.append(f"{where}.* ({len(suffixes)} tensors: {shown})")
    parts += [f"{p} (x{c})" if c > 1 else p for p, c in other.items()]
    more = f", ... ({len(parts) - limit} more)" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


def _strip_prefix(key: str) -> str:
    while True:
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is None:
            return key
        key = key[len(prefix):]


def unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """Checkpoint object -> flat state dict: unwraps ``{"model": ...}`` / ``{"module": ...}`` /
    ``{"state_dict": ...}``, strips ``module.`` (DDP) and ``_orig_mod.`` (torch.compile)
    prefixes in any order and number (``compile(DDP(m))``: ``_orig_mod.module.``), then a
    ``model.`` / ``model_ema.`` prefix that every key carries (a wrapping module such as a
    training objective), drops non-tensor entries."""
    while isinstance(obj, dict):
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None or any(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        obj = inner
    if not isinstance(obj, dict):
        raise CheckpointMismatchError(f"checkpoint is a {type(obj).__name__}, not a state dict")
    out = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    while True:
        out = {_strip_prefix(k): v for k, v in out.items()}
        whole = next((p for p in _WHOLE_PREFIXES if out and all(k.startswith(p) for k in out)), None)
        if whole is None:
            return out
        out = {k[len(whole):]: v for k, v in out.items()}


def inflate_patch_embed(weight: torch.Tensor, time_kernel: int, mode: str = "center") -> torch.Tensor:
    """2D patch embedding (D, C, p, p) (or 3D with time kernel 1) -> (D, C, k, p, p).
    ``center``: the 2D kernel at time index k // 2, zeros elsewhere (the clip's middle frame
    reproduces the image model); ``average``: the 2D kernel / k at every time index."""
    if weight.dim() == 5:
        if weight.shape[2] != 1:
            raise CheckpointMismatchError(f"cannot inflate a 3D patch embedding with time kernel {weight.shape[2]}")
        weight = weight[:, :, 0]
    if mode == "center":
        out = weight.new_zeros(weight.shape[0], weight.shape[1], time_kernel, *weight.shape[2:])
        out[:, :, time_kernel // 2] = weight
        return out
    if mode == "average":
        return weight.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel
    raise ValueError(f"inflate must be 'center' or 'average', got {mode!r}")


def filter_head(state_dict: dict, model: nn.Module) -> list[str]:
    """Remove (in place) head tensors whose shape differs from the model's; returns their keys."""
    own = model.state_dict()
    dropped = [k for k in HEAD_KEYS if k in state_dict and k in own and state_dict[k].shape != own[k].shape]
    for k in dropped:
        logger.warning("dropping %s %s from the checkpoint: the model's is %s (new head, initialised)",
                       k, tuple(state_dict[k].shape), tuple(own[k].shape))
        del state_dict[k]
    return dropped


def _layer_count(keys) -> int:
    idx = {int(m.group(1)) for k in keys if (m := re.match(r"layers\.(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def _check_architecture(sd: dict, own: dict, adaptable: set[str]) -> None:
    ck_layers, own_layers = _layer_count(sd), _layer_count(own)
    problems = []
    if ck_layers == 0:
        problems.append("no VideoMamba blocks (layers.*.mixer.*) in the checkpoint: another architecture "
                        f"(its keys: {summarize_keys(sd, 6)})")
    elif ck_layers != own_layers:
        problems.append(f"depth differs: checkpoint has {ck_layers} blocks, model has {own_layers}")
    shape_diff = [k for k in sd if k in own and k not in adaptable and sd[k].shape != own[k].shape]
    if shape_diff:
        examples = ", ".join(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                             for k in shape_diff[:3])
        problems.append(f"{len(shape_diff)} tensors differ in shape ({summarize_keys(shape_diff, 4)}), e.g. {examples}")
    if problems:
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        detail = []
        if missing:
            detail.append(f"missing from the checkpoint ({len(missing)}): {summarize_keys(missing, 6)}")
        if unexpected:
            detail.append(f"not in the model ({len(unexpected)}): {summarize_keys(unexpected, 6)}")
        raise CheckpointMismatchError("checkpoint does not match this model's architecture: "
                                      + "; ".join(problems + detail))


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


def checkpoint_grid(meta: Any, patch_size) -> tuple[int, int] | None:
    """The patch grid ``(rows, cols)`` a checkpoint was trained at, from its metadata: a dict with
    ``img_size`` (``[H, W]`` or an int) directly, under ``kwargs``/``args``/``config``, or under
    ``model.kwargs`` (a videomamba training checkpoint's ``meta.json``); ``img_size / patch_size``.
    None when the metadata does not say."""
    if not isinstance(meta, dict):
        return None
    for node in (meta, meta.get("kwargs"), meta.get("args"), meta.get("config"),
                 (meta.get("model") or {}).get("kwargs") if isinstance(meta.get("model"), dict) else None):
        if isinstance(node, dict) and node.get("img_size") is not None:
            h, w = _pair(node["img_size"])
            ph, pw = _pair(node.get("patch_size") or patch_size)
            return h // ph, w // pw
    return None


def _read_source(source: str) -> tuple[Any, dict | None, str]:
    """(loaded object, metadata next to it, path read): a training checkpoint directory gives its
    ``model.pt`` and ``meta.json``; a file gives itself and a sibling ``meta.json`` if any."""
    import json

    path = source
    if os.path.isdir(source):
        path = os.path.join(source, "model.pt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{source}: a directory without model.pt (not a training checkpoint)")
    meta_path = os.path.join(os.path.dirname(path), "meta.json")
    meta = None
    if os.path.exists(meta_path):
        try:
            meta = json.loads(open(meta_path).read())
        except ValueError:
            logger.warning("%s: not valid JSON; ignored", meta_path)
    return torch.load(path, map_location="cpu", weights_only=True), meta, path


def _old_grid(pos_embed: torch.Tensor, pos_grid) -> tuple[int, int]:
    n = pos_embed.shape[1] - 1  # cls first
    if pos_grid is not None:
        rows, cols = _pair(pos_grid)
        if rows * cols != n:
            raise CheckpointMismatchError(
                f"{POS_KEY}: pos_grid {rows}x{cols} = {rows * cols} positions, but the checkpoint has {n}")
        return rows, cols
    side = int(round(n ** 0.5))
    if side * side != n:
        raise CheckpointMismatchError(
            f"{POS_KEY}: the checkpoint's {n} patch positions are not a square grid and its metadata does not "
            "give the size it was trained at; pass pos_grid=(rows, cols) to load_checkpoint (img_size / patch_size, "
            "e.g. 32x48 px at patch 16 -> (2, 3)), or model.pretrained_grid in a training config")
    return side, side


def load_checkpoint(model: nn.Module, path_or_state_dict, *, inflate: str = "center",
                    strict: bool = False, pos_grid: tuple[int, int] | None = None) -> LoadReport:
    """Load a checkpoint (path or state dict, possibly wrapped) into a VideoMamba model.

    Adapts: a 2D patch embedding inflated to the model's tubelet (``inflate``: ``"center"`` or
    ``"average"``); the spatial position embedding (bicubic over the grid, cls kept) and the
    temporal one (linear) resized to the model's grid; a head of another shape dropped (the
    model's freshly initialised head is kept). ``strict=True`` additionally fails on missing
    or unexpected keys (a dropped head is allowed). Files are read with
    ``torch.load(weights_only=True, map_location="cpu")``; a training checkpoint directory loads
    its ``model.pt``.

    ``pos_grid``: the patch grid ``(rows, cols)`` the checkpoint's spatial position embedding was
    trained at (``img_size / patch_size``), needed to resize a non-square one; by default it is
    taken from the checkpoint's metadata (a ``meta.json`` next to the file, or ``img_size`` entries
    in the checkpoint dict, see :func:`checkpoint_grid`), else a square grid is assumed.
    Raises CheckpointMismatchError for another architecture, listing the keys that differ, and for
    a non-square position embedding whose grid nothing gives.
    """
    if inflate not in ("center", "average"):
        raise ValueError(f"inflate must be 'center' or 'average', got {inflate!r}")
    source = "<state_dict>"
    meta = path_or_state_dict if isinstance(path_or_state_dict, dict) else None
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        path_or_state_dict, meta, source = _read_source(os.fspath(path_or_state_dict))
    if pos_grid is None:
        pos_grid = checkpoint_grid(meta, model.patch_embed.patch_size) or checkpoint_grid(path_or_state_dict, model.patch_embed.patch_size)
    sd = dict(unwrap_state_dict(path_or_state_dict))
    own = model.state_dict()
    _check_architecture(sd, own, adaptable={PATCH_KEY, POS_KEY, TPOS_KEY, *HEAD_KEYS})
    report = LoadReport(source=source)

    if PATCH_KEY in sd and sd[PATCH_KEY].shape != own[PATCH_KEY].shape:
        w, target = sd[PATCH_KEY], own[PATCH_KEY].shape
        if w.shape[:2] + w.shape[-2:] != target[:2] + target[-2:] or (w.dim() == 5 and w.shape[2] != 1):
            raise CheckpointMismatchError(
                f"{PATCH_KEY}: checkpoint {tuple(w.shape)} cannot be adapted to the model's {tuple(target)}")
        sd[PATCH_KEY] = inflate_patch_embed(w, target[2], inflate)
        report.adapted.append(f"{PATCH_KEY}: inflated {tuple(w.shape)} -> {tuple(target)} ({inflate})")
    if POS_KEY in sd and sd[POS_KEY].shape != own[POS_KEY].shape:
        old = sd[POS_KEY]
        if old.shape[-1] != own[POS_KEY].shape[-1]:
            raise CheckpointMismatchError(f"{POS_KEY}: width {old.shape[-1]} vs model {own[POS_KEY].shape[-1]}")
        sd[POS_KEY] = resize_spatial_pos_embed(old, model.patch_embed.grid_size, _old_grid(old, pos_grid))
        report.adapted.append(f"{POS_KEY}: bicubic {tuple(old.shape)} -> {tuple(own[POS_KEY].shape)} (cls kept)")
    if TPOS_KEY in sd and sd[TPOS_KEY].shape != own[TPOS_KEY].shape:
        old = sd[TPOS_KEY]
        sd[TPOS_KEY] = resize_temporal_pos_embed(old, own[TPOS_KEY].shape[1])
        report.adapted.append(f"{TPOS_KEY}: linear {tuple(old.shape)} -> {tuple(own[TPOS_KEY].shape)}")
    report.dropped = filter_head(sd, model)
    for line in report.adapted:
        logger.info("checkpoint %s", line)

    result = model.load_state_dict(sd, strict=False)
    report.missing = [k for k in result.missing_keys if k not in report.dropped]
    report.unexpected = list(result.unexpected_keys)
    report.loaded = len(sd) - len(report.unexpected)
    if report.missing or report.unexpected:
        logger.info("checkpoint: missing %s; unexpected %s", summarize_keys(report.missing) or "none",
                    summarize_keys(report.unexpected) or "none")
    if strict and (report.missing or report.unexpected):
        raise CheckpointMismatchError(f"strict loading failed:\n{report}")
    return report
