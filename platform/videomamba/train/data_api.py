"""The few things training needs from ``videomamba.data``, in one place."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def has_split(cfg, split: str | None) -> bool:
    """Whether ``split`` (train/val/test) has a manifest configured."""
    return bool(split) and bool(getattr(cfg, f"{split}_manifest", None))


def _records(cfg, split: str, manifest: str | None = None):
    from videomamba.data.manifest import read_manifest

    path = manifest or cfg.manifest_for(split)
    return read_manifest(path, classes_file=cfg.classes_file, path_prefix=cfg.path_prefix, fmt=cfg.manifest_format)


def records(cfg, split: str, manifest: str | None = None):
    """The split's manifest records (``VideoRecord``: path, label, captions, ...)."""
    return _records(cfg, split, manifest)


class TorchCollate:
    """``collate_fn`` for ``iter_torch_batches`` of datasets with string columns: numeric columns
    become tensors on ``device``, ``caption`` stays a list of ``B`` strings."""

    def __init__(self, device=None):
        self.device = device

    def __call__(self, batch: dict) -> dict:
        import torch

        out = {}
        for name, values in batch.items():
            if name == "caption":
                out[name] = [str(v) for v in values]
            else:
                tensor = torch.as_tensor(values)
                out[name] = tensor.to(self.device, non_blocking=True) if self.device is not None else tensor
        return out


def class_names(cfg) -> list[str]:
    """``classes_file`` names; else ``0..num_classes-1``; else ``0..max label`` of the train manifest."""
    from videomamba.data.manifest import load_classes

    if cfg.classes_file:
        names = list(load_classes(cfg.classes_file))
        if cfg.num_classes is not None and cfg.num_classes != len(names):
            raise ValueError(f"data.num_classes={cfg.num_classes} but {cfg.classes_file} lists {len(names)} classes")
        return names
    if cfg.num_classes:
        return [str(i) for i in range(cfg.num_classes)]
    labels = [r.label for r in _records(cfg, "train")]
    return [str(i) for i in range(max(labels) + 1)]


def num_videos(cfg, split: str, manifest: str | None = None) -> int:
    """Videos in the split's manifest (without decoding anything)."""
    return len(_records(cfg, split, manifest))


def num_train_rows(cfg) -> int:
    """Rows (clips) one training epoch yields: videos x ``data.clips_per_video``; the loop's steps
    per epoch and the schedules are derived from it."""
    return num_videos(cfg, "train") * cfg.clips_per_video


def build(cfg, split: str, *, seed: int = 0, epoch: int = 0, scope: str = "default", manifest: str | None = None):
    from videomamba.data.pipeline import build_dataset

    return build_dataset(cfg, split, seed=seed, epoch=epoch, scope=scope, manifest=manifest)


def skip_metrics(split: str, scope: str = "default") -> dict[str, float]:
    """``data/<split>/skipped`` etc. summed over the epochs seen (empty if unavailable)."""
    from videomamba.data.skips import skip_report

    try:
        return skip_report(split, scope=scope).as_metrics(f"data/{split}")
    except Exception as err:  # noqa: BLE001 - counts are best effort, never fail training for them
        logger.debug("no skip report for %s: %s", split, err)
        return {}


def skip_summary(split: str, scope: str = "default") -> dict[str, Any]:
    from videomamba.data.skips import skip_report

    rep = skip_report(split, scope=scope)
    return {"skipped": rep.skipped, "padded": rep.padded, "by_reason": rep.by_reason, "examples": rep.examples}
