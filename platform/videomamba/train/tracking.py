"""MLflow tracking: one MLflow run per training run, addressed by run id.

The driver creates (or, on ``--resume``, reopens) the run and passes its id to the workers; rank 0
logs step/epoch metrics into it with :class:`RunTracker`, other ranks get a no-op. Plain MLflow
client calls are used rather than ``ray.air.integrations.mlflow.setup_mlflow``: that helper
always *starts a new* run, so worker restarts (``FailureConfig``) and ``--resume`` would split one
training run over several MLflow runs.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_PARAM_VALUE_MAX = 6000


def default_tracking_uri(root: str | os.PathLike = "runs") -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a SQLite store ``<root>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(root).expanduser().resolve() / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None, root: str | os.PathLike = "runs") -> str:
    """The tracking URI to use (see :func:`default_tracking_uri`). Raises ValueError for one with a
    password in it: the URI is written into checkpoints and run files; credentials belong in
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``."""
    from urllib.parse import urlsplit

    uri = configured or default_tracking_uri(root)
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.password:
        raise ValueError(
            f"tracking URI {parts.scheme}://{parts.username}:***@{parts.hostname}...: a password in the URI would be "
            "written into checkpoints and run files; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
        )
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def default_artifact_location(tracking_uri: str) -> str | None:
    """``<dir of the sqlite db>/mlartifacts`` for a local SQLite store (None: MLflow's default)."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


@contextmanager
def mlflow_uri(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (``mlflow.start_run``, ``models:/`` URIs) at ``tracking_uri`` for
    the block, then restore the process state exactly. ``mlflow.set_tracking_uri`` also writes
    ``$MLFLOW_TRACKING_URI``/``$MLFLOW_REGISTRY_URI``, which would otherwise leak the store into
    every later run of this process and into its subprocesses."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        registry_utils._registry_uri = saved[1]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client(tracking_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def get_or_create_experiment(tracking_uri: str, name: str) -> str:
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=default_artifact_location(tracking_uri))
    except Exception:  # created concurrently
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The git commit of the source tree (``-dirty`` suffix when modified), or ``unknown``."""
    path = path or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=path, capture_output=True, text=True, timeout=10
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _PARAM_VALUE_MAX else text[: _PARAM_VALUE_MAX - 3] + "..."


class RunTracker:
    """Logs into one existing MLflow run (by id) through ``MlflowClient``."""

    enabled = True

    def __init__(self, tracking_uri: str, run_id: str):
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.client = client(tracking_uri)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        items = [Param(k, _param_value(v)) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [
            Metric(k, float(v), ts, int(step or 0))
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(float(v))
        ]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, _param_value(v)) for k, v in tags.items()]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, data, artifact_file)

    def set_status(self, status: str) -> None:
        """``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``."""
        if status == "RUNNING":
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.client.set_terminated(self.run_id, status)


class NoopTracker:
    """What non-zero ranks get: every call does nothing."""

    enabled = False
    run_id = None

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def start_run(tracking_uri: str, experiment: str, *, run_name: str | None = None, tags: Mapping[str, Any] = ()) -> RunTracker:
    """Create a new MLflow run in ``experiment`` (created if missing)."""
    exp_id = get_or_create_experiment(tracking_uri, experiment)
    run = client(tracking_uri).create_run(exp_id, run_name=run_name, tags=dict(tags))
    logger.info("MLflow run %s (experiment %r) at %s", run.info.run_id, experiment, tracking_uri)
    return RunTracker(tracking_uri, run.info.run_id)


def plot_curves(tracking_uri: str, run_id: str, path: str | os.PathLike, keys: tuple[str, ...] = ()) -> str | None:
    """Plot the run's metric histories (one panel per metric) to a PNG; None if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = client(tracking_uri)
    keys = keys or tuple(sorted(c.get_run(run_id).data.metrics))
    series = {k: c.get_metric_history(run_id, k) for k in keys}
    series = {k: sorted(v, key=lambda m: (m.step, m.timestamp)) for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    cols = min(3, len(series))
    rows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (key, hist) in zip(axes.flat, series.items()):
        ax.plot([m.step for m in hist], [m.value for m in hist], marker="." if len(hist) < 50 else None)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
