"""Where the MLflow store is: the default tracking URI, and pointing MLflow's fluent API at a store
for a block. Below training and inference (checkpoints resolve ``models:/`` URIs through it, the
evaluator hands the store to its actors); run logging is :mod:`videomamba.train.tracking`. MLflow
is imported only inside :func:`mlflow_uri`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_ROOT = "runs"


def default_tracking_uri(root: str | os.PathLike = DEFAULT_ROOT) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a SQLite store ``<root>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(root).expanduser().resolve() / 'mlflow.db'}"


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
