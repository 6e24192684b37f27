"""What a user may pass where a training checkpoint is expected, resolved to a checkpoint directory.

- a checkpoint directory (``.../epoch_0003``, holding ``model.pt`` + ``meta.json``), local or a URI;
- its ``model.pt`` (the directory around it is used);
- a run directory (``runs/ray/<run>``, what the training summary prints first): its best
  checkpoint by the run's own ``train.checkpoint_metric`` (recorded in each ``meta.json``), else
  its latest ``epoch_*`` one.

URIs (``s3://``, ``gs://``, MLflow ``runs:/`` / ``models:/``) are passed through. Anything else raises :class:`videomamba.errors.UsageError` saying what was found and what to pass.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from videomamba.errors import UsageError

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
META_FILE = "meta.json"
CHECKPOINT_GLOB = "epoch_*"


@dataclass(frozen=True)
class ResolvedCheckpoint:
    path: str  # checkpoint directory (local path or URI)
    note: str | None = None  # how the argument was resolved, when it was not a checkpoint directory itself

    def __str__(self) -> str:
        return self.path


WEIGHTS_FILES = (MODEL_FILE, "model.safetensors")  # training checkpoint / downloaded MLflow model


def _is_checkpoint_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in WEIGHTS_FILES) and (path / META_FILE).is_file()


def _is_uri(text: str) -> bool:
    """``s3://...``, ``gs://...``, MLflow ``runs:/...``/``models:/...`` (not ``file://``)."""
    return bool(re.match(r"^[A-Za-z][\w+.-]*:/", text)) and not text.startswith("file:")


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob(CHECKPOINT_GLOB) if p.is_dir() and _is_checkpoint_dir(p))


def _read_meta(path: Path) -> dict:
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
    metas = [(p, _read_meta(p)) for p in found]
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
    from videomamba.data import storage

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
