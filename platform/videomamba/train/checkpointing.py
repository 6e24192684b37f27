"""Training checkpoints: a directory with

- ``model.pt``: the model as a plain published-format state dict (``torch.load(weights_only=True)``
  and ``videomamba.load_checkpoint`` both read it); the EMA weights when EMA is evaluated,
- ``heads.pt``: extra trainable objective heads (only when the objective has any),
- ``train_state.safetensors`` + ``train_state.json``: optimizer, scheduler, grad scaler, EMA, raw
  model (when model.pt holds EMA weights), epoch, update count, the RNG seeding scheme.
  Every tensor is in the safetensors file; the JSON holds the structure and the plain values
  (numbers, strings, lists; tuples and non-string dict keys tagged), tensors by reference. Reading
  it parses data only: nothing in a checkpoint can run code (see :func:`load_train_state`).
- ``meta.json``: resolved config, class names, model name + kwargs, metrics, MLflow run id.

Checkpoints of format 1 kept the training state as a pickle (``train_state.pt``); they are refused
with :class:`UnsafeCheckpointError` and converted once with :func:`upgrade_train_state`
(``videomamba checkpoint upgrade DIR``), which reads the pickle with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
MODEL_FILE = "model.pt"
HEADS_FILE = "heads.pt"
STATE_TENSORS_FILE = "train_state.safetensors"
STATE_JSON_FILE = "train_state.json"
LEGACY_STATE_FILE = "train_state.pt"  # format 1: a pickle, never loaded by resume
META_FILE = "meta.json"
_STATE_KIND = "videomamba-train-state"


class UnsafeCheckpointError(ValueError):
    """A checkpoint's training state is not in the data-only format (an old pickle, a file that is
    not what its name says, a damaged or tampered file): refused without executing anything."""


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


# ------------------------------------------------------------------------------------------------
# training state <-> (tensors, JSON tree): tensors and plain types only
_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"
_MARKERS = {_TENSOR, _TUPLE, _DICT}


def encode_state(state: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Nested dicts/lists/tuples of tensors, numbers, strings, bools and None -> ``(tree, tensors)``:
    a JSON-serialisable tree with every tensor replaced by ``{"__tensor__": name}`` and the tensors
    by name (CPU, contiguous, unshared, for safetensors). Raises TypeError naming the path of any
    other object (the format holds data only)."""
    tensors: dict[str, torch.Tensor] = {}

    def enc(obj: Any, path: str) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = obj.detach().cpu().contiguous().clone()
            return {_TENSOR: name}
        if isinstance(obj, list):
            return [enc(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {_TUPLE: [enc(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj) and not _MARKERS & set(obj):
                return {k: enc(v, f"{path}.{k}") for k, v in obj.items()}
            return {_DICT: [[enc(k, f"{path}<key>"), enc(v, f"{path}[{k!r}]")] for k, v in obj.items()]}
        raise TypeError(f"training state{path}: {type(obj).__name__} is not a tensor or a plain value")

    return enc(state, ""), tensors


def decode_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_state`; raises UnsafeCheckpointError on anything malformed."""

    def dec(obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        if isinstance(obj, dict):
            if _TENSOR in obj:
                name = obj[_TENSOR]
                if len(obj) != 1 or not isinstance(name, str) or name not in tensors:
                    raise UnsafeCheckpointError(f"tensor reference {obj!r} not in the tensor file")
                return tensors[name]
            if _TUPLE in obj:
                return tuple(dec(v) for v in obj[_TUPLE])
            if _DICT in obj:
                items = obj[_DICT]
                if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
                    raise UnsafeCheckpointError("malformed tagged dict in the training state")
                return {dec(k): dec(v) for k, v in items}
            return {k: dec(v) for k, v in obj.items()}
        raise UnsafeCheckpointError(f"unexpected {type(obj).__name__} in the training state")

    return dec(tree)


def save_train_state(directory: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` as ``train_state.safetensors`` + ``train_state.json`` (tensors + plain types)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tree, tensors = encode_state(state)
    save_file(tensors, str(directory / STATE_TENSORS_FILE))
    doc = {"kind": _STATE_KIND, "version": FORMAT_VERSION, "state": tree}
    (directory / STATE_JSON_FILE).write_text(json.dumps(doc))


def _what_is(path: Path) -> str:
    """A short description of a file that failed to parse (by its first bytes; nothing executed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return f"unreadable: {err}"
    if head[:1] == b"\x80":
        return "it is a Python pickle, which can run code when loaded"
    if head == b"PK\x03\x04":
        return "it is a zip archive (a torch.save pickle?), which can run code when loaded"
    return "not a safetensors file"


def _legacy_message(directory: Path) -> str:
    return (
        f"{directory}: the training state is in the old checkpoint format 1 ({LEGACY_STATE_FILE}, a pickle, "
        "which can run code when loaded), so it is not loaded. If you trust this checkpoint, convert it once "
        f"with `videomamba checkpoint upgrade {directory}` (reads it with torch.load(weights_only=True): "
        "tensors and plain values only, anything else refused) and resume again; or start a new run from its "
        f"weights with --set model.pretrained={directory / MODEL_FILE}"
    )


def _read_state(directory: Path, *, tensors: bool) -> Any:
    tensors_path, json_path = directory / STATE_TENSORS_FILE, directory / STATE_JSON_FILE
    if not (tensors_path.exists() and json_path.exists()):
        if (directory / LEGACY_STATE_FILE).exists():
            raise UnsafeCheckpointError(_legacy_message(directory))
        missing = [p.name for p in (tensors_path, json_path) if not p.exists()]
        raise UnsafeCheckpointError(f"{directory}: no training state ({', '.join(missing)} missing): not a resumable checkpoint")
    refuse = (
        "; refusing to resume from it (damaged, or replaced by someone who can write the checkpoint storage). "
        "Resume from an earlier checkpoint (--resume with run.name of a copy without it), or start a new run "
        f"from its weights with --set model.pretrained={directory / MODEL_FILE}"
    )
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file

        if tensors:
            table: dict[str, Any] = load_file(str(tensors_path), device="cpu")
        else:  # the header only
            with safe_open(str(tensors_path), framework="pt", device="cpu") as f:
                table = dict.fromkeys(f.keys())
    except Exception as err:  # safetensors raises its own error types for any malformed file
        raise UnsafeCheckpointError(f"{tensors_path}: {_what_is(tensors_path)} ({type(err).__name__}: {err}){refuse}") from None
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise UnsafeCheckpointError(f"{json_path}: not valid JSON ({err}){refuse}") from None
    if not isinstance(doc, dict) or doc.get("kind") != _STATE_KIND or "state" not in doc:
        raise UnsafeCheckpointError(f"{json_path}: not a videomamba training state{refuse}")
    if doc.get("version") != FORMAT_VERSION:
        raise UnsafeCheckpointError(f"{json_path}: training state version {doc.get('version')!r}, this videomamba reads {FORMAT_VERSION}")
    try:
        return decode_state(doc["state"], table)
    except UnsafeCheckpointError as err:
        raise UnsafeCheckpointError(f"{json_path}: {err}{refuse}") from None


def load_train_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The training state of a checkpoint directory: tensors from ``train_state.safetensors``,
    structure and plain values from ``train_state.json``. Only data is parsed: no pickle is read,
    so a planted file cannot run code. Raises UnsafeCheckpointError (names the file and what to do)
    for a format-1 checkpoint (``train_state.pt``), a file that is not what its name says, or a
    malformed state."""
    return _read_state(Path(directory), tensors=True)


def check_train_state(directory: str | os.PathLike) -> None:
    """Validate a checkpoint's training state cheaply (JSON + the safetensors header, no tensor
    data): what the driver runs before resuming, so a bad checkpoint fails before any worker starts.
    Raises UnsafeCheckpointError like :func:`load_train_state`."""
    _read_state(Path(directory), tensors=False)


def upgrade_train_state(directory: str | os.PathLike) -> Path:
    """Convert a format-1 checkpoint's ``train_state.pt`` to ``train_state.safetensors`` +
    ``train_state.json`` (the pickle is removed). The pickle is read with
    ``torch.load(weights_only=True)``: tensors and plain containers only; one that references any
    other object is refused (UnsafeCheckpointError) and nothing in it runs. Returns the directory."""
    directory = Path(directory)
    legacy = directory / LEGACY_STATE_FILE
    if (directory / STATE_TENSORS_FILE).exists() and (directory / STATE_JSON_FILE).exists():
        logger.info("%s: already in format %d", directory, FORMAT_VERSION)
        return directory
    if not legacy.exists():
        raise FileNotFoundError(f"{directory}: no {LEGACY_STATE_FILE} to upgrade (not a training checkpoint directory?)")
    try:
        state = torch.load(legacy, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's restricted unpickler names the forbidden global
        raise UnsafeCheckpointError(
            f"{legacy}: refused: it holds more than tensors and plain values, so it was not loaded "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from None
    if not isinstance(state, dict):
        raise UnsafeCheckpointError(f"{legacy}: a {type(state).__name__}, not a training state")
    save_train_state(directory, state)
    meta_path = directory / META_FILE
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["format"] = FORMAT_VERSION
        meta_path.write_text(json.dumps(meta, indent=2, default=str))
    legacy.unlink()
    logger.info("%s: training state upgraded to format %d", directory, FORMAT_VERSION)
    return directory


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
        save_train_state(directory, train_state)
    (directory / META_FILE).write_text(json.dumps({**meta, "format": FORMAT_VERSION}, indent=2, default=str))
    return directory


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(directory) / META_FILE).read_text())


@contextlib.contextmanager
def local_checkpoint_dir(checkpoint: str | os.PathLike | Any, tracking_uri: str | None = None) -> Iterator[Path]:
    """A local directory holding ``checkpoint``: a local path (a checkpoint directory, its
    ``model.pt``, or a run directory: its best checkpoint; see ``checkpoint_path``), a URI
    (``s3://``, ``gs://``, ...), a ``ray.train.Checkpoint``, or an MLflow model logged by videomamba
    (``models:/NAME/VERSION``, ``runs:/RUN_ID/model``; resolved in ``tracking_uri``, default
    ``$MLFLOW_TRACKING_URI``, and yielding its ``model.safetensors`` + ``meta.json``); remote ones
    are downloaded to a temporary directory. Raises ``videomamba.errors.UsageError`` for a local
    path that is none of these."""
    from ray.train import Checkpoint

    from videomamba.train import mlflow_model

    if mlflow_model.is_mlflow_uri(checkpoint):
        with mlflow_model.downloaded_model(checkpoint, tracking_uri) as d:
            yield d
        return
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
    """The architecture a checkpoint was trained with (``meta["model"]``, a ``ModelSpec``), weights
    not loaded."""
    from videomamba.models.spec import ModelSpec

    return ModelSpec.from_meta(meta).build()


def load_trained_model(checkpoint: str | os.PathLike | Any, device: str | torch.device = "cpu", *,
                       tracking_uri: str | None = None):
    """``(model in eval mode, meta)`` from a training checkpoint (dir, URI or Checkpoint) or a
    videomamba MLflow model URI (``models:/...``, ``runs:/...``; see :func:`local_checkpoint_dir`)."""
    from videomamba.train import mlflow_model

    with local_checkpoint_dir(checkpoint, tracking_uri) as d:
        if not (d / MODEL_FILE).exists():
            return mlflow_model.load_model_dir(d, device)
        meta = read_meta(d)
        model = build_model_from_meta(meta)
        state = torch.load(d / MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)  # same architecture: strict
    return model.to(device).eval(), meta
