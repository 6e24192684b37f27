"""Training checkpoints: a directory with

- ``model.pt``: the model as a plain published-format state dict (``torch.load(weights_only=True)``
  and ``videomamba.load_checkpoint`` both read it); the EMA weights when EMA is evaluated,
- ``heads.pt``: extra trainable objective heads (only when the objective has any),
- ``train_state.pt``: optimizer, scheduler, grad scaler, EMA, raw model (when model.pt holds EMA
  weights), epoch, update count, RNG states (to resume exactly),
- ``meta.json``: resolved config, class names, model name + kwargs, metrics, MLflow run id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
HEADS_FILE = "heads.pt"
STATE_FILE = "train_state.pt"
META_FILE = "meta.json"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def save_checkpoint(
    directory: str | os.PathLike,
    *,
    model_state: dict[str, torch.Tensor],
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    heads_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint directory (see the module docstring)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(_cpu(model_state), directory / MODEL_FILE)
    if heads_state:
        torch.save(_cpu(heads_state), directory / HEADS_FILE)
    if train_state is not None:
        torch.save(train_state, directory / STATE_FILE)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return directory


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(directory) / META_FILE).read_text())


def load_train_state(directory: str | os.PathLike) -> dict[str, Any]:
    # our own file (optimizer/scheduler/RNG objects): not a weights-only payload
    return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=False)


@contextlib.contextmanager
def local_checkpoint_dir(checkpoint: str | os.PathLike | Any) -> Iterator[Path]:
    """A local directory holding ``checkpoint``: a local path (a checkpoint directory, its
    ``model.pt``, or a run directory: its best checkpoint; see ``checkpoint_path``), a URI
    (``s3://``, ``gs://``, ...) or a ``ray.train.Checkpoint``; remote ones are downloaded to a
    temporary directory. Raises ``videomamba.errors.UsageError`` for a local path that is none of these."""
    from ray.train import Checkpoint

    if not isinstance(checkpoint, Checkpoint):
        path = str(checkpoint)
        if "://" not in path or path.startswith("file://"):
            from videomamba.train.checkpoint_path import resolve_checkpoint

            yield Path(resolve_checkpoint(path, option="checkpoint").path)  # also model.pt / a run dir
            return
        checkpoint = Checkpoint(path)
    with checkpoint.as_directory() as d:
        yield Path(d)


def build_model_from_meta(meta: dict[str, Any]) -> torch.nn.Module:
    """The architecture a checkpoint was trained with (``meta["model"]``), weights not loaded."""
    import videomamba

    spec = meta["model"]
    return videomamba.create_model(spec["name"], **spec.get("kwargs", {}))


def load_trained_model(checkpoint: str | os.PathLike | Any, device: str | torch.device = "cpu"):
    """``(model in eval mode, meta)`` from a training checkpoint (dir, URI or Checkpoint)."""
    with local_checkpoint_dir(checkpoint) as d:
        meta = read_meta(d)
        model = build_model_from_meta(meta)
        state = torch.load(d / MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)  # same architecture: strict
    return model.to(device).eval(), meta
