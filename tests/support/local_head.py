"""A Ray head (and optional extra nodes) started with ``ray start --block`` on this machine, its
dashboard/Jobs API bound to 127.0.0.1, in its own temp dir and on free ports: a real cluster for
tests that can be stopped without touching any other Ray instance on the machine. Also: which
nodes ran which tasks and actors (:func:`task_nodes`, :func:`actors`, from Ray's state API).

``ray stop`` is not used: it stops every Ray process of the machine. Instead each ``ray start``
runs in its own session (process group); stopping sends SIGTERM to those groups, then SIGKILLs any
leftover process whose command line names this head's private temp dir.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

_PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_naming(marker: str) -> list[int]:
    """Pids of the processes whose command line contains ``marker`` (e.g. a private Ray temp dir:
    GCS, raylets, agents and workers all name it), this process excluded."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def kill_processes_naming(marker: str, grace_s: float = 3) -> list[int]:
    """SIGTERM, then after ``grace_s`` SIGKILL, the processes :func:`pids_naming` finds; returns them."""
    if len(marker) < 8:
        raise ValueError(f"marker {marker!r} is too unspecific")
    pids = pids_naming(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)
    return pids


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


class LocalHead:
    """``with LocalHead(num_cpus=4) as head: submit(..., address=head.dashboard_url)``.

    ``env`` is added to the environment of the Ray processes (e.g. ``PATH`` so that job
    entrypoints find this interpreter as ``python``). Token authentication is off by default
    (``auth_mode``): the Jobs API listens on loopback only and the head lives as long as a test. ``add_node(resources=..., num_cpus=...)``
    starts another raylet on this machine joined to the head.
    """

    def __init__(
        self,
        num_cpus: float = 4,
        *,
        resources: Mapping[str, float] | None = None,
        include_dashboard: bool = True,
        object_store_memory: int = 256 * 1024**2,
        env: Mapping[str, str] | None = None,
        temp_dir: str | os.PathLike | None = None,
        start_timeout_s: float = 120,
        auth_mode: str = "disabled",
    ):
        self.num_cpus = num_cpus
        self.resources = dict(resources or {})
        self.include_dashboard = include_dashboard
        self.object_store_memory = object_store_memory
        self.start_timeout_s = start_timeout_s
        # unix socket paths live under it: keep it short
        self._own_temp = temp_dir is None
        self.temp_dir = Path(temp_dir) if temp_dir else Path(tempfile.mkdtemp(prefix="vmray-", dir="/tmp"))
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.env.pop("RAY_ADDRESS", None)
        # Ray's default temp dir (and its ray_current_cluster file, which a bare ray.init() may
        # follow) must not be shared with other Ray instances on this machine
        self.env["RAY_TMPDIR"] = str(self.temp_dir)
        # explicit, not inherited from whether ~/.ray/auth_token happens to exist; "token" needs
        # the same setting (and token) in the clients
        self.env["RAY_AUTH_MODE"] = auth_mode
        self._ports: set[int] = set()
        self.gcs_port = self._free_port()
        self.dashboard_port = self._free_port()
        self._procs: list[subprocess.Popen] = []
        self._logs: list[Path] = []

    def _free_port(self) -> int:
        """A free port that no other component of this cluster was given: ``free_port`` releases
        its socket at once, so two calls can return the same port (seen: GCS and metrics export)."""
        while True:
            port = free_port()
            if port not in self._ports:
                self._ports.add(port)
                return port

    # -- addresses ----------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """GCS address, for ``ray.init(address=...)`` (Ray advertises the node's routable IP,
        not 127.0.0.1, whatever --node-ip-address says; the dashboard stays on loopback)."""
        for current in (self.temp_dir / "ray_current_cluster", self.temp_dir / "ray" / "ray_current_cluster"):
            if current.exists():
                return current.read_text().strip()
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        """Jobs API / dashboard URL."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    # -- processes ----------------------------------------------------------------------------
    def _start(self, args: list[str], name: str) -> subprocess.Popen:
        for flag in _PORT_FLAGS:
            args.append(f"{flag}={self._free_port()}")
        log = self.temp_dir / f"{name}.out"
        self._logs.append(log)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [_ray_executable(), "start", "--block", "--disable-usage-stats", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: stopped without `ray stop`
            )
        self._procs.append(proc)
        return proc

    def _common(self, num_cpus: float, resources: Mapping[str, float]) -> list[str]:
        args = [
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            f"--object-store-memory={self.object_store_memory}",
        ]
        if resources:
            args.append(f"--resources={json.dumps(dict(resources))}")
        return args

    def start(self) -> LocalHead:
        args = [
            "--head",
            f"--port={self.gcs_port}",
            f"--temp-dir={self.temp_dir}",
            f"--ray-client-server-port={self._free_port()}",
            f"--include-dashboard={'true' if self.include_dashboard else 'false'}",
            *self._common(self.num_cpus, self.resources),
        ]
        if self.include_dashboard:
            args += ["--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        proc = self._start(args, "head")
        try:
            self._wait_ready(proc)
        except BaseException:
            self.stop()
            raise
        logger.info("local Ray head at %s (dashboard %s, temp dir %s)", self.address, self.dashboard_url, self.temp_dir)
        return self

    def add_node(self, num_cpus: float = 1, resources: Mapping[str, float] | None = None) -> subprocess.Popen:
        """Start another raylet on this machine, joined to the head; returns its process."""
        proc = self._start([f"--address={self.address}", *self._common(num_cpus, resources or {})], f"node{len(self._procs)}")
        return proc

    def wait_for_nodes(self, count: int, timeout_s: float = 120) -> list:
        """Wait until ``count`` nodes are alive (state API over the dashboard); returns them."""
        from ray.util.state import list_nodes

        deadline = time.monotonic() + timeout_s
        alive: list = []
        while time.monotonic() < deadline:
            try:
                alive = list_nodes(address=self.dashboard_url, filters=[("state", "=", "ALIVE")], detail=True)
            except Exception as err:  # noqa: BLE001 - the API may not answer yet
                logger.debug("list_nodes: %s", err)
            if len(alive) >= count:
                return alive
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a ray start process exited with {proc.returncode}:\n{self.log_tail()}")
            time.sleep(1)
        raise TimeoutError(f"{len(alive)}/{count} Ray nodes alive after {timeout_s:.0f}s:\n{self.log_tail()}")

    def _wait_ready(self, proc: subprocess.Popen) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + self.start_timeout_s
        url = f"{self.dashboard_url}/api/version" if self.include_dashboard else None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}:\n{self.log_tail()}")
            if url is None:
                if "Ray runtime started" in self.log_tail():
                    return
            else:
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        return
                except urllib.error.HTTPError:  # 401 with token authentication: it is up
                    return
                except OSError:
                    pass
            time.sleep(0.5)
        raise TimeoutError(f"Ray head not ready after {self.start_timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(p.read_text(errors="replace")[-chars:] for p in self._logs if p.exists())

    def _leftovers(self) -> list[int]:
        return pids_naming(str(self.temp_dir))

    def stop(self, grace_s: float = 3) -> None:
        """SIGTERM every ``ray start`` process group started here, SIGKILL what is left after
        ``grace_s``, then SIGKILL any process still naming this head's temp dir. (``ray start``'s
        SIGTERM handler stops its components one at a time with long timeouts: a head was still
        alive 25 s after SIGTERM here. A throwaway head with a private temp dir needs none of that,
        so a longer grace only delays the SIGKILL it gets anyway.)"""
        for proc in reversed(self._procs):
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in reversed(self._procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # agents may outlive their raylet for a moment
        settle = time.monotonic() + 3
        while time.monotonic() < settle and (self._group_alive() or self._leftovers()):
            time.sleep(0.5)
        for proc in self._procs:
            _signal_group(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for pid in self._leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._procs.clear()
        if self._own_temp:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _group_alive(self) -> bool:
        for proc in self._procs:
            try:
                os.killpg(proc.pid, 0)
                return True
            except (ProcessLookupError, PermissionError):
                continue
        return False

    def __enter__(self) -> LocalHead:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def task_nodes(name_contains: str, address: str | None = None, limit: int = 10_000) -> dict[str, set[str]]:
    """``{task name: node ids}`` of the tasks whose name contains ``name_contains`` (all attempts)."""
    from ray.util.state import list_tasks

    out: dict[str, set[str]] = {}
    for t in list_tasks(address=address, limit=limit, detail=True, raise_on_missing_output=False):
        if name_contains in (t.name or "") and t.node_id:
            out.setdefault(t.name, set()).add(t.node_id)
    return out


def actors(class_contains: str, address: str | None = None, limit: int = 10_000) -> dict[str, str]:
    """``{actor id: node id}`` of the actors (alive or dead) whose class name contains ``class_contains``."""
    from ray.util.state import list_actors

    return {
        a.actor_id: a.node_id
        for a in list_actors(address=address, limit=limit, detail=True, raise_on_missing_output=False)
        if class_contains in (a.class_name or "") and a.node_id
    }
