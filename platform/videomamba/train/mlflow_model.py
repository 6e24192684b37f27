"""The trained model as an MLflow ``pyfunc`` model that is code plus weights, no pickle.

The logged model directory holds ``MLmodel`` (YAML: flavor, signature, metadata), the environment
files and ``data/videomamba/`` with ``model.safetensors`` (the published-format state dict) and
``meta.json`` (the training checkpoint's metadata: model name + kwargs, class names, data config).
Loading (``mlflow.pyfunc.load_model(uri)``) imports this module from the installed
``videomamba`` package (the flavor's ``loader_module``), rebuilds the architecture with
``videomamba.create_model`` and loads the weights from safetensors: nothing in the artifact store
is unpickled or executed.

``videomamba predict`` / ``evaluate`` accept the model's ``models:/NAME/VERSION`` and
``runs:/RUN_ID/model`` URIs (``videomamba.checkpoints.downloaded_model``, which reads the
directory this module writes).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videomamba.checkpoints import MLFLOW_DATA_DIR, MLFLOW_WEIGHTS_FILE, load_model_dir

logger = logging.getLogger(__name__)

LOADER_MODULE = "videomamba.train.mlflow_model"
DATA_DIR = MLFLOW_DATA_DIR  # data/<DATA_DIR>/ inside the MLflow model
WEIGHTS_FILE = MLFLOW_WEIGHTS_FILE
META_FILE = "meta.json"


def write_model_data(checkpoint_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """``out_dir/model.safetensors`` + ``out_dir/meta.json`` from a training checkpoint directory."""
    from safetensors.torch import save_file

    from videomamba.checkpoints import load_model_state

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state, meta = load_model_state(checkpoint_dir)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(out_dir / WEIGHTS_FILE))
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return out_dir


def signature_for(model: torch.nn.Module):
    """``video``: float32 ``(-1, 3, T, H, W)`` -> ``logits``: float32 ``(-1, num_classes)``."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    t, size = model.num_frames, model.img_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3, t, *size), "video")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, model.num_classes), "logits")]),
    )


def log_pyfunc_model(checkpoint_dir: str | os.PathLike, *, registered_name: str | None = None, name: str = "model"):
    """Log the checkpoint's model into the active MLflow run as a pyfunc model (see the module
    docstring), registered as ``registered_name`` when given. Returns MLflow's ``ModelInfo``."""
    import mlflow

    from videomamba.checkpoints import load_trained_model

    model, meta = load_trained_model(checkpoint_dir)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_model_data(checkpoint_dir, Path(tmp) / DATA_DIR)
        return mlflow.pyfunc.log_model(
            name=name,
            loader_module=LOADER_MODULE,
            data_path=str(data),
            signature=signature_for(model),
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "safetensors", "videomamba-platform"],
            metadata={"class_names": meta.get("class_names"), "videomamba_model": meta.get("model")},
            registered_model_name=registered_name,
        )


class VideoMambaPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict(video)`` -> float32 logits ``(B, num_classes)``
    for float32 clips ``(B, 3, T, H, W)`` (a NumPy array, a torch tensor or ``{"video": array}``),
    normalised as in training. ``params={"batch_size": N}`` splits large inputs."""

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any]):
        self.model, self.meta = model, meta
        self.class_names = meta.get("class_names")

    def predict(self, model_input, params: dict[str, Any] | None = None) -> np.ndarray:
        if isinstance(model_input, dict):
            model_input = model_input["video"]
        video = torch.as_tensor(np.asarray(model_input, dtype=np.float32) if not isinstance(model_input, torch.Tensor) else model_input)
        if video.dim() != 5:
            raise ValueError(f"video: expected float32 (B, 3, T, H, W), got shape {tuple(video.shape)}")
        batch = int((params or {}).get("batch_size") or len(video) or 1)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = [self.model(v.to(device)).float().cpu() for v in video.split(batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.model.num_classes), np.float32)


def _load_pyfunc(data_path: str) -> VideoMambaPyfunc:
    """MLflow's loader-module entry point (``MLmodel``: ``loader_module``): ``data_path`` is the
    model's ``data/videomamba`` directory."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return VideoMambaPyfunc(*load_model_dir(data_path, device))
