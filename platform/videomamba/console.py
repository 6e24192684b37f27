"""How much the CLI prints: quiet when stderr is not a terminal (a log file, CI), progress bars in a
terminal, more with ``-v``.

Quiet mode keeps our own lines (epoch summaries, warnings, errors) and drops what buries them
when output goes to a file: Ray Data progress bars and its per-operator INFO lines, Ray Train's
internal INFO lines (worker group start, "Reporting training result", ...), Ray's and MLflow's
start-up INFO lines. The full logs stay in Ray's session directory
(``/tmp/ray/session_latest/logs``). ``-v`` shows everything; ``-vv`` adds debug logging.
"""

from __future__ import annotations

import logging
import os
import sys

#: loggers quietened to WARNING in quiet mode (driver side)
NOISY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "mlflow", "alembic", "urllib3")

_state = {"quiet": False, "verbose": 0}


def quiet() -> bool:
    """Whether the current process was configured quiet (see :func:`configure`)."""
    return _state["quiet"]


def progress_bars() -> bool:
    """Progress bars only in a terminal (and never in quiet mode)."""
    return not _state["quiet"] and sys.stderr.isatty()


# Ray Data's default logging config (ray/data/_internal/logging.py DEFAULT_CONFIG, text variant)
# with its console handler at WARNING; written here so that configuring does not import ray.data
# (whose import applies the config). Its session log file keeps every level.
RAY_DATA_QUIET_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"ray": {"format": "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"}},
    "filters": {"console_filter": {"()": "ray.data._internal.logging.HiddenRecordFilter"}},
    "handlers": {
        "file": {"class": "ray.data._internal.logging.SessionFileHandler", "formatter": "ray",
                 "filename": "ray-data.log"},
        "console": {"class": "ray._private.log.PlainRayHandler", "formatter": "ray", "level": "WARNING",
                    "filters": ["console_filter"]},
    },
    "loggers": {"ray.data": {"level": "DEBUG", "handlers": ["file", "console"], "propagate": False}},
}


def _ray_data_console_config() -> str:
    """A ``RAY_DATA_LOGGING_CONFIG`` file holding :data:`RAY_DATA_QUIET_LOGGING`."""
    import tempfile

    import yaml

    import atexit

    fd, path = tempfile.mkstemp(prefix="videomamba-ray-data-logging-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(RAY_DATA_QUIET_LOGGING, f)
    atexit.register(lambda: os.path.exists(path) and os.remove(path))
    return path


def configure(verbose: int = 0, *, stream=None) -> bool:
    """Set up logging for a CLI process; returns whether it is quiet. Environment variables set
    here reach the workers of a local Ray started afterwards (they inherit the driver's)."""
    stream = stream or sys.stderr
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    _state.update(quiet=not is_tty and verbose == 0, verbose=verbose)
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if _state["quiet"]:
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow sets its logger's level on import
        if "RAY_DATA_LOGGING_CONFIG" not in os.environ and "ray.data" not in sys.modules:
            os.environ["RAY_DATA_LOGGING_CONFIG"] = _ray_data_console_config()
    return _state["quiet"]


def ray_init_kwargs() -> dict:
    """Extra ``ray.init`` arguments for the current verbosity."""
    return {"logging_level": logging.WARNING} if _state["quiet"] else {}


def train_logging_config():
    """``ray.train.RunConfig(logging_config=...)``: Ray Train's internal lines at WARNING when quiet."""
    import ray.train

    return ray.train.LoggingConfig(log_level="WARNING" if _state["quiet"] else "INFO")


def quiet_train_worker() -> None:
    """In a Ray Train worker of a quiet run: drop Ray Train's per-report INFO line (logged through
    a logger named by its file, so ``LoggingConfig`` does not reach it)."""
    try:
        from ray.train.v2._internal.execution import context
    except ImportError:  # pragma: no cover - moved in another Ray version
        return
    logging.getLogger(context.__file__).setLevel(logging.WARNING)
