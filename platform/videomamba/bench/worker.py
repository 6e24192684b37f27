"""The benchmark worker: runs one task (the environment probe, one bench group, the checks or
the profiles) and streams its records as JSON lines.

:class:`videomamba.bench.run.Runner` starts one worker subprocess per section::

    python -m videomamba.bench.worker [-v] TASK.json

so that a CUDA fault in one backend (illegal address from a kernel) cannot poison the others,
and a run killed at its time limit still leaves every finished row on disk. ``TASK.json``:
``{"kind": "env"|"bench"|"check"|"profile", "options": Options.to_dict(), "specs": [Spec
dict], "deadline": epoch s | None, "results": path of the JSON-lines file}``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from .checks import run_checks
from .measure import environment, run_specs
from .profiling import profile_spec
from .spec import Emit, Options, Spec

USAGE = "usage: python -m videomamba.bench.worker [-v] TASK.json"


def setup_torch(device) -> None:
    """TF32 matmuls and cuDNN autotuning on a GPU."""
    import torch

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def pick_device(name: str | None):
    """``name`` as a ``torch.device``; default ``cuda`` when available, else ``cpu``."""
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def execute(task: dict, emit: Emit) -> None:
    """Run one task in this process. ``task``: ``{"kind": "env"|"bench"|"check"|"profile",
    "options": Options.to_dict(), "specs": [Spec dict], "deadline": epoch s | None, ...}``."""
    opts = Options.from_dict(task["options"])
    device = pick_device(opts.device)
    setup_torch(device)
    kind = task["kind"]
    if kind == "env":
        emit({"type": "env", **environment(device)})
    elif kind == "bench":
        run_specs([Spec(**s) for s in task["specs"]], device, opts, emit, task.get("deadline"))
    elif kind == "check":
        lo, hi = min(opts.frames), max(opts.frames)
        run_checks(device, task["backends"], emit, img_size=opts.img_size, frames=(lo, hi), deadline=task.get("deadline"))
    elif kind == "profile":
        deadline = task.get("deadline")
        for i, s in enumerate(task["specs"]):
            spec = Spec(**s)
            if deadline is not None and time.time() > deadline:
                emit({"type": "profile", "index": i, "spec": spec.label(), "error": "skipped: time limit"})
                continue
            emit({"type": "profile", "index": i, **profile_spec(spec, device, opts, Path(opts.out))})
    else:
        raise ValueError(f"unknown task kind {kind!r}")


def worker_main(task_path: str) -> int:
    """Run the task in the JSON file ``task_path``, appending one JSON line per record to
    ``task["results"]``."""
    task = json.loads(Path(task_path).read_text())
    with open(task["results"], "a") as fh:

        def emit(record: dict) -> None:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()

        execute(task, emit)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker subprocess: ``[-v] TASK.json`` (``-v``: debug logging)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args
    paths = [a for a in args if a != "-v"]
    if len(paths) != 1 or paths[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return worker_main(paths[0])


__all__ = ["execute", "main", "pick_device", "setup_torch", "worker_main"]

if __name__ == "__main__":
    sys.exit(main())
