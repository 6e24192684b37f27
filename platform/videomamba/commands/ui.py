"""``videomamba ui``: the MLflow UI on 127.0.0.1 for the configured tracking store."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from videomamba.errors import RunError, UsageError

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 10.0


def register(subparsers) -> None:
    p = subparsers.add_parser("ui", help="start the MLflow UI (127.0.0.1) on the runs' tracking store", description=__doc__)
    p.add_argument("--tracking-uri", help="store to browse (default: mlflow.tracking_uri of --config, "
                                          "$MLFLOW_TRACKING_URI, else sqlite:///<root>/mlflow.db)")
    p.add_argument("--config", "-c", help="take the tracking URI / run root from this training config")
    p.add_argument("--root", default=None, help="run directory holding mlflow.db (default: run.root, 'runs')")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=run_command)


def tracking_uri_for(args) -> str:
    from videomamba.train.tracking import resolve_tracking_uri

    if args.tracking_uri:
        return args.tracking_uri
    configured, root = None, "runs"
    if args.config:
        from videomamba.train.config import load_config

        cfg = load_config(args.config)
        configured, root = cfg.mlflow.tracking_uri, cfg.run.root
    return resolve_tracking_uri(configured, args.root or root)


def port_free(port: int, host: str = HOST) -> bool:
    """Whether ``host:port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(start: int, host: str = HOST, tries: int = 50) -> int:
    """The first free port from ``start`` on (else one the OS picks)."""
    for port in range(start, min(start + tries, 65536)):
        if port_free(port, host):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _answers(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
    """Send ``sig`` to the server's whole process group (mlflow, uvicorn/gunicorn and its workers),
    wait for it; SIGKILL what is left after ``timeout`` seconds. Returns the server's exit code."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    # workers may outlive the server process: the group is gone only when none answers
    deadline = time.monotonic() + (timeout if code is not None else 0)
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        time.sleep(0.1)
    return proc.wait() if code is None else code


def run_command(args) -> int:
    uri = tracking_uri_for(args)
    if uri.startswith("sqlite:///") and not os.path.exists(uri.removeprefix("sqlite:///")):
        print(f"note: {uri} does not exist yet (run `videomamba demo` or `videomamba train` first)", file=sys.stderr)
    if not port_free(args.port):
        raise UsageError(f"--port {args.port}: {HOST}:{args.port} is already in use (another MLflow UI?)",
                         f"free port: --port {free_port(args.port + 1)}")
    exe = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    cmd = [exe, "ui", "--backend-store-uri", uri, "--host", HOST, "--port", str(args.port)]
    # own process group: a signal to us is forwarded to the server and everything it started
    proc = subprocess.Popen(cmd, start_new_session=True)
    stopping = []

    def forward(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        started, noted = time.monotonic(), False
        while not _answers(args.port):  # the URL is printed once it works; a server that dies is reported
            if proc.poll() is not None:
                raise RunError(f"the MLflow server exited with code {proc.returncode} before answering on "
                               f"{HOST}:{args.port} (its log is above)")
            if not noted and time.monotonic() - started > 10:
                print(f"waiting for the MLflow server to answer on {HOST}:{args.port} ...", file=sys.stderr, flush=True)
                noted = True
            time.sleep(0.2)
        print(f"MLflow UI for {uri}: http://{HOST}:{args.port}  (Ctrl-C to stop)", flush=True)
        code = proc.wait()
        if code:
            raise RunError(f"the MLflow server exited with code {code}")
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None or stopping:
            stop_group(proc)
