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
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videomamba import plots
from videomamba.mlflow_store import default_tracking_uri

logger = logging.getLogger(__name__)

_PARAM_VALUE_MAX = 6000


class TrackingError(RuntimeError):
    """The MLflow tracking URI cannot be used (server unreachable, store not writable)."""


def resolve_tracking_uri(configured: str | None, root: str | os.PathLike = "runs") -> str:
    """The tracking URI to use (see :func:`default_tracking_uri`); a relative SQLite path
    (``sqlite:///mlflow.db``) is made absolute (workers do not share the driver's working
    directory). Raises ValueError for one with a password in it: the URI is written into
    checkpoints and run files; credentials belong in ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD``."""
    from urllib.parse import urlsplit

    uri = configured or default_tracking_uri(root)
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.password:
        raise ValueError(
            f"tracking URI {parts.scheme}://{parts.username}:***@{parts.hostname}...: a password in the URI would be "
            "written into checkpoints and run files; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
        )
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not path.is_absolute() and str(path) != ":memory:":
            path = path.resolve()
            uri = f"sqlite:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
    return uri


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (before Ray starts) when ``uri`` cannot be used: an ``http(s)://`` tracking server
    that does not answer its ``/health`` endpoint within ``timeout`` s, a SQLite store whose directory
    cannot be written. Raises ``TrackingError`` naming the URI and what to check."""
    import urllib.error
    import urllib.request

    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
                response.read(64)
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                return  # it answers; credentials are MLflow's business (MLFLOW_TRACKING_USERNAME/_PASSWORD)
            raise TrackingError(f"MLflow tracking server {uri} answered {err.code} {err.reason} at {url}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(
                f"cannot reach the MLflow tracking server {uri} ({reason}); start it (`mlflow server ...`) "
                "or fix mlflow.tracking_uri / $MLFLOW_TRACKING_URI"
            ) from None
    elif uri.startswith("sqlite:///"):
        directory = Path(uri.removeprefix("sqlite:///")).parent
        if not os.access(directory, os.W_OK):
            raise TrackingError(f"MLflow store {uri}: directory {directory} is not writable")


def default_artifact_location(tracking_uri: str) -> str | None:
    """``<dir of the sqlite db>/mlartifacts`` for a local SQLite store (None: MLflow's default)."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


def client(tracking_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


#: MLflow UI (3.x): an experiment whose ``mlflow.experimentKind`` tag is ``custom_model_development``
#: opens on its runs table; untagged ones open on the GenAI overview (traces). Values: the UI's
#: ExperimentKind enum (mlflow/server/js, mlflow 3.17).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

#: metrics that are counters or sizes, not curves (never plotted in curves.png)
NOT_CURVES = ("epoch", "step", "best_epoch", "num_videos", "num_views", "num_captions")


def get_or_create_experiment(tracking_uri: str, name: str) -> str:
    """The experiment's id (created with the run store's artifact location when missing), marked
    as a model-training experiment (:data:`EXPERIMENT_KIND_TAG`) unless it already has a kind."""
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = c.create_experiment(name, artifact_location=default_artifact_location(tracking_uri),
                                         tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception:  # created concurrently
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
        else:
            return exp_id
    if EXPERIMENT_KIND_TAG not in (exp.tags or {}):  # made before this tag was set: mark it now
        c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


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
    # strings: a tracking server (REST store) rejects other tag values that a SQL store would coerce
    run = client(tracking_uri).create_run(exp_id, run_name=run_name, tags={k: _param_value(v) for k, v in dict(tags).items()})
    logger.info("MLflow run %s (experiment %r) at %s", run.info.run_id, experiment, tracking_uri)
    return RunTracker(tracking_uri, run.info.run_id)


def is_curve(key: str, history) -> bool:
    """A metric worth a panel: several points that change, not a counter or a size (:data:`NOT_CURVES`)."""
    if key.rsplit("/", 1)[-1] in NOT_CURVES or key.startswith("best/"):
        return False
    return len(history) > 1 and len({m.value for m in history}) > 1


def plot_curves(tracking_uri: str, run_id: str, path: str | os.PathLike, keys: tuple[str, ...] = ()) -> str | None:
    """Plot the run's metric curves (one panel per metric; :func:`is_curve`: no single points,
    constant series or counters) to a PNG (:func:`videomamba.plots.plot_curves`); None if nothing to plot."""
    c = client(tracking_uri)
    keys = keys or tuple(sorted(c.get_run(run_id).data.metrics))
    series = {k: c.get_metric_history(run_id, k) for k in keys}
    series = {k: sorted(v, key=lambda m: (m.step, m.timestamp)) for k, v in series.items() if is_curve(k, v)}
    return plots.plot_curves({k: ([m.step for m in h], [m.value for m in h]) for k, h in series.items()}, path)
