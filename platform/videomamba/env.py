"""The machine and software a run ran on: package versions, devices, git commit, CPU/GPU model.

One probe shared by ``videomamba info``, the benchmarks (``videomamba.bench``,
``videomamba.data.bench``, ``benchmarks/*.py``) and the MLflow tags of a run
(``videomamba.train.tracking``). Nothing here imports the rest of the package; torch is
imported only by the device probes.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# distributions ``videomamba info`` reports (pip names)
DISTRIBUTIONS = ("videomamba-platform", "torch", "triton", "mamba-ssm", "causal-conv1d", "ray", "timm",
                 "einops", "decord2", "decord", "mlflow", "optuna", "pydantic", "numpy")
# set by ``videomamba submit`` (jobs do not ship ``.git``); read by :func:`git_commit`
COMMIT_ENV = "VIDEOMAMBA_GIT_COMMIT"


def versions(distributions: tuple[str, ...] = DISTRIBUTIONS) -> dict[str, str | None]:
    """``{"python": X.Y.Z, <distribution>: version or None when not installed}``."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def module_version(module: str) -> str | None:
    """Version of an importable module (``__version__``, else its distribution's metadata,
    else ``"unknown"``); None when it does not import (any import failure means "not usable")."""
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    ver = getattr(mod, "__version__", None)
    if ver is None:
        with contextlib.suppress(Exception):
            ver = metadata.version(module.replace("_", "-"))
    return str(ver) if ver is not None else "unknown"


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_description() -> str:
    """``"<CPU model>, <N> cores"`` (the machine line of the CPU benchmarks)."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def devices() -> dict:
    """OS, CPU cores, torch threads and CUDA build, and every visible GPU
    (``{"index", "name", "memory_gib", "capability"}``)."""
    import torch

    cuda = torch.cuda.is_available()
    gpus = []
    for i in range(torch.cuda.device_count() if cuda else 0):
        prop = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": prop.name, "memory_gib": round(prop.total_memory / 2**30, 1),
                     "capability": f"{prop.major}.{prop.minor}"})
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch_cuda_build": torch.version.cuda, "cuda_available": cuda, "gpus": gpus}


def torch_versions() -> dict[str, str | int | None]:
    """python, torch, its CUDA and cuDNN builds, and the optional kernel packages (triton,
    mamba_ssm, causal_conv1d; None when they do not import)."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "triton": module_version("triton"),
        "mamba_ssm": module_version("mamba_ssm"),
        "causal_conv1d": module_version("causal_conv1d"),
    }


def gpu_model(device) -> dict:
    """One CUDA device: ``{"device": name, "total_memory_bytes", "sm_count", "capability",
    "driver"}`` (driver from ``nvidia-smi``, None without it)."""
    import torch

    props = torch.cuda.get_device_properties(device)
    return {"device": torch.cuda.get_device_name(device), "total_memory_bytes": props.total_memory,
            "sm_count": props.multi_processor_count, "capability": f"{props.major}.{props.minor}",
            "driver": nvidia_driver()}


def nvidia_driver() -> str | None:
    """The NVIDIA driver version (``nvidia-smi``), None where it is absent."""
    with contextlib.suppress(Exception):
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0]
    return None


def git_commit(path: str | os.PathLike | None = None, *, short: bool = False, dirty: bool = True,
               env_var: str = COMMIT_ENV, unknown: str | None = "unknown") -> str | None:
    """The git commit of the source tree, or ``unknown`` outside a checkout.

    Without ``path``, a set ``$<env_var>`` wins (``$VIDEOMAMBA_GIT_COMMIT``: set by
    ``videomamba submit``, jobs do not ship ``.git``; the GPU benchmark reads ``$GIT_COMMIT``,
    as a copied checkout's ``.git`` may lag its files); else git's HEAD of ``path`` (default:
    this package's tree), ``--short`` when ``short``, with a ``-dirty`` suffix when ``dirty``
    and tracked files are modified.
    """
    if path is None and os.environ.get(env_var):
        return os.environ[env_var]
    path = path or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", *(["--short"] if short else []), "HEAD"], cwd=path,
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return unknown
        suffix = ""
        if dirty:
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                                    capture_output=True, text=True, timeout=10)
            suffix = "-dirty" if status.stdout.strip() else ""
        return rev.stdout.strip() + suffix
    except (OSError, subprocess.SubprocessError):
        return unknown


__all__ = ["COMMIT_ENV", "DISTRIBUTIONS", "cpu_description", "cpu_model", "devices", "git_commit", "gpu_model",
           "module_version", "nvidia_driver", "torch_versions", "versions"]
