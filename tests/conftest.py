"""Shared fixtures. Tests run offline on CPU; GPU tests skip without CUDA."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray Train's controller polls its workers every 2 s by default: a run's end, each reported epoch
# (a worker's report waits while the previous one is unread) and each checkpoint's registration
# wait for a poll. A tiny test run spends much of its time in such waits: 0.5 s polls take 2-4 s
# off a one-epoch run and 7-20 s off runs with several epochs, a restart or a resume, and change
# nothing else (the same states are reached, sooner). Set before any Ray starts, so Tune trials,
# CLI subprocesses and local heads inherit it; Ray Train passes it on to its controllers.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():  # Triton kernels then run in the CPU interpreter (set before
        os.environ["TRITON_INTERPRET"] = "1"  # any @triton.jit is defined: the mode is fixed there)


@pytest.fixture(autouse=True)
def _no_ambient_mlflow_store(monkeypatch):
    """Each test picks its own MLflow store: a store named by the environment (a user's, or one a
    previous test leaked) must not redirect runs that default to ``<run.root>/mlflow.db``."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture(scope="session")
def ray_local():
    """One embedded local Ray for the whole session (logical CPUs oversubscribed so that
    2 training workers and the decode tasks fit on a 2-core machine)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=6,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            object_store_memory=512 * 1024**2,
        )
    yield ray
    ray.shutdown()


@pytest.fixture
def gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device("cuda")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 (SQLite store in a temp dir, proxied artifacts);
    see ``tests/support/mlflow_server.py`` (``start_mlflow_server`` for variants, e.g. auth)."""
    from support.mlflow_server import start_mlflow_server

    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()
