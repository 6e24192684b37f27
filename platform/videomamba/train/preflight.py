"""Checks a training run makes before Ray starts, shared by ``videomamba train --dry-run`` and
``run_training``: everything a real run would hit in its first seconds, as :class:`ConfigError`
lines naming the config field.

- recipe placeholders (``/path/to/...``) still in the config;
- data files: the manifests and classes file exist and parse, the first video of each manifest
  is where the manifest says (local paths);
- the model: its ``ModelSpec`` built on the meta device (no memory, no weights), so an unknown
  model name or sizes that do not divide fail here (unknown keys, scan orders and backends are
  refused by the config schema already); ``model.pretrained`` exists;
- the objective's own checks (e.g. that the text tower can be found).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from videomamba.models.spec import ModelSpec
from videomamba.train.config import ConfigError, TrainConfig, flatten

if TYPE_CHECKING:
    from videomamba.data.splits import Splits

logger = logging.getLogger(__name__)

PLACEHOLDER = "/path/to/"


@dataclass
class PreflightReport:
    """What the checks found (printed by ``--dry-run``)."""

    class_names: list[str]
    model_spec: ModelSpec
    num_params: int
    videos: dict[str, int] = field(default_factory=dict)  # split -> manifest rows
    splits: Splits | None = field(default=None, repr=False)  # the data as read by the checks

    def lines(self) -> list[str]:
        out = [f"model {self.model_spec.describe()}: {self.num_params / 1e6:.2f}M parameters"]
        out.append(f"classes: {len(self.class_names)} ({', '.join(self.class_names[:5])}"
                   + (", ..." if len(self.class_names) > 5 else "") + ")")
        out += [f"{split}: {n} videos" for split, n in self.videos.items()]
        return out


def _fail(lines: list[str]) -> None:
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {line}" for line in lines))


def check_placeholders(cfg: TrainConfig) -> None:
    """Refuse the shipped recipes' ``/path/to/...`` values."""
    bad = [f"{key}: {value!r} is a placeholder of the recipe; set a real path (--set {key}=...)"
           for key, value in flatten(cfg).items() if isinstance(value, str) and PLACEHOLDER in value]
    _fail(bad)


def _local_missing(path: str | None) -> bool:
    return bool(path) and "://" not in path and not os.path.exists(path)


def check_data(cfg: TrainConfig) -> "Splits":
    """The run's data, read once and checked: the classes file and every configured manifest
    (train, val, test) exist and parse, the first video of each is where its manifest says (local
    paths), the class names resolve. Returns the :class:`~videomamba.data.splits.Splits` holding
    what was read (class names, records, counts, captions); raises ConfigError naming each
    missing/bad data file."""
    from videomamba.data.manifest import ManifestError
    from videomamba.data.splits import Splits

    data = cfg.data
    splits = Splits(data)
    problems = []
    if _local_missing(data.classes_file):
        problems.append(f"data.classes_file: {data.classes_file}: file not found")
    if not data.train_manifest:
        problems.append("data.train_manifest: required for training")
    for split in splits.configured:
        path = splits.manifest(split)
        if _local_missing(path):
            problems.append(f"data.{split}_manifest: {path}: file not found")
    _fail(problems)
    for split in splits.configured:
        path = splits.manifest(split)
        try:
            records = splits.records(split)  # manifests; for images also class folders
        except (ManifestError, ValueError, OSError) as err:
            problems.append(f"data.{split}_manifest: {err}")
            continue
        first = records[0].path
        if _local_missing(first):
            hint = "data.path_prefix" if data.path_prefix else "data.path_prefix (relative paths: the manifest's dir)"
            problems.append(f"data.{split}_manifest: {path}:{records[0].line}: video {first} not found (check {hint})")
    _fail(problems)
    try:
        splits.class_names()
    except (ValueError, OSError) as err:
        _fail([f"data: {err}"])
    return splits


def check_model(cfg: TrainConfig, spec: ModelSpec):
    """The model built on the meta device (shapes only); ConfigError naming the field otherwise."""
    import torch

    try:
        with torch.device("meta"):
            model = spec.build()
    except (ValueError, TypeError, RuntimeError) as err:
        field_name = "model.name" if "unknown model" in str(err) else "model.overrides"
        _fail([f"{field_name}: {err}"])
    if cfg.model.pretrained:
        from videomamba.checkpoints import pretrained_weights

        try:
            pretrained_weights(cfg.model.pretrained)
        except Exception as err:  # noqa: BLE001 - UsageError naming model.pretrained
            _fail([str(err) if str(err).startswith("model.pretrained") else f"model.pretrained: {err}"])
    return model


def preflight(cfg: TrainConfig) -> PreflightReport:
    """All checks above (no Ray, no weights); raises ConfigError listing what to fix."""
    from videomamba import objectives

    check_placeholders(cfg)
    splits = check_data(cfg)
    class_names = splits.class_names()
    spec = cfg.model.spec(cfg.data, len(class_names))
    model = check_model(cfg, spec)
    try:
        objectives.preflight(cfg.objective)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as err:
        _fail([f"objective: {err}"])
    videos = {split: splits.num_videos(split) for split in splits.configured}
    return PreflightReport(class_names, spec, sum(p.numel() for p in model.parameters()), videos, splits)
