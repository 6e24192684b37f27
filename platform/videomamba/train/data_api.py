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

    if cfg.kind == "image":
        from videomamba.data.images import read_records

        return read_records(cfg, split, manifest)
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

    names = None
    if cfg.kind == "image":  # classes_file, else the class folders of a class-per-folder train split
        from videomamba.data.images import class_names as image_class_names

        names = image_class_names(cfg)
    elif cfg.classes_file:
        names = list(load_classes(cfg.classes_file))
    if names is not None:
        if cfg.num_classes is not None and cfg.num_classes != len(names):
            raise ValueError(f"data.num_classes={cfg.num_classes} but {cfg.classes_file or cfg.train_manifest} "
                             f"lists {len(names)} classes")
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


def build(cfg, split: str, *, seed: int = 0, epoch: int = 0, scope: str = "default", manifest: str | None = None,
          epochs: int = 1):
    if cfg.kind == "image":
        from videomamba.data.images import build_image_dataset as build_dataset
    else:
        from videomamba.data.pipeline import build_dataset

    return build_dataset(cfg, split, seed=seed, epoch=epoch, scope=scope, manifest=manifest, epochs=epochs)


def ingest_config(datasets: dict[str, Any]):
    """``ray.train.DataConfig`` that keeps each dataset's ordered delivery (``data.deterministic``):
    Ray Train would otherwise apply its default ingest options (unordered) to every shard."""
    import ray.train

    from videomamba.data.pipeline import ingest_options

    return ray.train.DataConfig(execution_options={name: ingest_options(ds) for name, ds in datasets.items()})


def skip_metrics(split: str, scope: str = "default") -> dict[str, float]:
    """``data/<split>/skipped`` etc. summed over the epochs seen (empty if unavailable)."""
    from videomamba.data.skips import skip_report

    try:
        return skip_report(split, scope=scope).as_metrics(f"data/{split}")
    except Exception as err:  # noqa: BLE001 - counts are best effort, never fail training for them
        logger.debug("no skip report for %s: %s", split, err)
        return {}


#: an epoch whose training steps waited for data longer than this fraction logs a hint
DATA_WAIT_WARN = 0.10


def data_wait_hint(
    wait_frac: float,
    *,
    epoch: int,
    epoch_s: float,
    clips_per_s: float,
    decode_cpus: float | None = None,
    prepared: bool | None = None,
    clips_per_video: int = 1,
    threshold: float = DATA_WAIT_WARN,
) -> str | None:
    """One line naming the cause and the fixes when an epoch waited for data more than
    ``threshold`` of its time (None otherwise). ``prepared``: whether the training manifest was
    written by ``videomamba data prepare``; ``decode_cpus``: CPUs left to Ray Data decoding."""
    if not wait_frac > threshold:
        return None
    cpus = f" on ~{decode_cpus:g} CPUs" if decode_cpus else ""
    fixes = []
    if not prepared:
        fixes.append("prepare the dataset (`videomamba data prepare TRAIN_MANIFEST OUT_DIR`: 256 px short side, "
                     "a keyframe every 8 frames; about 5x the clips/s per core from 720p sources)")
    fixes.append("give decoding more CPUs or nodes (decode nodes in cluster.yaml, data.decode_resources; "
                 "scaling.cpus_per_worker takes CPUs from decoding)")
    if clips_per_video == 1:
        fixes.append("set data.clips_per_video=2 (two training clips per decoded video)")
    return (f"epoch {epoch}: training waited for data {wait_frac:.0%} of the epoch after its first batch "
            f"({wait_frac * epoch_s:.1f} of "
            f"{epoch_s:.1f} s, {clips_per_s:.1f} clips/s): Ray Data decoding{cpus} is slower than the model. "
            f"Fix: " + "; or ".join(fixes) + ".")


def is_prepared(manifest: str | None) -> bool:
    """Whether ``manifest`` was written by ``videomamba data prepare`` (its report lies beside it)."""
    import os

    from videomamba.data import storage

    if not manifest or storage.is_uri(manifest):
        return False
    return os.path.exists(os.path.join(os.path.dirname(os.path.abspath(manifest)), "prepare_report.json"))
