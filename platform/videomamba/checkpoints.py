"""Training checkpoints: the one module that reads and writes their directories and the run
directories that hold them.

A run directory (``<run.storage_path>/<run name>``, local or a URI) holds one checkpoint
directory per saved epoch, ``epoch_NNNN`` (:func:`checkpoint_dir_name`), each with

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

What a user may pass where a training checkpoint is expected (:func:`resolve_checkpoint`): a
checkpoint directory, local or a URI; its ``model.pt`` (the directory around it is used); a run
directory (its best checkpoint by the run's own ``train.checkpoint_metric``, recorded in each
``meta.json``, else its latest). URIs (``s3://``, ``gs://``, MLflow ``runs:/`` / ``models:/``) are
passed through. Published weights (``model.pretrained``) are loaded by
:mod:`videomamba.models.pretrained`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videomamba import storage
from videomamba.errors import UsageError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
MODEL_FILE = "model.pt"
HEADS_FILE = "heads.pt"
STATE_TENSORS_FILE = "train_state.safetensors"
STATE_JSON_FILE = "train_state.json"
LEGACY_STATE_FILE = "train_state.pt"  # format 1: a pickle, never loaded by resume
META_FILE = "meta.json"
CHECKPOINT_PREFIX = "epoch_"  # checkpoint directories in a run directory: epoch_NNNN
CHECKPOINT_GLOB = CHECKPOINT_PREFIX + "*"
MLFLOW_WEIGHTS_FILE = "model.safetensors"  # in a logged MLflow model's data/videomamba/ (train/mlflow_model.py)
MLFLOW_DATA_DIR = "videomamba"
MLFLOW_URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
WEIGHTS_FILES = (MODEL_FILE, MLFLOW_WEIGHTS_FILE)  # training checkpoint / downloaded MLflow model
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
    ``model.pt``, or a run directory: its best checkpoint; see :func:`resolve_checkpoint`), a URI
    (``s3://``, ``gs://``, ...), a ``ray.train.Checkpoint``, or an MLflow model logged by videomamba
    (``models:/NAME/VERSION``, ``runs:/RUN_ID/model``; resolved in ``tracking_uri``, default
    ``$MLFLOW_TRACKING_URI``, and yielding its ``model.safetensors`` + ``meta.json``); remote ones
    are downloaded to a temporary directory. Raises ``videomamba.errors.UsageError`` for a local
    path that is none of these."""
    from ray.train import Checkpoint

    if is_mlflow_uri(checkpoint):
        with downloaded_model(checkpoint, tracking_uri) as d:
            yield d
        return
    if not isinstance(checkpoint, Checkpoint):
        path = str(checkpoint)
        if "://" not in path or path.startswith("file://"):
            yield Path(resolve_checkpoint(path, option="checkpoint").path)  # also model.pt / a run dir
            return
        checkpoint = Checkpoint(path)
    with checkpoint.as_directory() as d:
        yield Path(d)


# ------------------------------------------------------------------------------------------------
# a videomamba MLflow model's data directory (written by train/mlflow_model.py): the same weights as
# safetensors + the checkpoint's meta.json
def is_mlflow_uri(checkpoint: Any) -> bool:
    """True for MLflow model URIs (``models:/``, ``runs:/``, ``mlflow-artifacts:/``)."""
    return isinstance(checkpoint, str) and checkpoint.startswith(MLFLOW_URI_SCHEMES)


def load_model_dir(data_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """``(model in eval mode, meta)`` from a ``data/videomamba`` directory (safetensors + JSON)."""
    from safetensors.torch import load_file

    data_dir = Path(data_dir)
    meta = read_meta(data_dir)
    model = build_model_from_meta(meta)
    model.load_state_dict(load_file(str(data_dir / MLFLOW_WEIGHTS_FILE), device="cpu"))  # same architecture: strict
    return model.to(device).eval(), meta


@contextlib.contextmanager
def downloaded_model(uri: str, tracking_uri: str | None = None) -> Iterator[Path]:
    """The ``data/videomamba`` directory (``model.safetensors``, ``meta.json``) of the MLflow model at
    ``uri`` (``models:/NAME/VERSION``, ``models:/NAME@alias``, ``runs:/RUN_ID/model``), downloaded to a
    temporary directory. ``tracking_uri``: the store (and registry) to resolve it in; default
    ``$MLFLOW_TRACKING_URI``, else ``sqlite:///runs/mlflow.db``. Raises ValueError for a model that was
    not logged by videomamba."""
    import shutil
    import tempfile

    import mlflow

    from videomamba.train import tracking

    tmp = tempfile.mkdtemp(prefix="videomamba-model-")
    try:
        with tracking.mlflow_uri(tracking_uri or tracking.default_tracking_uri("runs")):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        data = local / "data" / MLFLOW_DATA_DIR
        if not (data / MLFLOW_WEIGHTS_FILE).exists():
            raise ValueError(f"{uri}: not a videomamba MLflow model (no data/{MLFLOW_DATA_DIR}/{MLFLOW_WEIGHTS_FILE})")
        yield data
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_model_from_meta(meta: dict[str, Any]) -> torch.nn.Module:
    """The architecture a checkpoint was trained with (``meta["model"]``, a ``ModelSpec``), weights
    not loaded."""
    from videomamba.models.spec import ModelSpec

    return ModelSpec.from_meta(meta).build()


def load_model_state(checkpoint: str | os.PathLike | Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(model.pt state dict, meta)`` of a training checkpoint (dir, URI or ``ray.train.Checkpoint``)."""
    with local_checkpoint_dir(checkpoint) as d:
        return torch.load(d / MODEL_FILE, map_location="cpu", weights_only=True), read_meta(d)


def load_trained_model(checkpoint: str | os.PathLike | Any, device: str | torch.device = "cpu", *,
                       tracking_uri: str | None = None):
    """``(model in eval mode, meta)`` from a training checkpoint (dir, URI or Checkpoint) or a
    videomamba MLflow model URI (``models:/...``, ``runs:/...``; see :func:`local_checkpoint_dir`)."""
    with local_checkpoint_dir(checkpoint, tracking_uri) as d:
        if not (d / MODEL_FILE).exists():
            return load_model_dir(d, device)
        meta = read_meta(d)
        model = build_model_from_meta(meta)
        state = torch.load(d / MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)  # same architecture: strict
    return model.to(device).eval(), meta


# ------------------------------------------------------------------------------------------------
# checkpoint directories of a run directory (local path or URI)
def checkpoint_dir_name(epoch: int) -> str:
    """The name of epoch ``epoch``'s checkpoint directory in its run directory: ``epoch_NNNN``."""
    return f"{CHECKPOINT_PREFIX}{epoch:04d}"


def latest_checkpoint(run_path: str) -> tuple[int, str] | None:
    """``(epoch, path or URI)`` of the latest complete checkpoint (one with ``meta.json``) in the run
    directory ``run_path``; None when it has none."""
    found = [name for name in storage.child_dirs(run_path)
             if name.startswith(CHECKPOINT_PREFIX) and storage.is_file(storage.join(run_path, name, META_FILE))]
    if not found:
        return None
    name = found[-1]
    return int(name.removeprefix(CHECKPOINT_PREFIX)), storage.join(run_path, name)


def checkpoint_uri(checkpoint) -> str:
    """The local path or URI of a ``ray.train.Checkpoint``."""
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"


def resume_epoch(run_path: str) -> int:
    """The epoch after the latest checkpoint Ray Train records for the run directory ``run_path``
    (0 when it has none). Raises UnsafeCheckpointError when its training state is not in the
    data-only format (an old pickle, a planted file): checked before any worker starts."""
    import ray.train

    try:
        latest = ray.train.Result.from_path(run_path).checkpoint
    except RuntimeError:
        return 0
    if latest is None:
        return 0
    with local_checkpoint_dir(latest) as d:
        check_train_state(d)
        return int(read_meta(d)["epoch"]) + 1


@dataclass
class RestoredState:
    """What a training worker restores from a checkpoint directory (:func:`load_resume_state`)."""

    train_state: dict[str, Any]  # optimizer, scheduler, scaler, ema, epoch, num_updates, best, rng
    model_state: dict[str, torch.Tensor]  # the raw (not EMA) weights
    heads_state: dict[str, torch.Tensor]  # the objective's extra heads ({} without any)


def load_resume_state(directory: str | os.PathLike) -> RestoredState:
    """The training state, raw model weights and heads of a local checkpoint directory (data only;
    UnsafeCheckpointError like :func:`load_train_state`)."""
    d = Path(directory)
    state = load_train_state(d)
    model_state = state.get("model") or torch.load(d / MODEL_FILE, map_location="cpu", weights_only=True)
    heads = torch.load(d / HEADS_FILE, weights_only=True) if (d / HEADS_FILE).exists() else {}
    return RestoredState(state, model_state, heads)


def load_heads(checkpoint: str | os.PathLike | Any) -> dict[str, torch.Tensor]:
    """The objective heads (``heads.pt``) of a checkpoint (dir, URI or ``ray.train.Checkpoint``)."""
    with local_checkpoint_dir(checkpoint) as d:
        return torch.load(d / HEADS_FILE, map_location="cpu", weights_only=True)


def checkpoint_files(directory: str | os.PathLike) -> tuple[Path, dict[str, Any] | None]:
    """``(model.pt, meta or None)`` of a local training checkpoint directory (a teacher's weights)."""
    d = Path(directory)
    return d / MODEL_FILE, (read_meta(d) if (d / META_FILE).exists() else None)


# ------------------------------------------------------------------------------------------------
# what a user passes where a training checkpoint is expected
@dataclass(frozen=True)
class ResolvedCheckpoint:
    path: str  # checkpoint directory (local path or URI)
    note: str | None = None  # how the argument was resolved, when it was not a checkpoint directory itself

    def __str__(self) -> str:
        return self.path


def _is_checkpoint_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in WEIGHTS_FILES) and (path / META_FILE).is_file()


def _is_uri(text: str) -> bool:
    """``s3://...``, ``gs://...``, MLflow ``runs:/...``/``models:/...`` (not ``file://``)."""
    return bool(re.match(r"^[A-Za-z][\w+.-]*:/", text)) and not text.startswith("file:")


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob(CHECKPOINT_GLOB) if p.is_dir() and _is_checkpoint_dir(p))


def _read_meta_or_empty(path: Path) -> dict:
    try:
        return json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return {}


def best_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, str]:
    """``(checkpoint dir, why)`` of a run directory: best by the run's checkpoint metric, else latest.
    Raises UsageError when it holds no checkpoint."""
    run_dir = Path(run_dir)
    found = _checkpoints(run_dir)
    if not found:
        raise UsageError(f"{run_dir}: no {CHECKPOINT_GLOB} checkpoint in this run directory",
                         "the run saved none yet (train.checkpoint_every) or was stopped before its first one")
    metas = [(p, _read_meta_or_empty(p)) for p in found]
    train = (metas[-1][1].get("config") or {}).get("train") or {}
    metric, mode = train.get("checkpoint_metric"), train.get("checkpoint_mode", "max")
    scored = [(p, m["metrics"][metric]) for p, m in metas
              if isinstance((m.get("metrics") or {}).get(metric), (int, float)) and math.isfinite(m["metrics"][metric])]
    if metric and scored:
        path, score = (max if mode == "max" else min)(scored, key=lambda ps: ps[1])
        return path, f"best checkpoint by {metric} ({score:.4g}) of {len(found)}"
    latest = max(metas, key=lambda pm: (pm[1].get("epoch", -1), pm[0].name))[0]
    return latest, f"latest checkpoint of {len(found)} (none records {metric or 'a checkpoint metric'})"


def resolve_checkpoint(arg: str | os.PathLike, *, option: str = "--checkpoint") -> ResolvedCheckpoint:
    """Resolve ``arg`` (see the module docstring). URIs other than ``file://`` are returned as given
    (they are checked when downloaded). Raises UsageError naming ``option``."""
    text = str(arg)
    if _is_uri(text):
        return ResolvedCheckpoint(text)
    path = Path(text.removeprefix("file://")).expanduser().absolute()  # Ray actors do not share the cwd
    if not path.exists():
        raise UsageError(f"{option} {text}: no such file or directory",
                         "pass a checkpoint directory (runs/ray/<run>/epoch_NNNN) or a run directory")
    if path.is_file():
        if _is_checkpoint_dir(path.parent):
            return ResolvedCheckpoint(str(path.parent), f"{path.name}: using its checkpoint directory {path.parent}")
        raise UsageError(f"{option} {text}: a file without {META_FILE} beside it, not a training checkpoint",
                         f"pass the directory holding {MODEL_FILE} and {META_FILE} "
                         "(published weights go in model.pretrained)")
    if _is_checkpoint_dir(path):
        return ResolvedCheckpoint(str(path))
    if _checkpoints(path):
        best, why = best_checkpoint(path)
        return ResolvedCheckpoint(str(best), f"{path} is a run directory: using its {why}, {best.name}")
    runs = sorted(p.name for p in path.iterdir() if p.is_dir() and _checkpoints(p)) if path.is_dir() else []
    if runs:
        shown = ", ".join(runs[-5:]) + (f" (and {len(runs) - 5} more)" if len(runs) > 5 else "")
        raise UsageError(f"{option} {text}: a directory of runs, not a checkpoint", f"pick a run: {shown}")
    raise UsageError(f"{option} {text}: not a checkpoint directory (no {MODEL_FILE} + {META_FILE}) "
                     f"nor a run directory (no {CHECKPOINT_GLOB} checkpoints)")


def pretrained_weights(path: str) -> str:
    """``model.pretrained``: a weights file as given; a training checkpoint directory -> its
    ``model.pt``; a run directory -> its best checkpoint's ``model.pt``; URIs as given."""
    if _is_uri(path):
        return path
    local = Path(path.removeprefix("file://")).expanduser()
    if not local.exists():
        raise UsageError(f"model.pretrained: {path}: no such file or directory")
    if local.is_file():
        return str(local)
    resolved = resolve_checkpoint(local, option="model.pretrained")
    if resolved.note:
        logger.info("%s", resolved.note)
    return str(next(Path(resolved.path) / n for n in WEIGHTS_FILES if (Path(resolved.path) / n).is_file()))


def portable_data_config(data_cfg, meta: dict):
    """A checkpoint's ``data`` config usable where the checkpoint is now: when its ``classes_file``
    cannot be read from here (a cwd-relative path, another machine) the class names recorded in
    ``meta.json`` stand in for it (written to a temporary classes file)."""
    names = meta.get("class_names")
    path = data_cfg.classes_file
    if not path or not names or storage.is_uri(path) or os.path.isfile(path):
        return data_cfg
    import atexit
    import shutil
    import tempfile

    tmp_dir = tempfile.mkdtemp(prefix="videomamba-classes-")
    atexit.register(shutil.rmtree, tmp_dir, ignore_errors=True)
    tmp = Path(tmp_dir) / "classes.txt"
    tmp.write_text("".join(f"{name}\n" for name in names))
    logger.info("classes_file %s not found here: using the %d class names recorded in the checkpoint", path, len(names))
    return data_cfg.model_copy(update={"classes_file": str(tmp)})
