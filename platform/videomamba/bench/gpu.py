"""GPU benchmark harness: VideoMamba (every backend) against a FlashAttention ViT baseline.

What one run measures, per (model, backend, frames, mode), at a fixed batch per frame count
(the same for every model at that frame count; default ``256 // frames``), 224 px, random
normal clips:

* ``infer``: ``model(video)`` under ``torch.inference_mode`` and bf16 autocast;
* ``train``: bf16-autocast forward, ``cross_entropy(logits.float(), random labels)``,
  backward, fused AdamW step, ``zero_grad(set_to_none=True)``.

Timing: warm-up steps (JIT/autotune happen there), then ``repeats`` steps launched back to
back with a CUDA event between consecutive steps (no host sync inside the timed window), the
median step time is reported; clips/s = batch / median. Peak memory is
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (weights, optimizer
state, inputs and activations). A per-config time budget bounds warm-up + repeats; a config
slower than ``max_step_s`` stops the larger frame counts of its series. ``OutOfMemoryError``
becomes a row with status ``"OOM"`` (batch recorded); any other failure a row with
``"error"``; a backend that is not available a row with ``"unavailable"``.

Isolation: each section (checks, one backend's bench group, memory-fit, profiles) runs in a
subprocess (``python -m videomamba.bench.gpu --worker task.json``) that streams JSON lines
back, so a CUDA fault in one backend (illegal address from a kernel) cannot poison the
others, and a run killed at its time limit still leaves every finished row on disk.

The physical floor each row is compared with (``floor_ms``, ``floor_x`` = measured / floor) is
documented in :mod:`videomamba.bench.floor`:
``t_floor = max(3F/P_mma, scan_bytes/BW_hbm, n_exp/SFU_rate)`` per clip for training.

Outputs (``--out``): ``results.json`` (everything), ``results.md`` (tables), ``bench.png``
(throughput and memory vs frames), ``profile_*.txt``, ``logs/``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger(__name__)

VIDEOMAMBA_MODELS = ("videomamba_tiny", "videomamba_small", "videomamba_middle")
DEFAULT_BASELINE = "attention_tiny"
BACKEND_ORDER = ("triton", "mamba_ssm", "torch")  # bench group order (slowest last)
DEFAULT_FRAMES = (8, 16, 32, 64)
MODES = ("infer", "train")
WORKER_GRACE_S = 15.0
SCHEMA_VERSION = 1

Emit = Callable[[dict], None]


def default_batch(frames: int) -> int:
    """Batch used at a frame count: 256 frames per step (32 clips at 8 frames, 4 at 64)."""
    return max(1, 256 // frames)


def parse_batch(text: str | None, frames: Iterable[int]) -> dict[int, int]:
    """``None`` -> defaults; ``"4"`` -> 4 for every frame count; ``"8:32,64:4"`` -> a map
    (missing frame counts fall back to :func:`default_batch`)."""
    out = {f: default_batch(f) for f in frames}
    if not text:
        return out
    if ":" not in text:
        return {f: int(text) for f in frames}
    for item in text.split(","):
        f, b = item.split(":")
        out[int(f)] = int(b)
    return out


def series_label(backend: str, use_checkpoint: bool) -> str:
    return f"{backend}+ckpt" if use_checkpoint else backend


def is_baseline(name: str) -> bool:
    from .baseline import BASELINES

    return name in BASELINES


@dataclass(frozen=True)
class Spec:
    """One benchmark configuration. ``backend`` is ``"sdpa"`` for the attention baselines."""

    model: str
    backend: str
    frames: int
    batch: int
    mode: str
    img_size: int = 224
    num_classes: int = 400
    depth: int | None = None
    use_checkpoint: bool = False

    def model_key(self) -> tuple:
        return (self.model, self.backend, self.frames, self.img_size, self.num_classes, self.depth, self.use_checkpoint)

    def series(self) -> str:
        """Backend label of the row's series: ``triton``, ``triton+ckpt``, ``sdpa``..."""
        return series_label(self.backend, self.use_checkpoint)

    def label(self) -> str:
        ck = " ckpt" if self.use_checkpoint else ""
        return f"{self.model}/{self.backend} T={self.frames} B={self.batch} {self.mode}{ck}"


@dataclass
class Options:
    """Everything a run needs (built from the CLI by :func:`options_from_args`)."""

    models: list[str] = field(default_factory=lambda: [*VIDEOMAMBA_MODELS, DEFAULT_BASELINE])
    backends: list[str] = field(default_factory=lambda: ["all"])
    frames: list[int] = field(default_factory=lambda: list(DEFAULT_FRAMES))
    batch: dict[int, int] = field(default_factory=dict)
    modes: list[str] = field(default_factory=lambda: list(MODES))
    ckpt_models: list[str] = field(default_factory=list)
    quick: bool = True
    repeats: int = 10
    warmup: int = 2
    min_repeats: int = 3
    config_budget_s: float = 2.0
    max_step_s: float = 5.0
    time_limit_s: float | None = None
    img_size: int = 224
    num_classes: int = 400
    depth: int | None = None
    dtype: str = "bf16"
    baseline: str = DEFAULT_BASELINE
    out: str = "benchmarks/latest"
    bench: bool = True
    check: bool = False
    memory_fit: bool = False
    memory_fit_batch: int = 8
    memory_fit_frames: int = 64
    memory_fit_model: str = "videomamba_middle"
    profile: list[str] = field(default_factory=list)
    isolate: bool = True
    device: str | None = None
    argv: list[str] = field(default_factory=list)

    def batch_for(self, frames: int) -> int:
        return self.batch.get(frames) or default_batch(frames)


# --------------------------------------------------------------------------------------------
# building and measuring one configuration


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


def _autocast(device, dtype: str):
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[dtype])


def make_step(model, spec: Spec, device, dtype: str = "bf16", seed: int = 0) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(step, release)``: one inference or training step on fixed random inputs
    (video ``(B, 3, T, H, W)`` ~ N(0, 1), labels uniform), and a function dropping the
    optimizer/grad state."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator(device=device).manual_seed(seed)
    shape = (spec.batch, 3, spec.frames, spec.img_size, spec.img_size)
    video = torch.randn(shape, device=device, generator=gen)
    if spec.mode == "infer":
        model.eval()

        def step() -> None:
            with torch.inference_mode(), _autocast(device, dtype):
                model(video)

        return step, lambda: None
    if spec.mode != "train":
        raise ValueError(f"mode must be one of {MODES}, got {spec.mode!r}")
    labels = torch.randint(0, spec.num_classes, (spec.batch,), device=device, generator=gen)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=device.type == "cuda")

    def train_step() -> None:
        with _autocast(device, dtype):
            logits = model(video)
        F.cross_entropy(logits.float(), labels).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def release() -> None:
        opt.state.clear()
        model.zero_grad(set_to_none=True)

    return train_step, release


class _Clock:
    """CUDA events on GPU, perf_counter on CPU."""

    def __init__(self, device):
        import torch

        self.torch, self.cuda = torch, device.type == "cuda"

    def mark(self):
        if not self.cuda:
            return time.perf_counter()
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def ms(self, a, b) -> float:
        return a.elapsed_time(b) if self.cuda else (b - a) * 1e3


def time_steps(step: Callable[[], None], clock: _Clock, *, warmup: int, repeats: int, budget_s: float,
               min_repeats: int = 3) -> tuple[list[float], int]:
    """Warm up, then time ``n`` steps back to back. Warm-up runs at least 2 steps (the first
    one compiles; the second gives a clean step-time estimate) unless the first alone exceeds
    the budget, and continues up to ``warmup`` steps or 30 % of the budget. ``n`` fills the
    rest of the budget within ``[min_repeats, repeats]`` (1 when a step is over half the
    budget). Returns (ms per step, n_warmup)."""
    t0 = time.perf_counter()
    n_warm, last = 0, 0.0
    while True:
        ts = time.perf_counter()
        step()
        clock.sync()
        last = time.perf_counter() - ts
        n_warm += 1
        if n_warm == 1 and last > budget_s:
            break
        if n_warm >= max(2, warmup) or (n_warm >= 2 and time.perf_counter() - t0 > 0.3 * budget_s):
            break
    left = budget_s - (time.perf_counter() - t0)
    floor_n = 1 if last > 0.5 * budget_s else min(min_repeats, repeats)
    n = max(floor_n, min(repeats, int(left / max(last, 1e-6))))
    marks = [clock.mark()]
    for _ in range(n):
        step()
        marks.append(clock.mark())
    clock.sync()
    return [clock.ms(a, b) for a, b in zip(marks, marks[1:])], n_warm


def is_oom(err: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError) if t)
    return isinstance(err, oom_types) or "out of memory" in str(err).lower()


def is_fatal_cuda(err: BaseException) -> bool:
    """Errors after which the CUDA context is unusable (the worker stops)."""
    msg = str(err).lower()
    return any(s in msg for s in ("illegal memory access", "unspecified launch failure", "device-side assert",
                                  "misaligned address", "illegal instruction", "cuda error: an illegal"))


def base_row(spec: Spec) -> dict:
    """A result row with every schema field (see :data:`ROW_FIELDS`)."""
    return {
        **asdict(spec), "status": None, "error": None, "step_ms": None, "step_ms_all": [], "clips_per_s": None,
        "peak_mem_bytes": None, "reserved_mem_bytes": None, "base_mem_bytes": None, "n_warmup": 0,
        "n_repeats": 0, "params": None, "dims": None, "wall_s": None,
    }


ROW_FIELDS = tuple(base_row(Spec("m", "b", 1, 1, "infer")))
ROW_STATUSES = ("ok", "OOM", "error", "skipped", "unavailable")


class _ModelCache:
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
        _free_memory()


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(spec: Spec, device, opts: Options, cache: _ModelCache | None = None) -> dict:
    """Measure one spec; never raises for OOM or model/backend failures (row status says)."""
    import torch

    cache = cache or _ModelCache()
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


def _measure_into(row: dict, spec: Spec, device, opts: Options, cache: _ModelCache) -> None:
    import torch

    from .floor import dims_of

    cuda = device.type == "cuda"
    model = cache.get(spec, device)
    row["params"] = sum(p.numel() for p in model.parameters())
    with contextlib.suppress(Exception):
        row["dims"] = dims_of(model).to_dict()
    step, release = make_step(model, spec, device, opts.dtype)
    try:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
            row["base_mem_bytes"] = torch.cuda.memory_allocated(device)
        times, row["n_warmup"] = time_steps(step, _Clock(device), warmup=opts.warmup, repeats=opts.repeats,
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
    cache = _ModelCache()
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


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    ver = getattr(mod, "__version__", None)
    if ver is None:
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            ver = version(module.replace("_", "-"))
    return str(ver) if ver is not None else "unknown"


def _git_commit() -> str | None:
    """``$GIT_COMMIT`` when set (a copied checkout's ``.git`` may lag its files), else git's HEAD."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    with contextlib.suppress(Exception):
        root = Path(__file__).resolve().parents[3]
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def available_backends() -> tuple[list[str], str | None]:
    """Backends (besides auto/reference) the ops layer says run here, and an error text."""
    try:
        from videomamba.ops import available_backends as ops_available
    except Exception as err:  # noqa: BLE001 - the ops package may be missing or broken
        return [], f"videomamba.ops unavailable: {type(err).__name__}: {err}"
    found = ops_available()
    names = list(found) if not isinstance(found, dict) else [k for k, v in found.items() if v]
    return [b for b in names if b not in ("auto", "reference")], None


def environment(device) -> dict:
    """Date, versions, device and the available backends (recorded with every result)."""
    import platform as _platform

    import torch

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": _platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "triton": _version("triton"),
        "mamba_ssm": _version("mamba_ssm"),
        "causal_conv1d": _version("causal_conv1d"),
        "git_commit": _git_commit(),
        "device_type": device.type,
        "device": "cpu",
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device=torch.cuda.get_device_name(device), total_memory_bytes=props.total_memory,
                   sm_count=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
                   driver=_nvidia_driver(), sdpa_flash=_flash_available(device))
    env["backends"], env["backends_error"] = available_backends()
    return env


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


def _nvidia_driver() -> str | None:
    with contextlib.suppress(Exception):
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0]
    return None


# --------------------------------------------------------------------------------------------
# plans


def bench_specs(opts: Options, backends: list[str]) -> list[Spec]:
    """All bench specs: baseline (``sdpa``) and each VideoMamba model x backend, frames
    ascending, infer before train, then (``ckpt_models``) training with every block
    checkpointed. ``quick`` keeps only the smallest and largest frame count for models other
    than Tiny and the baseline."""
    specs = []
    for model in opts.models:
        frames = sorted(opts.frames)
        if opts.quick and model not in ("videomamba_tiny",) and not is_baseline(model) and len(frames) > 2:
            frames = [frames[0], frames[-1]]
        for backend in (["sdpa"] if is_baseline(model) else backends):
            for f in frames:
                for mode in opts.modes:
                    specs.append(Spec(model, backend, f, opts.batch_for(f), mode, opts.img_size, opts.num_classes,
                                      opts.depth))
            if model in opts.ckpt_models and "train" in opts.modes and not is_baseline(model):
                specs += [Spec(model, backend, f, opts.batch_for(f), "train", opts.img_size, opts.num_classes,
                               opts.depth, use_checkpoint=True) for f in frames]
    return specs


def memory_fit_specs(opts: Options, backends: list[str]) -> list[Spec]:
    """VideoMamba-M (default), 64 frames, batch 8, training with every block checkpointed,
    on each fast backend (torch only when no other is available)."""
    fast = [b for b in backends if b != "torch"] or backends
    return [Spec(opts.memory_fit_model, b, opts.memory_fit_frames, opts.memory_fit_batch, "train", opts.img_size,
                 opts.num_classes, opts.depth, use_checkpoint=True) for b in fast]


def parse_profile(text: str, opts: Options, backends: list[str]) -> list[Spec]:
    """``MODEL:BACKEND:FRAMES[:MODE]``; BACKEND ``all`` expands to every available one
    (``sdpa`` for a baseline); MODE defaults to train."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"--profile wants MODEL:BACKEND:FRAMES[:MODE], got {text!r}")
    model, backend, frames = parts[0], parts[1], int(parts[2])
    mode = parts[3] if len(parts) == 4 else "train"
    if is_baseline(model):
        chosen = ["sdpa"]
    else:
        chosen = backends if backend == "all" else [backend]
    return [Spec(model, b, frames, opts.batch_for(frames), mode, opts.img_size, opts.num_classes, opts.depth)
            for b in chosen]


# --------------------------------------------------------------------------------------------
# workers


def _setup_torch(device) -> None:
    import torch

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def _device(name: str | None):
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def execute(task: dict, emit: Emit) -> None:
    """Run one task in this process. ``task``: ``{"kind": "env"|"bench"|"check"|"profile",
    "options": Options as dict, "specs": [Spec dict], "deadline": epoch s | None, ...}``."""
    opts = Options(**{**task["options"], "batch": {int(k): v for k, v in task["options"].get("batch", {}).items()}})
    device = _device(opts.device)
    _setup_torch(device)
    kind = task["kind"]
    if kind == "env":
        emit({"type": "env", **environment(device)})
    elif kind == "bench":
        run_specs([Spec(**s) for s in task["specs"]], device, opts, emit, task.get("deadline"))
    elif kind == "check":
        from .checks import run_checks

        lo, hi = min(opts.frames), max(opts.frames)
        run_checks(device, task["backends"], emit, img_size=opts.img_size, frames=(lo, hi), deadline=task.get("deadline"))
    elif kind == "profile":
        from .profiling import profile_spec

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
    """Entry of ``--worker``: run the task, append JSON lines to ``task["results"]``."""
    task = json.loads(Path(task_path).read_text())
    with open(task["results"], "a") as fh:

        def emit(record: dict) -> None:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()

        execute(task, emit)
    return 0


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


class Runner:
    """Runs tasks in-process or in worker subprocesses, streaming records to ``on_record``."""

    def __init__(self, opts: Options, on_record: Emit):
        self.opts, self.on_record = opts, on_record
        self.logs = Path(opts.out) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, task: dict) -> dict:
        """Returns ``{"rc", "log_tail", "records"}``; rc is None when killed at the deadline."""
        task = {"options": _options_dict(self.opts), **task}
        records: list[dict] = []

        def emit(rec: dict) -> None:
            records.append(rec)
            self.on_record(rec)

        if not self.opts.isolate:
            try:
                execute(task, emit)
                return {"rc": 0, "log_tail": "", "records": records}
            except Exception as err:  # noqa: BLE001 - reported like a crashed worker
                log.exception("task %s failed", name)
                return {"rc": 1, "log_tail": f"{type(err).__name__}: {err}", "records": records}
        return self._run_subprocess(name, task, emit, records)

    def _run_subprocess(self, name: str, task: dict, emit: Emit, records: list) -> dict:
        results, log_path = self.logs / f"{name}.jsonl", self.logs / f"{name}.log"
        results.write_text("")
        task_path = self.logs / f"{name}.task.json"
        task_path.write_text(json.dumps({**task, "results": str(results)}, default=str))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "videomamba.bench.gpu", "--worker", str(task_path)]
        if log.isEnabledFor(logging.DEBUG):
            cmd.insert(cmd.index("--worker"), "-v")
        deadline = task.get("deadline")
        with open(log_path, "w") as log_fh:
            proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env)
            rc, pos, buf = None, 0, ""
            while True:
                done = proc.poll() is not None
                with open(results) as fh:
                    fh.seek(pos)
                    buf += fh.read()
                    pos = fh.tell()
                *lines, buf = buf.split("\n")
                for line in lines:
                    if line.strip():
                        emit(json.loads(line))
                if done:
                    rc = proc.returncode
                    break
                if deadline is not None and time.time() > deadline + WORKER_GRACE_S:
                    log.warning("worker %s past its deadline: killing pid %d", name, proc.pid)
                    proc.kill()
                    proc.wait()
                    break
                time.sleep(0.25)
        tail = log_path.read_text(errors="replace")[-2000:]
        if rc not in (0, None):
            log.warning("worker %s exited rc=%s; log tail:\n%s", name, rc, tail[-800:])
        return {"rc": rc, "log_tail": tail, "records": records}


def _options_dict(opts: Options) -> dict:
    d = asdict(opts)
    d["batch"] = {str(k): v for k, v in opts.batch.items()}
    return d


def _fill_missing(specs: list[Spec], got: dict[int, dict], outcome: dict) -> list[dict]:
    """Rows for specs a worker never reported (crash or kill), in spec order."""
    rows = []
    for i, spec in enumerate(specs):
        if i in got:
            rows.append(got[i])
            continue
        if outcome["rc"] is None:
            why = "skipped: time limit (worker killed)"
        else:
            last = outcome["log_tail"].strip().splitlines()[-1:] or ["no output"]
            why = f"worker exited rc={outcome['rc']} before this config: {last[0][:300]}"
        rows.append({**base_row(spec), "status": "skipped" if outcome["rc"] is None else "error", "error": why})
    return rows


# --------------------------------------------------------------------------------------------
# the whole run


def run(opts: Options, on_update: Callable[[dict], None] | None = None) -> dict:
    """Run every enabled section; returns the results dict (also written to ``opts.out``
    after each section; rows stream into ``logs/<section>.jsonl`` as they finish). See
    :mod:`videomamba.bench.report` for the layout."""
    from . import report

    t_start = time.time()
    t_end = t_start + opts.time_limit_s if opts.time_limit_s else None
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    results = report.new_results(opts)

    def save() -> None:
        report.finalize(results)
        report.write(results, out, plot=False)
        if on_update:
            on_update(results)

    def on_record(rec: dict) -> None:
        if rec.get("type") == "row":
            r = rec
            what = f"{r['clips_per_s']:.1f} clips/s, {report.gib(r['peak_mem_bytes'])} GiB" if r["status"] == "ok" else r["error"]
            log.info("%-58s %s", Spec(**{k: r[k] for k in Spec.__dataclass_fields__}).label(), what)
        elif rec.get("type") == "check":
            log.info("check %s", report.check_line(rec))

    runner = Runner(opts, on_record)

    def section_deadline(reserve_s: float, cap_s: float | None = None) -> float | None:
        d = None if t_end is None else t_end - reserve_s
        if cap_s is not None:
            d = time.time() + cap_s if d is None else min(d, time.time() + cap_s)
        return d

    env_out = runner.run("env", {"kind": "env"})
    env = next((r for r in env_out["records"] if r.get("type") == "env"), None)
    if env is None:
        raise RuntimeError(f"environment probe failed (rc={env_out['rc']}):\n{env_out['log_tail']}")
    env.pop("type")
    results["env"] = env
    avail = env["backends"]
    wanted = avail if "all" in opts.backends else opts.backends
    backends = [b for b in BACKEND_ORDER if b in wanted] + [b for b in wanted if b not in BACKEND_ORDER]
    runnable = [b for b in backends if b in avail]
    log.info("device %s; backends available %s, benchmarking %s", env["device"], avail, backends)
    save()

    prof_specs = [s for text in opts.profile for s in parse_profile(text, opts, runnable)]
    reserve_profile = 10.0 + 15.0 * len(prof_specs) if prof_specs else 0.0
    reserve_after_bench = (60.0 if opts.memory_fit else 0.0) + reserve_profile
    if opts.check:
        out_c = runner.run("check", {"kind": "check", "backends": runnable,
                                     "deadline": section_deadline(reserve_after_bench + 60.0, cap_s=100.0)})
        results["checks"] = report.collect_checks(out_c)
        save()

    if opts.bench:
        specs = bench_specs(opts, backends)
        groups: dict[str, list[Spec]] = {}
        for s in specs:
            groups.setdefault(s.backend, []).append(s)
        order = [b for b in ("sdpa", *backends) if b in groups]
        for k, backend in enumerate(order):
            group = groups[backend]
            if backend != "sdpa" and backend not in avail:
                why = env.get("backends_error") or f"backend {backend!r} not available here (available: {avail})"
                results["rows"].extend({**base_row(s), "status": "unavailable", "error": why} for s in group)
                save()
                continue
            deadline = section_deadline(reserve_after_bench)
            if deadline is not None:  # equal share of what is left among the remaining groups
                deadline = time.time() + (deadline - time.time()) / (len(order) - k)
            outcome = runner.run(f"bench_{backend}", {"kind": "bench", "specs": [asdict(s) for s in group],
                                                      "deadline": deadline})
            got = {r["index"]: _strip(r) for r in outcome["records"] if r.get("type") == "row"}
            results["rows"].extend(_fill_missing(group, got, outcome))
            save()

    if opts.memory_fit:
        specs = memory_fit_specs(opts, runnable)
        outcome = runner.run("memory_fit", {"kind": "bench", "specs": [asdict(s) for s in specs],
                                            "deadline": section_deadline(reserve_profile)})
        got = {r["index"]: _strip(r) for r in outcome["records"] if r.get("type") == "row"}
        results["memory_fit"] = _fill_missing(specs, got, outcome)
        save()

    if prof_specs:
        outcome = runner.run("profile", {"kind": "profile", "specs": [asdict(s) for s in prof_specs],
                                         "deadline": section_deadline(0.0)})
        results["profiles"] = [_strip(r) for r in outcome["records"] if r.get("type") == "profile"]
        if outcome["rc"] not in (0,):
            results["profiles"].append({"error": f"profile worker rc={outcome['rc']}: {outcome['log_tail'][-500:]}"})
        save()

    results["meta"]["wall_s"] = time.time() - t_start
    report.finalize(results)
    report.write(results, out, plot=True)
    return results


def _strip(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("type", "index")}


# --------------------------------------------------------------------------------------------
# command line (the ``videomamba bench`` command and ``python -m videomamba.bench.gpu``)


def add_arguments(p) -> None:
    """Options of ``videomamba bench``."""
    import argparse

    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--models", type=csv, default=None,
                   help=f"comma list (default: {','.join([*VIDEOMAMBA_MODELS, DEFAULT_BASELINE])})")
    p.add_argument("--backends", type=csv, default=["all"], help="all | comma list of torch,mamba_ssm,triton")
    p.add_argument("--frames", type=lambda s: [int(x) for x in csv(s)], default=list(DEFAULT_FRAMES))
    p.add_argument("--batch", default=None, help="N, or FRAMES:N,... (default 256 // frames)")
    p.add_argument("--mode", type=csv, default=list(MODES), help="infer,train")
    p.add_argument("--ckpt-models", type=csv, default=[],
                   help="also train these models with every block checkpointed (rows 'BACKEND+ckpt')")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="quick", action="store_true", default=True,
                        help="default: non-Tiny models only at the smallest and largest frame count, short budgets")
    preset.add_argument("--full", dest="quick", action="store_false", help="every model at every frame count")
    p.add_argument("--repeats", type=int, default=None, help="timed steps per config, at most (quick 10, full 20)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps, at least 2 (quick 2, full 5)")
    p.add_argument("--config-budget", type=float, default=None, help="seconds per config (quick 2, full 10)")
    p.add_argument("--max-step", type=float, default=None,
                   help="a step slower than this (s) skips larger frame counts of its series (quick 5, full 20)")
    p.add_argument("--time-limit", type=float, default=None, help="whole run, seconds; sections and groups share it")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=400)
    p.add_argument("--depth", type=int, default=None, help="override every model's depth (tests)")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help="baseline the ratios refer to")
    p.add_argument("--out", default="benchmarks/latest", help="output directory")
    p.add_argument("--check", action="store_true", help="GPU correctness: backends agree, published keys load strict")
    p.add_argument("--memory-fit", action="store_true", help="VideoMamba-M, 64 frames, batch 8, checkpointed training")
    p.add_argument("--profile", action="append", default=[], metavar="MODEL:BACKEND:FRAMES[:MODE]",
                   help="torch.profiler top kernels of one step (BACKEND may be 'all'); repeatable")
    p.add_argument("--no-bench", dest="bench", action="store_false", default=None, help="only the other sections")
    p.add_argument("--bench", dest="bench", action="store_true",
                   help="the speed benchmark too when --check is given (--check alone only checks)")
    p.add_argument("--no-isolate", dest="isolate", action="store_false", help="run everything in this process")
    p.add_argument("--device", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)


def options_from_args(args) -> Options:
    quick = args.quick
    pick = lambda v, q, f: v if v is not None else (q if quick else f)  # noqa: E731
    return Options(
        models=args.models or [*VIDEOMAMBA_MODELS, DEFAULT_BASELINE], backends=args.backends, frames=args.frames,
        batch=parse_batch(args.batch, args.frames), modes=args.mode, ckpt_models=args.ckpt_models, quick=quick,
        repeats=pick(args.repeats, 10, 20), warmup=pick(args.warmup, 2, 5),
        config_budget_s=pick(args.config_budget, 2.0, 10.0), max_step_s=pick(args.max_step, 5.0, 20.0),
        time_limit_s=args.time_limit, img_size=args.img_size, num_classes=args.num_classes, depth=args.depth,
        dtype=args.dtype, baseline=args.baseline, out=args.out,
        bench=args.bench if args.bench is not None else not args.check,  # --check alone: only the checks
        check=args.check,
        memory_fit=args.memory_fit, profile=args.profile, isolate=args.isolate, device=args.device,
        argv=_command_line(),
    )


def _command_line() -> list[str]:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("gpu.py", "__main__.py")):
        argv[0:1] = ["python", "-m", "videomamba.bench.gpu"]
    elif argv:
        argv[0] = Path(argv[0]).name
    return argv


def main(argv: list[str] | None = None) -> int:
    from videomamba.commands.bench import main as command_main

    return command_main(argv)


__all__ = ["Spec", "Options", "run", "measure", "run_specs", "bench_specs", "time_steps", "default_batch",
           "add_arguments", "options_from_args", "ROW_FIELDS", "ROW_STATUSES", "SCHEMA_VERSION", "main"]

if __name__ == "__main__":
    from videomamba.bench import gpu as _gpu  # run from the package module, not __main__

    sys.exit(_gpu.main())
