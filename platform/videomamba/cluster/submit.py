"""Submit a command to a Ray cluster through the Jobs API, stream its logs, return its status.

The project checkout is shipped as the job's ``working_dir`` (minus hidden top-level directories
such as ``.git``/``.venv``, ``runs``, ``mlruns``, ``data`` and build outputs; ``.gitignore`` is
honoured; files that may hold secrets -- ``.env``, ``*.pem``, ``*.key``, ``.netrc``, credentials
folders, ... (:data:`SECRET_EXCLUDES`) -- are never uploaded, git-ignored or not, and a warning names
them) and ``platform/`` is put on the job's ``PYTHONPATH``, so the driver, the Ray Train workers and the Ray Data tasks all import
the *submitted* ``videomamba``, whatever version the cluster has installed. Relative paths in the
command (``configs/demo.yaml``, ``pipelines/train.py``) resolve inside the shipped checkout.

``videomamba submit -- train --config configs/demo.yaml`` runs
``python -m videomamba.cli train --config configs/demo.yaml`` on the cluster; a command that
starts with ``python``/an executable/a ``.py`` path (``-- python pipelines/train.py ...``) runs
as given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videomamba.errors import UsageError

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# gitwildmatch patterns, relative to the working_dir; anchored ("/x/") so that the package's
# own sub-packages (videomamba/data) are never matched.
DEFAULT_EXCLUDES = (
    "/.*/",  # .git, .venv, caches, local build trees
    "/runs/",
    "/mlruns/",
    "/data/",
    "/build/",
    "/dist/",
    "/dist-cuda*/",
    "/wheels/",
    "__pycache__/",
    "*.egg-info/",
    "*.pyc",
)
# files that may hold secrets, at any depth: never uploaded (credentials reach a job through
# `--env KEY=VALUE`, e.g. MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)
SECRET_EXCLUDES = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519",
    ".netrc", "_netrc", ".pgpass", ".git-credentials", ".htpasswd", ".pypirc",
    "credentials/", ".credentials/", "secrets/", ".secrets/", "*credentials*.json",
    ".aws/", ".ssh/", ".gnupg/", ".kube/", ".docker/", ".azure/", ".config/gcloud/",
)
PACKAGE_DIR = "platform"  # the src-layout root, relative to the working_dir
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass
class JobOutcome:
    """What :func:`submit` returns."""

    job_id: str
    address: str
    status: str  # PENDING/RUNNING (no wait), SUCCEEDED, FAILED, STOPPED
    message: str | None = None
    entrypoint: str = ""
    runtime_env: dict[str, Any] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # secret files not uploaded (see secret_files)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


def resolve_address(address: str | None = None) -> str:
    """The Jobs API (dashboard) URL: ``address``, else ``$RAY_API_SERVER_ADDRESS``, else
    ``$RAY_ADDRESS``, else ``http://127.0.0.1:8265``; ``host:port`` gets ``http://``."""
    addr = address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    if "://" not in addr:
        addr = f"http://{addr}"
    return addr.rstrip("/")


def _videomamba_commands() -> set[str]:
    from videomamba.cli import COMMAND_MODULES

    return set(COMMAND_MODULES)


def to_entrypoint(command: Sequence[str] | str, python: str = "python") -> str:
    """The shell command the job runs: ``videomamba`` sub-commands become
    ``<python> -m videomamba.cli ...`` (no console script needed on the cluster); anything
    else (``python pipelines/train.py ...``, ``bash x.sh``) is passed through."""
    if isinstance(command, str):
        command = shlex.split(command)
    args = list(command)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise ValueError("nothing to run: give a command after `--`, e.g. `-- train --config configs/demo.yaml`")
    if args[0] == "videomamba":
        args = args[1:]
    if args and (args[0] in _videomamba_commands() or args[0].startswith("-")):
        return shlex.join([python, "-m", "videomamba.cli", *args])
    if args and args[0].endswith(".py"):
        return shlex.join([python, *args])
    return shlex.join(args)


def _parse_env(items: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    if not items:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise ValueError(f"--env {item!r}: expected KEY=VALUE or KEY")
        if not sep:  # `--env KEY`: this process's value, so a secret is never typed on a command line
            if key not in os.environ:
                raise ValueError(f"--env {key}: not set in this environment (expected KEY=VALUE, or KEY of a set variable)")
            value = os.environ[key]
        env[key] = value
    return env


def find_checkout(start: str | os.PathLike = ".") -> Path:
    """The nearest directory at or above ``start`` holding ``platform/videomamba`` (else ``start``)."""
    here = Path(start).expanduser().resolve()
    for d in (here, *here.parents):
        if (d / PACKAGE_DIR / "videomamba" / "__init__.py").exists():
            return d
    return here


def build_runtime_env(
    working_dir: str | os.PathLike | None = None,
    *,
    ship_package: bool = True,
    env: Mapping[str, str] | Sequence[str] | None = None,
    excludes: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The job's runtime_env: ``base`` (e.g. a YAML the user passes) + working_dir + excludes +
    env vars (``PYTHONPATH=platform`` when ``ship_package``)."""
    runtime_env: dict[str, Any] = dict(base or {})
    wd = Path(working_dir).expanduser().resolve() if working_dir is not None else find_checkout()
    if not wd.is_dir():
        raise FileNotFoundError(f"working dir {wd} does not exist")
    runtime_env.setdefault("working_dir", str(wd))
    runtime_env["excludes"] = list(
        dict.fromkeys([*runtime_env.get("excludes", []), *DEFAULT_EXCLUDES, *SECRET_EXCLUDES, *excludes])
    )
    env_vars = {**runtime_env.get("env_vars", {}), **_parse_env(env)}
    if ship_package:
        if not (wd / PACKAGE_DIR / "videomamba" / "__init__.py").exists():
            raise FileNotFoundError(
                f"{wd} is not a videomamba checkout (no {PACKAGE_DIR}/videomamba); pass the repository root "
                "as the working dir, or --no-ship-package to use the cluster's installed videomamba"
            )
        # relative: workers start inside the unpacked working_dir; sys.path makes it absolute
        extra = env_vars.get("PYTHONPATH")
        env_vars["PYTHONPATH"] = PACKAGE_DIR + (os.pathsep + extra if extra else "")
    else:
        runtime_env["excludes"].append(f"/{PACKAGE_DIR}/")
    if env_vars:
        runtime_env["env_vars"] = env_vars
    return runtime_env


def secret_files(working_dir: str | os.PathLike, excludes: Sequence[str] = ()) -> list[str]:
    """What :data:`SECRET_EXCLUDES` leaves out of an upload of ``working_dir``: relative paths of
    matching files, and of matching folders as ``dir/ (N files)``; folders that ``DEFAULT_EXCLUDES``
    and ``excludes`` leave out anyway are not searched. Matched with Ray's own gitwildmatch rules."""
    from ray._private.thirdparty.pathspec import PathSpec

    root = Path(working_dir).expanduser().resolve()
    skipped = PathSpec.from_lines("gitwildmatch", [*DEFAULT_EXCLUDES, *excludes])
    secret = PathSpec.from_lines("gitwildmatch", SECRET_EXCLUDES)
    found = []
    for here, dirs, files in os.walk(root):
        rel = Path(here).relative_to(root)
        for d in sorted(dirs):
            path = (rel / d).as_posix()
            if secret.match_file(path + "/"):
                count = sum(len(f) for _, _, f in os.walk(Path(here) / d))
                found.append(f"{path}/ ({count} file{'s' if count != 1 else ''})")
                dirs.remove(d)
            elif skipped.match_file(path + "/"):
                dirs.remove(d)
        found += [(rel / f).as_posix() for f in sorted(files)
                  if secret.match_file((rel / f).as_posix()) and not skipped.match_file((rel / f).as_posix())]
    return sorted(found)


def _client(address: str):
    """A Jobs API client. For a cluster with token authentication set ``RAY_AUTH_MODE=token`` and
    provide the token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), as
    for Ray's own CLI."""
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)


async def _follow(client, job_id: str, sink: Callable[[str], None]) -> None:
    async for chunk in client.tail_job_logs(job_id):
        sink(chunk)


def _status(client, job_id: str) -> str:
    status = client.get_job_status(job_id)
    return str(getattr(status, "value", status))


def submit(
    command: Sequence[str] | str,
    *,
    address: str | None = None,
    working_dir: str | os.PathLike | None = None,
    ship_package: bool = True,
    env: Mapping[str, str] | Sequence[str] | None = None,
    excludes: Sequence[str] = (),
    runtime_env: Mapping[str, Any] | None = None,
    python: str = "python",
    submission_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    entrypoint_num_cpus: float | None = None,
    entrypoint_resources: Mapping[str, float] | None = None,
    wait: bool = True,
    probe: bool = True,
    probe_timeout_s: float = 300.0,
    follow_logs: bool = True,
    log_sink: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
) -> JobOutcome:
    """Submit ``command`` (see :func:`to_entrypoint`) with the checkout at ``working_dir``
    (default: the checkout around the current directory, :func:`find_checkout`).

    With ``wait`` it streams the job's logs to ``log_sink`` (default: stdout) until the job ends
    and returns its final status; otherwise it returns right after submission (status PENDING).
    Ctrl-C stops following, not the job (``ray job stop <id>`` does that).

    Before a ``python ...`` job, ``probe`` runs a tiny job with the same interpreter and
    runtime_env that imports torch, ray and videomamba (:func:`probe_python`), so a head whose
    ``python`` is not the project's environment fails here, naming ``--python``. The local git
    commit (``-dirty`` when modified) reaches the job as ``$VIDEOMAMBA_GIT_COMMIT`` (MLflow's
    ``git_commit`` tag). A head with token authentication and no token here raises
    :class:`videomamba.errors.UsageError` saying what to set.
    """
    entrypoint = to_entrypoint(command, python=python)
    env_spec = build_runtime_env(working_dir, ship_package=ship_package, env=env, excludes=excludes, base=runtime_env)
    left_out = secret_files(env_spec["working_dir"], excludes) if "://" not in str(env_spec["working_dir"]) else []
    if left_out:
        logger.warning("not uploaded (may hold secrets; pass credentials with --env KEY=VALUE): %s", ", ".join(left_out))
    addr = resolve_address(address)
    env_vars = env_spec.setdefault("env_vars", {})
    if GIT_COMMIT_ENV not in env_vars:  # .git is not shipped: the job learns its commit from here
        from videomamba.env import git_commit

        env_vars[GIT_COMMIT_ENV] = git_commit(env_spec["working_dir"]) if "://" not in str(env_spec["working_dir"]) \
            else "unknown"
    with _auth_errors(addr):
        client = _client(addr)
        if probe and entrypoint.split()[0] == shlex.quote(python) and (addr, python, ship_package) not in _PROBED:
            probe_python(client, python, env_spec, ship_package=ship_package, timeout_s=probe_timeout_s)
            _PROBED.add((addr, python, ship_package))  # once per cluster and interpreter in a process
        job_id = _submit_with_retry(
            client,
            entrypoint=entrypoint,
            runtime_env=env_spec,
            submission_id=submission_id,
            metadata={"submitted_by": "videomamba submit", "git_commit": env_vars[GIT_COMMIT_ENV],
                      **(metadata or {})},
            entrypoint_num_cpus=entrypoint_num_cpus,
            entrypoint_resources=dict(entrypoint_resources) if entrypoint_resources else None,
        )
    logger.info("submitted job %s to %s: %s", job_id, addr, entrypoint)
    outcome = JobOutcome(job_id=job_id, address=addr, status="PENDING", entrypoint=entrypoint, runtime_env=env_spec,
                         left_out=left_out)
    if not wait:
        return outcome
    sink = log_sink or _stdout_sink
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        if follow_logs:
            try:
                asyncio.run(asyncio.wait_for(_follow(client, job_id, sink), timeout_s))
            except asyncio.TimeoutError:
                raise TimeoutError(f"job {job_id} still running after {timeout_s:.0f}s (it keeps running)") from None
            except RuntimeError as err:  # the log stream broke (head restarted, network): poll instead
                logger.warning("log stream of %s ended: %s; polling its status", job_id, err)
        # the log stream closes when the driver exits; the status may lag by a moment
        remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
        outcome.status = wait_for_job(client, job_id, remaining)
    except KeyboardInterrupt:
        logger.warning("stopped following; job %s keeps running (stop it with: ray job stop --address %s %s)",
                       job_id, addr, job_id)
        outcome.status = _status(client, job_id)
        return outcome
    info = client.get_job_info(job_id)
    outcome.message = getattr(info, "message", None)
    log = logger.info if outcome.ok else logger.error
    log("job %s %s%s", job_id, outcome.status, f": {outcome.message}" if outcome.message and not outcome.ok else "")
    return outcome


GIT_COMMIT_ENV = "VIDEOMAMBA_GIT_COMMIT"
PROBE_MODULES = ("torch", "ray", "videomamba")
_PROBE_MARK = "videomamba-probe-ok"
_PROBED: set[tuple[str, str, bool]] = set()


@contextlib.contextmanager
def _auth_errors(address: str):
    """Turn Ray's token-authentication failures into a UsageError saying what to set."""
    try:
        yield
    except Exception as err:
        if type(err).__name__ != "AuthenticationError" and "Authentication required" not in str(err) \
                and "Authentication failed" not in str(err):
            raise
        failed = "Authentication failed" in str(err)
        raise UsageError(
            f"the Ray cluster at {address} requires token authentication and "
            + ("rejected the token found here" if failed else "no token was found here"),
            "set RAY_AUTH_MODE=token and the head's token: RAY_AUTH_TOKEN=<token>, or RAY_AUTH_TOKEN_PATH=<file>, "
            "or copy it to ~/.ray/auth_token (on the head: ~/.ray/auth_token, or `ray get-auth-token`)",
        ) from None


def probe_python(client, python: str, runtime_env: Mapping[str, Any], *, ship_package: bool = True,
                 timeout_s: float = 300.0) -> str:
    """Run ``<python> -c 'import torch, ray, videomamba'`` as a job with ``runtime_env``; returns its
    output line. Raises UsageError naming ``--python`` when the interpreter is missing or lacks a module."""
    code = (f"import sys; import {', '.join(PROBE_MODULES)}; "
            f"print('{_PROBE_MARK}', sys.executable, torch.__version__, ray.__version__)")
    job_id = _submit_with_retry(client, entrypoint=shlex.join([python, "-c", code]), runtime_env=dict(runtime_env),
                                metadata={"submitted_by": "videomamba submit (environment probe)"})
    status = wait_for_job(client, job_id, timeout_s)
    logs = client.get_job_logs(job_id) or ""
    if status == "SUCCEEDED" and _PROBE_MARK in logs:
        line = next(ln for ln in logs.splitlines() if _PROBE_MARK in ln)
        logger.info("cluster environment: %s", line.replace(_PROBE_MARK, "").strip())
        return line
    missing = re.search(r"No module named '([\w.]+)'", logs)
    where = "the shipped platform/" if ship_package else "the cluster's installed packages"
    if missing:
        problem = f"the job's interpreter `{python}` on the cluster cannot import {missing.group(1)!r}"
        if missing.group(1).split(".")[0] == "videomamba":
            problem += f" (looked in {where})"
    elif re.search(r"not found|No such file", logs):
        problem = f"the job's interpreter `{python}` was not found on the cluster"
    else:
        tail = " / ".join(logs.strip().splitlines()[-3:])
        problem = f"the environment probe job {job_id} ended {status}: {tail[:300]}"
    raise UsageError(problem, "pass --python /path/to/env/bin/python (an interpreter with the project's "
                              "dependencies on every node) or a --runtime-env with pip/conda/py_executable; "
                              "--no-probe skips this check")


def _submit_with_retry(client, retry_s: float = 90, **kwargs) -> str:
    """``client.submit_job``, retried while a freshly started head has no job agent yet."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return client.submit_job(**kwargs)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            logger.info("the cluster's job agent is not up yet; retrying")
            time.sleep(2)


def wait_for_job(client, job_id: str, timeout_s: float | None = None, poll_s: float = 0.5) -> str:
    """Poll until the job reaches a terminal status (``TimeoutError`` after ``timeout_s``)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = _status(client, job_id)
        if status in TERMINAL:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout_s:.0f}s (it keeps running)")
        time.sleep(poll_s)


def _stdout_sink(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()
