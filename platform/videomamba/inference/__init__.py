"""Inference with trained checkpoints: multi-view evaluation on Ray Data (``evaluate``, over the
actor pool of ``batch``), zero-shot video-text retrieval (``retrieval``), in-process prediction
on video files (``predict``). Public names are imported lazily (``import videomamba.inference``
does not import Ray or torch)."""

from __future__ import annotations

from videomamba._lazy import lazy_getattr

_EXPORTS = {
    "evaluate_checkpoint": "evaluate",
    "ClassListMismatch": "evaluate",
    "NoClipsError": "batch",
    "predict_dataset": "batch",
    "evaluate_retrieval": "retrieval",
    "retrieve": "retrieval",
    "Hit": "retrieval",
    "load_video_text_model": "load",
    "predict_videos": "predict",
    "Prediction": "predict",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
