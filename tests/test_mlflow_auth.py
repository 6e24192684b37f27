"""The cluster recipe's authenticated tracking server, for real: `scripts/mlflow_server.sh` starts
`mlflow server --app-name basic-auth` on 127.0.0.1 (SQL store and user database in a temp dir,
proxied artifacts). A client without credentials is refused; one with them (from the environment:
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) logs a run and registers the pyfunc model, and
it all reads back through the REST API."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests
import torch

import videomamba
from videomamba import checkpoints as ckpt
from videomamba.train import tracking

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = secrets.token_urlsafe(16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """`scripts/mlflow_server.sh` on 127.0.0.1 (its own process group; stopped by its pid)."""
    work = tmp_path_factory.mktemp("mlflow_auth")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN_PASSWORD, MLFLOW_DATA_DIR=str(work), MLFLOW_HOST="127.0.0.1",
               MLFLOW_PORT=str(port), PYTHON=sys.executable)
    log = open(work / "server.log", "w")
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "mlflow_server.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited {proc.returncode}:\n{(work / 'server.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{uri}/health", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up after 240 s:\n{(work / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield uri
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    # no secret was written into a file: the user database keeps a salted hash only
    for path in work.rglob("*"):
        if path.is_file():
            assert ADMIN_PASSWORD.encode() not in path.read_bytes(), path


def _checkpoint(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    kwargs = {"embed_dim": 16, "depth": 2, "img_size": 16, "patch_size": 8, "num_frames": 4, "num_classes": 2,
              "backend": "torch"}
    model = videomamba.create_model("videomamba_tiny", **kwargs).eval()
    meta = {"model": {"name": "videomamba_tiny", "kwargs": kwargs}, "class_names": ["a", "b"], "config": {}}
    return ckpt.save_checkpoint(tmp_path / "epoch_0000", model_state=model.state_dict(), meta=meta), model


def test_client_without_credentials_is_refused_and_with_them_logs_a_run(auth_server, tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    from videomamba.train.launcher import log_model

    uri = auth_server
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    # no credentials: refused by the API and by our tracker
    assert requests.get(f"{uri}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=30).status_code == 401
    with pytest.raises(MlflowException, match="401"):
        tracking.start_run(uri, "auth-test")

    # the admin (password from the environment at the first start) creates a user
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    alice_password = secrets.token_urlsafe(16)
    AuthServiceClient(uri).create_user("alice", alice_password)

    # a wrong password is refused too
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-" + alice_password)
    with pytest.raises(MlflowException, match="401"):
        tracking.start_run(uri, "auth-test")

    # with credentials: a run with params, metrics, an artifact and a registered pyfunc model
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", alice_password)
    tracker = tracking.start_run(uri, "auth-test", run_name="authenticated")
    tracker.log_params({"train.epochs": 2})
    tracker.log_metrics({"val/top1": 0.75}, step=1)
    tracker.log_text("hello\n", "notes/hello.txt")
    d, model = _checkpoint(tmp_path)
    log_model(tracker, d, registered_name="vm-auth")
    tracker.set_status("FINISHED")

    auth = ("alice", alice_password)
    run = requests.get(f"{uri}/api/2.0/mlflow/runs/get", params={"run_id": tracker.run_id}, auth=auth, timeout=30).json()["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {"key": "train.epochs", "value": "2"} in run["data"]["params"]
    assert [m["value"] for m in run["data"]["metrics"] if m["key"] == "val/top1"] == [0.75]
    files = requests.get(f"{uri}/api/2.0/mlflow/artifacts/list", params={"run_id": tracker.run_id, "path": "notes"},
                         auth=auth, timeout=30).json()["files"]
    assert [f["path"] for f in files] == ["notes/hello.txt"]
    version = requests.get(f"{uri}/api/2.0/mlflow/model-versions/get", params={"name": "vm-auth", "version": "1"},
                           auth=auth, timeout=30).json()["model_version"]
    assert version["run_id"] == tracker.run_id
    assert requests.get(f"{uri}/api/2.0/mlflow/runs/get", params={"run_id": tracker.run_id}, timeout=30).status_code == 401

    # the registered model loads back through the authenticated server (models:/ URI)
    loaded, meta = ckpt.load_trained_model("models:/vm-auth/1", tracking_uri=uri)
    assert meta["class_names"] == ["a", "b"]
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_a_password_in_the_tracking_uri_is_refused():
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"):
        tracking.resolve_tracking_uri("http://alice:pw@10.0.0.5:5000")
    assert tracking.resolve_tracking_uri("http://10.0.0.5:5000") == "http://10.0.0.5:5000"
