"""Measuring one benchmark configuration: building the model, one inference or training step
on fixed random inputs, failure classes, peak memory, and the environment probe.

* ``infer``: ``model(video)`` under ``torch.inference_mode`` and bf16 autocast;
* ``train``: bf16-autocast forward, ``cross_entropy(logits.float(), random labels)``,
  backward, fused AdamW step, ``zero_grad(set_to_none=True)``.

Peak memory is ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
(weights, optimizer state, inputs and activations). ``OutOfMemoryError`` becomes a row with
status ``"OOM"`` (batch recorded), any other failure a row with ``"error"``; a series slower
than ``max_step_s`` skips its larger frame counts; after an error that leaves the CUDA
context unusable (:func:`is_fatal_cuda`) the rest are skipped.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import statistics
import time
from typing import Callable

from videomamba import env as machine

from .floor import dims_of
from .spec import MODES, Emit, Options, Spec, base_row, is_baseline
from .timing import Clock, time_steps

log = logging.getLogger(__name__)


def build_model(spec: Spec, device):
    """The model of a spec on ``device`` (fp32 weights; autocast does the bf16). VideoMamba is
    built without drop path (the baseline has none); ``use_checkpoint`` checkpoints every block."""
    if is_baseline(spec.model):
        from .baseline import create_baseline

        model = create_baseline(
            spec.model, num_frames=spec.frames, img_size=spec.img_size, num_classes=spec.num_classes, depth=spec.depth
        )
    else:
        import videomamba

        kw = dict(num_frames=spec.frames, img_size=spec.img_size, num_classes=spec.num_classes, backend=spec.backend,
                  drop_path_rate=0.0)
        if spec.depth:
            kw["depth"] = spec.depth
        if spec.use_checkpoint:
            kw.update(use_checkpoint=True, checkpoint_num=spec.depth or 1)
        model = videomamba.create_model(spec.model, **kw)
        if spec.use_checkpoint:
            model.checkpoint_num = model.depth  # every block (read at forward time)
    return model.to(device)


def autocast(device, dtype: str, cache_enabled: bool = True):
    """The step's autocast context (none for fp32); ``cache_enabled=False`` inside CUDA graph capture."""
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[dtype],
                          cache_enabled=cache_enabled)


def make_step(model, spec: Spec, device, dtype: str = "bf16", seed: int = 0,
              cuda_graph: bool = False) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(step, release)``: one inference or training step on fixed random inputs
    (video ``(B, 3, T, H, W)`` ~ N(0, 1), labels uniform), and a function dropping the
    optimizer/grad state. ``cuda_graph`` (CUDA only): the step is captured once in a CUDA graph
    (:func:`_graphed`) and ``step`` replays it: the GPU's time without the host's launch overhead.
    Raises ValueError for an unknown ``spec.mode``, or ``cuda_graph`` off CUDA (it used to time
    eager steps under a report header that said graphs)."""
    import torch
    import torch.nn.functional as F

    if spec.mode not in ("infer", "train"):
        raise ValueError(f"mode must be one of {MODES}, got {spec.mode!r}")
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"--cuda-graphs needs a CUDA device, got {device}")
    gen = torch.Generator(device=device).manual_seed(seed)
    shape = (spec.batch, 3, spec.frames, spec.img_size, spec.img_size)
    video = torch.randn(shape, device=device, generator=gen)
    train = spec.mode == "train"
    labels = torch.randint(0, spec.num_classes, (spec.batch,), device=device, generator=gen) if train else None
    model.train(train)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=device.type == "cuda",
                            capturable=cuda_graph) if train else None

    def step() -> None:
        if not train:
            with torch.inference_mode(), autocast(device, dtype, cache_enabled=not cuda_graph):
                model(video)
            return
        with autocast(device, dtype, cache_enabled=not cuda_graph):
            logits = model(video)
        F.cross_entropy(logits.float(), labels).backward()
        opt.step()
        if not cuda_graph:
            opt.zero_grad(set_to_none=True)

    def release() -> None:
        if opt is not None:
            opt.state.clear()
        model.zero_grad(set_to_none=True)

    if cuda_graph:
        return _graphed(step, opt, release, (video, labels), device)
    return step, release


def _graphed(body, opt, release, inputs, device) -> tuple[Callable[[], None], Callable[[], None]]:
    """``body`` captured in a ``torch.cuda.CUDAGraph`` (PyTorch's whole-network capture recipe:
    three eager warm-up steps on a side stream, which also let ``auto`` backends time and pick
    theirs, then one capture; autocast without its weight cache, AdamW fused and capturable).
    Training replays forward, loss, backward and the optimizer step as one launch."""
    import torch

    def zero_grad() -> None:
        if opt is not None:
            opt.zero_grad(set_to_none=True)

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            zero_grad()
            body()
    torch.cuda.current_stream(device).wait_stream(side)
    zero_grad()  # the captured backward allocates the gradients in the graph's pool
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()

    def replay() -> None:  # holds the graph's inputs: their memory must outlive the capture
        graph.replay()

    def release_graph() -> None:
        graph.reset()
        release()

    replay.inputs = inputs
    return replay, release_graph


def is_oom(err: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError) if t)
    return isinstance(err, oom_types) or "out of memory" in str(err).lower()


def is_fatal_cuda(err: BaseException) -> bool:
    """Errors after which the CUDA context is unusable (the worker stops)."""
    msg = str(err).lower()
    return any(s in msg for s in ("illegal memory access", "unspecified launch failure", "device-side assert",
                                  "misaligned address", "illegal instruction", "cuda error: an illegal"))


class ModelCache:
    """Keeps the last built model so consecutive modes of one config reuse it."""

    def __init__(self):
        self.key, self.model = None, None

    def get(self, spec: Spec, device):
        if self.key != spec.model_key():
            self.clear()
            self.model = build_model(spec, device)
            self.key = spec.model_key()
        return self.model

    def clear(self) -> None:
        self.key, self.model = None, None
        free_memory()


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(spec: Spec, device, opts: Options, cache: ModelCache | None = None) -> dict:
    """Measure one spec; never raises for OOM or model/backend failures (row status says)."""
    import torch

    cache = cache or ModelCache()
    row, t0 = base_row(spec), time.perf_counter()
    failed = True
    try:
        _measure_into(row, spec, device, opts, cache)
        failed = False
    except Exception as err:  # noqa: BLE001 - every failure becomes a row
        if is_oom(err):
            row.update(status="OOM", error=f"OOM at batch {spec.batch}")
            if device.type == "cuda":
                row["peak_mem_bytes"] = torch.cuda.max_memory_allocated(device)
        else:
            row.update(status="error", error=f"{type(err).__name__}: {str(err).strip()[:600]}")
            log.debug("%s failed", spec.label(), exc_info=True)
    if failed:  # the traceback is gone: dropping the model frees its activations too
        cache.clear()
    row["wall_s"] = time.perf_counter() - t0
    return row


def _measure_into(row: dict, spec: Spec, device, opts: Options, cache: ModelCache) -> None:
    import torch

    cuda = device.type == "cuda"
    model = cache.get(spec, device)
    row["params"] = sum(p.numel() for p in model.parameters())
    with contextlib.suppress(Exception):
        row["dims"] = dims_of(model).to_dict()
    if cuda:  # before make_step: a CUDA graph's warm-up steps and capture allocate there
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    step, release = make_step(model, spec, device, opts.dtype, cuda_graph=opts.cuda_graphs)
    try:
        if cuda:
            torch.cuda.synchronize()
            row["base_mem_bytes"] = torch.cuda.memory_allocated(device)
        times, row["n_warmup"] = time_steps(step, Clock(device), warmup=opts.warmup, repeats=opts.repeats,
                                            budget_s=opts.config_budget_s, min_repeats=opts.min_repeats)
        if cuda:
            row["peak_mem_bytes"] = torch.cuda.max_memory_allocated(device)
            row["reserved_mem_bytes"] = torch.cuda.max_memory_reserved(device)
    finally:
        release()
    median = statistics.median(times)
    row.update(status="ok", step_ms=median, step_ms_all=times, n_repeats=len(times),
               clips_per_s=spec.batch / (median / 1e3))


def run_specs(specs: list[Spec], device, opts: Options, emit: Emit, deadline: float | None = None) -> None:
    """Measure specs in order, emitting one row each (``{"index": i, **row}``).

    A series (model, backend, mode) whose step exceeded ``opts.max_step_s`` skips its larger
    frame counts; after a fatal CUDA error or past ``deadline`` the rest are skipped.
    """
    cache = ModelCache()
    slow: dict[tuple, tuple[int, float]] = {}
    fatal = None
    for i, spec in enumerate(specs):
        series = (spec.model, spec.backend, spec.mode, spec.use_checkpoint)
        skip = None
        if fatal:
            skip = f"skipped: CUDA context lost ({fatal})"
        elif deadline is not None and time.time() > deadline:
            skip = "skipped: time limit"
        elif series in slow and spec.frames > slow[series][0]:
            f, s = slow[series]
            skip = f"skipped: {s:.1f} s/step at {f} frames > max-step {opts.max_step_s:g} s"
        if skip:
            row = {**base_row(spec), "status": "skipped", "error": skip}
        else:
            row = measure(spec, device, opts, cache)
            if row["status"] == "ok" and row["step_ms"] / 1e3 > opts.max_step_s:
                slow[series] = (spec.frames, row["step_ms"] / 1e3)
            if row["status"] == "error" and is_fatal_cuda(RuntimeError(row["error"])):
                fatal = row["error"][:120]
        emit({"type": "row", "index": i, **row})
    cache.clear()


# --------------------------------------------------------------------------------------------
# environment


def environment(device) -> dict:
    """Date, versions, git commit, device and the available backends (recorded with every
    result). The commit is ``$GIT_COMMIT`` when set (a copied checkout's ``.git`` may lag its
    files), else git's short HEAD."""
    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **machine.torch_versions(),
        "git_commit": machine.git_commit(short=True, dirty=False, env_var="GIT_COMMIT", unknown=None),
        "device_type": device.type,
        "device": "cpu",
    }
    if device.type == "cuda":
        env.update(machine.gpu_model(device), sdpa_flash=_flash_available(device))
    env["backends"], env["backends_error"] = available_backends()
    return env


def available_backends() -> tuple[list[str], str | None]:
    """Backends (besides reference) the ops layer says run here, and an error text."""
    try:
        from videomamba.ops import available_backends as ops_available
    except Exception as err:  # noqa: BLE001 - the ops package may be missing or broken
        return [], f"videomamba.ops unavailable: {type(err).__name__}: {err}"
    return [b for b in ops_available() if b != "reference"], None


def _flash_available(device) -> bool | str:
    """Whether SDPA's FlashAttention kernel runs the baseline's shapes (bf16, head dim 64)."""
    import torch
    import torch.nn.functional as F

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        q = torch.randn(1, 3, 256, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            F.scaled_dot_product_attention(q, q, q).sum().backward()
        return True
    except Exception as err:  # noqa: BLE001 - reported, not fatal
        return f"no: {type(err).__name__}: {str(err)[:200]}"


__all__ = ["ModelCache", "autocast", "available_backends", "build_model", "environment", "free_memory", "is_fatal_cuda",
           "is_oom", "make_step", "measure", "run_specs"]
