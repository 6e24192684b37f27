"""The few things training needs from ``videomamba.data``, in one place."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def class_names(cfg) -> list[str]:
    from videomamba import data

    return list(data.class_names(cfg))


def has_split(cfg, split: str | None) -> bool:
    if not split:
        return False
    return split in cfg.size


def build(cfg, split: str, *, seed: int = 0):
    from videomamba import data

    return data.build_dataset(cfg, split, seed=seed)


def num_rows(cfg, split: str, dataset=None) -> int:
    return int(dataset.count())


def skipped(split: str) -> int | None:
    from videomamba import data

    try:
        return int(data.skip_report(split).get("skipped", 0))
    except Exception:  # noqa: BLE001 - counts are best effort
        return None


def skip_report(split: str) -> dict[str, Any]:
    from videomamba import data

    return dict(data.skip_report(split))
