"""Video data on Ray Data: manifests, sampling, decord decoding, clip transforms, skip accounting,
synthetic data. Public names are imported lazily (``import videomamba.data`` does not import Ray)."""

from __future__ import annotations

from videomamba._lazy import lazy_getattr

_EXPORTS = {
    "DataConfig": "config",
    "build_dataset": "pipeline",
    "skip_report": "skips",
    "SkipReport": "skips",
    "SkipLimitError": "skips",
    "skip_mark": "skips",
    "read_manifest": "manifest",
    "load_classes": "manifest",
    "VideoRecord": "manifest",
    "ManifestError": "manifest",
    "DecodeError": "decode",
    "ClipTransform": "transforms",
    "make_synthetic_dataset": "synth",
    "build_image_dataset": "images",
    "load_image": "images",
    "make_synthetic_images": "synth_images",
    "SyntheticDataset": "synth",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
