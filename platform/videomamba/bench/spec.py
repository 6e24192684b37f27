"""What a GPU benchmark run measures: the benchmark configurations (:class:`Spec`), the run's
:class:`Options`, the plans built from them, and the result-row schema.

A :class:`Spec` is one (model, backend, frames, batch, mode) configuration, ``backend`` being
``"sdpa"`` for the attention baselines; the plans (:func:`bench_specs`,
:func:`memory_fit_specs`, :func:`parse_profile`) turn :class:`Options` into specs. Each spec
becomes one row with the fields of :func:`base_row` (:data:`ROW_FIELDS`), its ``status`` one
of :data:`ROW_STATUSES`. Default batch per frame count: ``256 // frames`` (same for every
model at a frame count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

VIDEOMAMBA_MODELS = ("videomamba_tiny", "videomamba_small", "videomamba_middle")
DEFAULT_BASELINE = "attention_tiny"
BACKEND_ORDER = ("triton", "mamba_ssm", "torch")  # bench group order (slowest last)
DEFAULT_FRAMES = (8, 16, 32, 64)
MODES = ("infer", "train")
SCHEMA_VERSION = 1

Emit = Callable[[dict], None]  # receives one streamed record (row, check, profile, env)


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
    """Everything a run needs (built from the CLI by ``videomamba.commands.bench.options_from_args``)."""

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
    cuda_graphs: bool = False
    device: str | None = None
    argv: list[str] = field(default_factory=list)

    def batch_for(self, frames: int) -> int:
        return self.batch.get(frames) or default_batch(frames)

    def to_dict(self) -> dict:
        """JSON-ready dict (``batch`` keys as strings), as recorded in ``results.json`` and
        handed to worker subprocesses."""
        d = asdict(self)
        d["batch"] = {str(k): v for k, v in self.batch.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Options":
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "batch": {int(k): v for k, v in d.get("batch", {}).items()}})


def base_row(spec: Spec) -> dict:
    """A result row with every schema field (see :data:`ROW_FIELDS`)."""
    return {
        **asdict(spec), "status": None, "error": None, "step_ms": None, "step_ms_all": [], "clips_per_s": None,
        "peak_mem_bytes": None, "reserved_mem_bytes": None, "base_mem_bytes": None, "n_warmup": 0,
        "n_repeats": 0, "params": None, "dims": None, "wall_s": None,
    }


ROW_FIELDS = tuple(base_row(Spec("m", "b", 1, 1, "infer")))
ROW_STATUSES = ("ok", "OOM", "error", "skipped", "unavailable")


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


__all__ = ["BACKEND_ORDER", "DEFAULT_BASELINE", "DEFAULT_FRAMES", "MODES", "ROW_FIELDS", "ROW_STATUSES",
           "SCHEMA_VERSION", "VIDEOMAMBA_MODELS", "Emit", "Options", "Spec", "base_row", "bench_specs",
           "default_batch", "is_baseline", "memory_fit_specs", "parse_batch", "parse_profile", "series_label"]
