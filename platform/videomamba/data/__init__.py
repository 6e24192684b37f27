"""Video data on Ray Data: manifests, sampling, decord decoding, clip transforms, skip accounting,
synthetic data. Public names are imported lazily (``import videomamba.data`` does not import Ray)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "config",
    "build_dataset": "pipeline",
    "skip_report": "skips",
    "reset_skips": "skips",
    "SkipReport": "skips",
    "read_manifest": "manifest",
    "load_classes": "manifest",
    "VideoRecord": "manifest",
    "ManifestError": "manifest",
    "DecodeError": "decode",
    "ClipTransform": "transforms",
    "make_synthetic_dataset": "synth",
    "SyntheticDataset": "synth",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"videomamba.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'videomamba.data' has no attribute {name!r}")
