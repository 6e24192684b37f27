"""Processes that start and stop cleanly (issue 19 §6) and a quiet console when not a terminal
(§4): ``videomamba ui`` on a busy port fails with the reason and a free port, SIGTERM stops the
MLflow server and its workers; ``bench --check`` only checks."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videomamba.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_ui_on_a_busy_port_fails_and_offers_a_free_one(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["ui", "--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in err
    free = int(err.rsplit("--port ", 1)[1].split()[0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free))  # the offered port is really free


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_sigterm_stops_the_server_and_its_children(tmp_path):
    from videomamba.commands.ui import free_port

    port = free_port(20000 + os.getpid() % 20000)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "platform")}
    proc = subprocess.Popen([sys.executable, "-m", "videomamba.cli", "ui", "--port", str(port),
                             "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = next((ln for ln in proc.stdout if "MLflow UI for" in ln), "")  # printed once the server answers
        assert f"http://127.0.0.1:{port}" in line and _answers(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        time.sleep(0.5)
        assert not _answers(port)
        leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout.split()
        assert leftover == [], leftover  # mlflow, uvicorn and its workers are gone
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bench_check_alone_only_checks(monkeypatch):
    from videomamba.bench import run as bench_run

    seen = []

    def fake_run(opts):
        seen.append(opts)
        return {"checks": {"pass": True}, "rows": []}

    monkeypatch.setattr(bench_run, "run", fake_run)
    monkeypatch.setattr("videomamba.bench.report.markdown", lambda results: "")
    assert main(["bench", "--check", "--out", "/tmp/unused"]) == 0
    assert seen[-1].check and not seen[-1].bench
    assert main(["bench", "--check", "--bench", "--out", "/tmp/unused"]) == 0
    assert seen[-1].check and seen[-1].bench
    assert main(["bench", "--out", "/tmp/unused"]) == 0
    assert seen[-1].bench and not seen[-1].check


def test_console_is_quiet_when_not_a_terminal(monkeypatch):
    import logging

    from videomamba import console

    for var in ("RAY_DATA_DISABLE_PROGRESS_BARS", "RAY_DATA_LOGGING_CONFIG", "MLFLOW_LOGGING_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(console, "_state", {"quiet": False, "verbose": 0})
    assert console.configure(0, stream=io.StringIO()) is True
    assert os.environ["RAY_DATA_DISABLE_PROGRESS_BARS"] == "1"
    if "RAY_DATA_LOGGING_CONFIG" in os.environ:  # only when ray.data was not imported yet (see below)
        assert "WARNING" in Path(os.environ["RAY_DATA_LOGGING_CONFIG"]).read_text()
    assert logging.getLogger("ray.train").level == logging.WARNING
    assert console.train_logging_config().log_level == "WARNING" and not console.progress_bars()
    assert console.ray_init_kwargs() == {"logging_level": logging.WARNING}
    for name in console.NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    assert console.configure(1, stream=io.StringIO()) is False  # -v: everything
    assert console.train_logging_config().log_level == "INFO" and console.ray_init_kwargs() == {}


def test_quiet_console_reaches_ray_data():
    """Ray Data's console handler is at WARNING once it is imported after a quiet configure."""
    code = ("import io, logging; from videomamba import console; console.configure(0, stream=io.StringIO()); "
            "import ray.data; print([h.level for h in logging.getLogger('ray.data').handlers])")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_DATA_LOGGING_CONFIG",)}
    env["PYTHONPATH"] = str(ROOT / "platform")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert str(__import__("logging").WARNING) in out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("name", ["train", "pretrain", "tune", "evaluate"])
def test_each_pipeline_runs_its_sub_command(name):
    """``pipelines/<name>.py`` is ``videomamba <name>``: same parser, same options."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "platform")}
    proc = subprocess.run([sys.executable, str(ROOT / "pipelines" / f"{name}.py"), "--help"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: videomamba {name} "), proc.stdout[:300]
