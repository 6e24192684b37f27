"""Errors a user can act on, and how the ``videomamba`` CLI reports them.

Library code raises ordinary exceptions (``ConfigError``, ``ManifestError``, ``FileNotFoundError``
...) or :class:`UsageError` when the fix is on the user's side (a wrong path, option or field);
:func:`describe` turns any exception into one line for the terminal and an exit code:

- 2: usage and config errors (bad option, config field, manifest, missing file) - fix the input;
- 1: failures at run time (a crashed job, an unreadable store, a non-finite loss);
- 130: interrupted (Ctrl-C).

``videomamba --debug`` (or ``VIDEOMAMBA_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEBUG_ENV = "VIDEOMAMBA_DEBUG"


class UsageError(Exception):
    """A mistake in what the user asked for (exit 2); ``hint`` says what to do instead."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}; {self.hint}" if self.hint else message


class RunError(Exception):
    """A failure at run time that the CLI reports in one line (exit 1)."""

    exit_code = EXIT_FAILURE


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


# (module, class) of errors that mean "fix your input"; looked up in sys.modules only (a class that
# was never imported cannot have been raised, and the CLI must not import torch/ray to report)
_USAGE_CLASSES = (("videomamba.train.config", "ConfigError"), ("videomamba.data.manifest", "ManifestError"),
                  ("videomamba.tune.space", "SpaceError"), ("videomamba.train.launcher", "RunExistsError"),
                  ("pydantic_core", "ValidationError"))


def _usage_types() -> tuple[type[BaseException], ...]:
    import sys

    types: list[type[BaseException]] = [UsageError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                                         PermissionError]
    for module, name in _USAGE_CLASSES:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            types.append(cls)
    return tuple(types)


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _os_message(err: OSError) -> str:
    if err.filename is not None and err.strerror:
        what = {FileNotFoundError: "not found", IsADirectoryError: "is a directory, a file is expected",
                NotADirectoryError: "is not a directory", PermissionError: "permission denied"}.get(type(err))
        return f"{err.filename}: {what or err.strerror}"
    return str(err)


def _root_cause(err: BaseException) -> BaseException:
    """The error a Ray wrapper (``TrainingFailedError``, ``RayTaskError``) carries."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        inner = getattr(err, "cause", None) or err.__cause__
        if isinstance(inner, BaseException) and type(err).__name__ in ("TrainingFailedError", "RayTaskError",
                                                                     "WorkerGroupError", "ControllerError"):
            err = inner
            continue
        break
    return err


def describe(err: BaseException) -> tuple[int, str]:
    """``(exit code, one-line message)`` for an exception that reached the CLI."""
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(err, (UsageError, RunError)):
        return err.exit_code, str(err)
    if isinstance(err, OSError) and not isinstance(err, (ConnectionError, TimeoutError)) \
            and isinstance(err, _usage_types()):
        return EXIT_USAGE, _os_message(err)
    if isinstance(err, _usage_types()):
        return EXIT_USAGE, str(err).strip()
    if type(err).__module__.startswith("videomamba."):
        # our own run-time errors are written for the user (counts, examples, the last checkpoint)
        return EXIT_FAILURE, str(err).strip() or type(err).__name__
    cause = _root_cause(err)
    if cause is not err:
        code, message = describe(cause)
        return EXIT_FAILURE, f"{type(err).__name__}: {message}"
    message = _first_line(str(err))
    return EXIT_FAILURE, f"{type(err).__name__}: {message}" if message else type(err).__name__
