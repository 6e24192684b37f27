"""A real ``mlflow server`` process on 127.0.0.1 for tests: SQL store (SQLite) in a temporary
directory, artifacts proxied by the server (``--artifacts-destination``), so clients reach them
only over HTTP (``mlflow-artifacts:/``), as a team's tracking server is used.

``start_mlflow_server(root, extra_args=(), env=None)`` -> :class:`MlflowServer` (``.uri``,
``.stop()``); the ``mlflow_server`` fixture in ``conftest.py`` wraps it. ``extra_args`` and
``env`` let other tests start a variant (e.g. ``--app-name basic-auth`` with its ini file).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MlflowServer:
    uri: str  # http://127.0.0.1:PORT
    root: Path  # holds mlflow.db, artifacts/, server.log
    process: subprocess.Popen

    def get(self, endpoint: str, auth: tuple[str, str] | None = None, **params) -> dict:
        """GET ``/api/2.0/mlflow/<endpoint>`` (query ``params``) -> parsed JSON."""
        return self.request("GET", endpoint, None, auth, **params)

    def post(self, endpoint: str, body: dict, auth: tuple[str, str] | None = None) -> dict:
        return self.request("POST", endpoint, body, auth)

    def request(self, method: str, endpoint: str, body: dict | None = None, auth=None, **params) -> dict:
        import base64
        from urllib.parse import urlencode

        url = f"{self.uri}/api/2.0/mlflow/{endpoint}" + (f"?{urlencode(params, doseq=True)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - local test server
            return json.loads(response.read().decode() or "{}")

    def download(self, artifact_uri_path: str) -> bytes:
        """Bytes of an artifact through the proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``)."""
        url = f"{self.uri}/api/2.0/mlflow-artifacts/artifacts/{artifact_uri_path.lstrip('/')}"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
            return response.read()

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own process group: gunicorn/uvicorn workers too
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def start_mlflow_server(root: str | os.PathLike, extra_args: tuple[str, ...] = (), env: dict | None = None,
                        timeout: float = 120.0) -> MlflowServer:
    """Start ``mlflow server`` on a free 127.0.0.1 port and wait until ``/health`` answers."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--workers", "1",
        *extra_args,
    ]
    log = open(root / "server.log", "wb")  # noqa: SIM115 - kept open for the process's life
    proc_env = {**os.environ, **(env or {})}
    proc_env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=proc_env, cwd=root, start_new_session=True)
    server = MlflowServer(uri=f"http://127.0.0.1:{port}", root=root, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"mlflow server did not answer within {timeout:.0f} s:\n{server.log()[-3000:]}")
