"""What makes two runs of one config and seed give the same result, and what cannot.

Per training worker, at every epoch start, Python's, NumPy's and torch's generators are seeded
from ``(train.seed, epoch, rank)`` (:func:`seed_everything`): initial weights (rank 0's, broadcast
by DDP), dropout / drop path, Mixup/CutMix and masks then repeat, and a resumed run replays
the same streams from its epoch on. The data side is seeded in ``videomamba.data.pipeline``
(``(seed, epoch, manifest row)``) and ordered by ``data.deterministic``.

:func:`use_deterministic_algorithms` (``train.deterministic_algorithms``) is the GPU part: torch's
deterministic kernels (an error on an op that has none), cuDNN without autotuning, cuBLAS with a
fixed workspace. The Triton and mamba-ssm selective-scan backwards accumulate dB/dC (dA, dD) with
atomic adds, whose order varies from run to run, so with the switch on a CUDA run must use the
``torch`` scan backend (:func:`check_scan_backend` says so). CPU kernels need none of this: for a
fixed number of threads they are already deterministic.
"""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)

#: scan backends whose CUDA backward uses atomic adds (non-deterministic summation order); the
#: Triton backward writes per-channel-block partials instead, unless VIDEOMAMBA_TRITON_BWD_ATOMIC=1
ATOMIC_BACKENDS = ("mamba_ssm",)


def _atomic(backend: str) -> bool:
    return backend in ATOMIC_BACKENDS or (backend == "triton" and os.environ.get("VIDEOMAMBA_TRITON_BWD_ATOMIC") == "1")


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    """Per (epoch, rank) seeding: resuming at an epoch boundary replays the same random streams."""
    s = (seed * 1_000_003 + epoch * 1009 + rank) % 2**32
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def use_deterministic_algorithms(enabled: bool) -> None:
    """``torch.use_deterministic_algorithms(enabled)`` plus the cuDNN / cuBLAS settings it needs.

    Call before the first CUDA matmul of the process (``CUBLAS_WORKSPACE_CONFIG`` is read when
    cuBLAS starts; an existing value is kept)."""
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    logger.info("deterministic algorithms on (CUBLAS_WORKSPACE_CONFIG=%s)", os.environ["CUBLAS_WORKSPACE_CONFIG"])


def check_scan_backend(backend: str, device: torch.device | str) -> str:
    """The scan backend ``backend`` resolves to on ``device``; raises RuntimeError when it is one
    whose CUDA backward is non-deterministic (``ATOMIC_BACKENDS``, or ``triton`` with
    ``VIDEOMAMBA_TRITON_BWD_ATOMIC=1``): the message names the fix."""
    from videomamba.ops import resolve_backend

    device = torch.device(device)
    chosen = resolve_backend(backend, device)
    if device.type == "cuda" and _atomic(chosen):
        raise RuntimeError(
            f"train.deterministic_algorithms: the {chosen!r} selective-scan backward (model backend "
            f"{backend!r}) sums gradients with atomic adds, which is not deterministic on CUDA; set "
            "model.backend=triton or torch (deterministic; triton without VIDEOMAMBA_TRITON_BWD_ATOMIC=1) "
            "or train.deterministic_algorithms=false"
        )
    return chosen
