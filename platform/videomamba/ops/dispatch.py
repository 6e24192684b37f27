"""Backend dispatch of the functional ops: one table per op (backend name -> implementation),
backend probing and resolution (``"auto"``), and the public functions that
:mod:`videomamba.ops` re-exports.

Backends: ``"torch"`` (chunked pure PyTorch, CPU and GPU, autograd), ``"triton"`` (Triton
kernels, CUDA or ``TRITON_INTERPRET=1``), ``"mamba_ssm"`` (the mamba-ssm / causal-conv1d CUDA
extensions), ``"reference"`` (sequential, tests) and ``"auto"``: for CUDA tensors the fastest
installed backend for the shape at hand where the caller measures (:func:`fastest_backend`,
used by the BiMamba mixer), else triton > mamba_ssm > torch (the static order: since 2026-12-02 the
Triton scan is 1.6-1.8x mamba-ssm's kernels forward + backward and faster in the forward alone at
every Ti/S/M shape, and Ti trains faster on it; benchmarks/2026-12-02-h200-session9); torch for CPU tensors. Optional
backends are imported lazily, on first use.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os

import torch

from . import bimamba_inner as _bi_inner
from . import causal_conv1d as _conv
from . import mamba_inner as _inner
from . import selective_scan_ref as _ref
from . import selective_scan_torch as _torch_scan

__all__ = [
    "BACKENDS", "SELECTIVE_SCAN", "fastest_backend", "bi_selective_scan_mamba_ssm", "BI_SELECTIVE_SCAN", "CAUSAL_CONV1D",
    "available_backends", "backend_status", "check_backend", "resolve_backend", "take_along_seq",
    "selective_scan_fn", "bi_selective_scan_fn", "causal_conv1d_fn", "mamba_inner_fn", "has_fused_inner", "bimamba_inner_fn",
    "has_fused_mixer", "bimamba_fn",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "triton", "mamba_ssm", "reference")
_PREFERENCE_CUDA = ("triton", "mamba_ssm", "torch")


def _import_error(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as err:  # ImportError, or a broken CUDA extension (OSError, RuntimeError)
        return f"{type(err).__name__}: {err}"
    return None


@functools.lru_cache(maxsize=None)
def _has_causal_conv1d() -> bool:
    return _import_error("causal_conv1d") is None


@functools.lru_cache(maxsize=None)
def _probe(name: str) -> tuple[bool, bool, str]:
    """(usable on CUDA tensors, usable on CPU tensors, explanation)."""
    cuda = torch.cuda.is_available()
    if name in ("torch", "reference"):
        return cuda, True, "built in" + ("" if name == "torch" else " (sequential; tests)")
    if name == "mamba_ssm":
        err = _import_error("mamba_ssm.ops.selective_scan_interface")
        if err:
            return False, False, f"mamba_ssm not importable ({err})"
        conv = "causal_conv1d kernel" if _has_causal_conv1d() else "torch conv1d (causal_conv1d missing)"
        return cuda, False, f"mamba_ssm CUDA kernels, {conv}" + ("" if cuda else "; no CUDA device")
    if name == "triton":
        err = _import_error("triton")
        if err:
            return False, False, f"triton not importable ({err})"
        err = _import_error("videomamba.ops.triton")
        if err:
            return False, False, f"videomamba.ops.triton not importable ({err})"
        interpret = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
        note = "Triton kernels" + (" (interpreter, TRITON_INTERPRET=1)" if interpret else "")
        if not (cuda or interpret):
            note += "; no CUDA device and TRITON_INTERPRET unset"
        return cuda, interpret, note
    raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")


def backend_status() -> dict[str, str]:
    """Backend name -> one line: available where, or why not."""
    out = {}
    for name in BACKENDS[1:]:
        on_cuda, on_cpu, note = _probe(name)
        where = [d for d, ok in (("cuda", on_cuda), ("cpu", on_cpu)) if ok]
        out[name] = f"{'available (' + ', '.join(where) + ')' if where else 'unavailable'}: {note}"
    return out


def available_backends() -> list[str]:
    """Backends that import and run on this machine (on any of its devices), fastest first."""
    return [name for name in (*_PREFERENCE_CUDA, "reference") if any(_probe(name)[:2])]


def check_backend(backend: str) -> str:
    """Validate a backend name (ValueError listing the valid names)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    return backend


_announced: set[tuple[str, str, str]] = set()


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """The concrete backend for tensors on ``device`` (``"auto"`` resolved; logged once per
    choice). Raises RuntimeError when the requested backend cannot run there."""
    device = torch.device(device)
    check_backend(backend)
    is_cuda = device.type == "cuda"
    if backend == "auto":
        chosen = next(name for name in _PREFERENCE_CUDA if _probe(name)[0]) if is_cuda else "torch"
    else:
        on_cuda, on_cpu, note = _probe(backend)
        if not (on_cuda if is_cuda else on_cpu):
            raise RuntimeError(
                f"backend {backend!r} cannot run on {device.type} tensors here ({note}); "
                f"available: {available_backends()}")
        chosen = backend
    key = (backend, device.type, chosen)
    if key not in _announced:
        _announced.add(key)
        logger.info("selective scan backend for %s tensors: %s (requested %s)", device.type, chosen, backend)
    return chosen


_fastest: dict[tuple, str] = {}


def fastest_backend(key: tuple, trial, device: torch.device | str, *, repeats: int = 3) -> str:
    """``"auto"`` for one shape: the fastest installed CUDA backend for the op that ``trial``
    runs, measured once per ``key`` and cached; the choice and the timings are logged once.

    ``trial(backend)`` runs the op once on inputs of the shape at hand (forward, and backward
    when training). Each CUDA candidate (``mamba_ssm``, ``triton``; ``torch`` only when neither
    is installed) runs once to warm up (Triton compiles there), then ``repeats`` times between
    CUDA events; the median decides. Without a choice to make (one candidate, a CPU device, CUDA
    graph capture, ``torch.compile`` tracing, ``VIDEOMAMBA_AUTO_TUNE=0``) it returns the static
    preference of :func:`resolve_backend` without timing."""
    device = torch.device(device)
    if key in _fastest:
        return _fastest[key]
    static = resolve_backend("auto", device)
    candidates = [n for n in _PREFERENCE_CUDA[:-1] if device.type == "cuda" and _probe(n)[0]]
    if (len(candidates) < 2 or os.environ.get("VIDEOMAMBA_AUTO_TUNE", "1") == "0"
            or torch.cuda.is_current_stream_capturing() or torch.compiler.is_compiling()):
        return static
    ms = {}
    for name in candidates:
        try:
            trial(name)
            times = []
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                trial(name)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            ms[name] = sorted(times)[len(times) // 2]
        except Exception as err:  # noqa: BLE001 - a candidate that fails here is not chosen
            logger.warning("auto backend: %s failed its trial on %s (%s: %s)", name, key, type(err).__name__, err)
    chosen = min(ms, key=ms.get) if ms else static
    _fastest[key] = chosen
    logger.info("auto backend for %s: %s (%s)", key, chosen,
                ", ".join(f"{n} {t:.3f} ms" for n, t in sorted(ms.items(), key=lambda kv: kv[1])))
    return chosen


def _flip(*ts):
    return tuple(None if t is None else t.flip(-1) for t in ts)


def _flipped(fn):
    """A one-direction scan without ``reverse`` made reversible by flip -> scan -> flip."""
    def scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse):
        if reverse:
            u, delta, B, C, z = _flip(u, delta, B, C, z)
        out = fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
        if reverse:
            return (out[0].flip(-1), out[1]) if return_last_state else out.flip(-1)
        return out
    return scan


def _scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse):
    return _torch_scan.selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                            return_last_state, reverse=reverse)


def _scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse):
    from .triton import selective_scan_triton

    return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                                 reverse=reverse)


def _mamba_ssm_scan(*args):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as fn

    return fn(*args)


# op -> backend -> implementation (mamba-ssm's argument order, plus ``reverse``)
SELECTIVE_SCAN = {
    "torch": _scan_torch,
    "triton": _scan_triton,
    "mamba_ssm": _flipped(_mamba_ssm_scan),
    "reference": _flipped(_ref.selective_scan_ref),
}


def _scan_one(backend, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse):
    return SELECTIVE_SCAN[backend](u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse)


def selective_scan_fn(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, backend="auto", reverse=False,
):
    """Selective scan with mamba-ssm semantics.

    u, delta, z: (B, D, L); A: (D, N) real; B, C: (B, N, L) or (B, G, N, L); D, delta_bias: (D,).
    Returns y (B, D, L) in u's dtype (and the last state (B, D, N) when ``return_last_state``).
    ``reverse=True`` scans from position L-1 to 0 (= flip -> scan -> flip).
    """
    backend = resolve_backend(backend, u.device)
    return _scan_one(backend, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse)


def take_along_seq(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, C, L) gathered along L by index (L',) or (B, L')."""
    if index.dim() == 1:
        return x.index_select(-1, index)
    return torch.gather(x, -1, index[:, None, :].expand(-1, x.shape[1], -1))


def _bi_triton(*args):
    from .triton import bi_selective_scan_triton

    return bi_selective_scan_triton(*args)


def bi_selective_scan_mamba_ssm(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                                u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, delta_softplus=True):
    """Both directions in ONE mamba-ssm ``selective_scan_fn`` launch (VMamba's packing): the
    backward direction's inputs flipped and stacked after the forward's along channels
    (u, delta, z: (B, 2D, L); A, D, delta_bias: (2D, ...)), B and C as two groups
    ((B, 2, N, L); mamba-ssm's grouped "variable B/C"). One forward and one backward kernel per
    layer instead of two of each; the copies into the packed layout are the price."""
    def cat(f, b):
        return None if f is None else torch.cat([f, b], dim=0)

    u = torch.cat([u_f, u_b.flip(-1)], dim=1)
    delta = torch.cat([delta_f, delta_b.flip(-1)], dim=1)
    zz = torch.cat([z, z.flip(-1)], dim=1)
    B = torch.stack([B_f, B_b.flip(-1)], dim=1) if B_f.dim() == 3 else torch.cat([B_f, B_b.flip(-1)], dim=1)
    C = torch.stack([C_f, C_b.flip(-1)], dim=1) if C_f.dim() == 3 else torch.cat([C_f, C_b.flip(-1)], dim=1)
    D = cat(D_f, D_b) if (D_f is None) == (D_b is None) else None
    bias = cat(delta_bias_f, delta_bias_b) if (delta_bias_f is None) == (delta_bias_b is None) else None
    if D is None and (D_f is not None or D_b is not None) or bias is None and (
            delta_bias_f is not None or delta_bias_b is not None):
        raise ValueError("bi_selective_scan_mamba_ssm: D and delta_bias must be given for both directions or neither")
    y = _mamba_ssm_scan(u, delta, torch.cat([A_f, A_b], dim=0), B.contiguous(), C.contiguous(), D, zz, bias,
                        delta_softplus)
    dim = u_f.shape[1]
    return y[:, :dim] + y[:, dim:].flip(-1)


# backends with both directions as one op (sequences in original order, no ``index_b``); with
# ``index_b`` every backend runs two one-direction scans
BI_SELECTIVE_SCAN = {
    "torch": _torch_scan.bi_selective_scan_torch,
    "triton": _bi_triton,
    "reference": _ref.bi_selective_scan_ref,
    "mamba_ssm": bi_selective_scan_mamba_ssm,
}


def bi_selective_scan_fn(
    u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
    u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b,
    z, delta_softplus=True, backend="auto", index_b=None,
):
    """Both directions of the BiMamba mixer. Returns ``y_f + y_b`` (B, D, L), each
    ``y = (scan + D u) * silu(z)``.

    All inputs are in ORIGINAL order and the backward direction is scanned from position L-1
    to 0 (the published flip -> scan -> flip), unless ``index_b`` ((L,) or (B, L) long) is given:
    then the backward inputs ``u_b, delta_b, B_b, C_b`` are laid out in the order ``index_b``
    (their position j holds token ``index_b[j]``), scanned from j = L-1 to 0, gated by
    ``z[..., index_b]``, and ``y_b`` is scattered back to the token positions. Used by the
    split-direction scan order (forward spatial-first, backward temporal-first).
    """
    backend = resolve_backend(backend, u_f.device)
    fused = BI_SELECTIVE_SCAN.get(backend)
    if index_b is None and fused is not None:
        return fused(u_f, delta_f, A_f, B_f, C_f, D_f, delta_bias_f,
                     u_b, delta_b, A_b, B_b, C_b, D_b, delta_bias_b, z, delta_softplus)
    y_f = _scan_one(backend, u_f, delta_f, A_f, B_f, C_f, D_f, z, delta_bias_f, delta_softplus, False, False)
    z_b = z if index_b is None else take_along_seq(z, index_b)
    y_b = _scan_one(backend, u_b, delta_b, A_b, B_b, C_b, D_b, z_b, delta_bias_b, delta_softplus, False, True)
    if index_b is not None:
        y_b = take_along_seq(y_b, torch.argsort(index_b, dim=-1))
    return y_f + y_b


def _conv_mamba_ssm(x, weight, bias, activation, reverse):
    if _has_causal_conv1d():
        return _conv.causal_conv1d_cuda(x, weight, bias, activation, reverse)
    return _conv.causal_conv1d_torch(x, weight, bias, activation, reverse)


def _conv_triton(x, weight, bias, activation, reverse):
    from .triton import causal_conv1d_triton

    return causal_conv1d_triton(x, weight, bias, activation, reverse)


CAUSAL_CONV1D = {
    "torch": _conv.causal_conv1d_torch,
    "triton": _conv_triton,
    "mamba_ssm": _conv_mamba_ssm,
    "reference": _conv.causal_conv1d_ref,
}


def causal_conv1d_fn(x, weight, bias=None, activation="silu", reverse=False, backend="auto"):
    """Depthwise causal conv over (B, D, L) with weight (D, K), bias (D,), then ``activation``
    (``"silu"`` or None). ``reverse=True``: the anti-causal conv (= flip -> conv -> flip).
    The ``mamba_ssm`` backend uses the causal-conv1d kernel when installed (else the PyTorch
    conv), ``triton`` the Triton kernels (:func:`videomamba.ops.triton.causal_conv1d_triton`),
    ``torch`` the PyTorch conv, ``reference`` the tap loop."""
    backend = resolve_backend(backend, x.device)
    return CAUSAL_CONV1D[backend](x, weight, bias, activation, reverse)


def has_fused_inner(backend: str, device: torch.device | str) -> bool:
    """Whether ``mamba_inner_fn`` runs mamba-ssm's fused function for tensors on ``device``
    (backend ``mamba_ssm`` resolved there, with the causal-conv1d kernel installed)."""
    return resolve_backend(backend, device) == "mamba_ssm" and _has_causal_conv1d()


def mamba_inner_fn(
    xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight, out_proj_bias,
    A, D, delta_bias, backend="auto",
):
    """One causal (forward-scanning) Mamba direction after ``in_proj``: xz (B, 2 d_inner, L),
    conv1d_weight (d_inner, 1, K), x_proj_weight (dt_rank + 2N, d_inner), delta_proj_weight
    (d_inner, dt_rank), out_proj_weight (d_model, d_inner), A (d_inner, N) -> (B, L, d_model).
    mamba-ssm's fused ``mamba_inner_fn`` where available (:func:`has_fused_inner`), else the
    same computation composed from this module's ops on ``backend``."""
    if has_fused_inner(backend, xz.device):
        from mamba_ssm.ops.selective_scan_interface import mamba_inner_fn as fused

        return fused(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight,
                     out_proj_bias, A, None, None, D, delta_bias, delta_softplus=True, checkpoint_lvl=1)

    def conv_fn(x, w, b):
        return causal_conv1d_fn(x, w, b, activation="silu", backend=backend)

    def scan_fn(u, delta, A_, B, C, D_, z, delta_bias_):
        return selective_scan_fn(u, delta, A_, B, C, D_, z, delta_bias_, delta_softplus=True, backend=backend)

    return _inner.mamba_inner_composed(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight,
                                       out_proj_weight, out_proj_bias, A, D, delta_bias,
                                       conv_fn=conv_fn, scan_fn=scan_fn)


def bimamba_inner_fn(xz, params_f, params_b, backend="auto", index_b=None, recompute: bool | None = None):
    """Both BiMamba directions after ``in_proj``: xz (B, 2 d_inner, L) -> y_f + y_b (B, d_inner, L).

    ``params_*`` = (conv_weight (d_inner, 1, K), conv_bias or None, x_proj_weight, dt_proj_weight,
    A (d_inner, N), D (d_inner,), delta_bias (d_inner,)). On ``triton``, while autograd records and
    without ``index_b``, the conv and projections are recomputed in the backward instead of saved
    (:class:`videomamba.ops.triton.BiMambaInnerTriton`); elsewhere the ops are composed
    under autograd. ``recompute`` forces one form (True needs ``triton`` and no ``index_b``)."""
    backend = resolve_backend(backend, xz.device)
    if recompute is None:
        recompute = (backend == "triton" and index_b is None and torch.is_grad_enabled()
                     and any(t is not None and t.requires_grad for t in (xz, *params_f, *params_b)))
    if recompute:
        if backend != "triton" or index_b is not None:
            raise ValueError(f"recompute=True needs backend 'triton' and no index_b (got {backend!r}, "
                             f"index_b {'set' if index_b is not None else 'None'})")
        from .triton import BiMambaInnerTriton

        return BiMambaInnerTriton.apply(xz, *params_f, *params_b)

    def conv_fn(x, w, b, reverse):
        return causal_conv1d_fn(x, w, b, activation="silu", reverse=reverse, backend=backend)

    if backend == "triton" and index_b is None:
        # both directions convolve the same x: one Triton launch (the kernel the recomputing form runs,
        # so both forms give the same bits)
        from .triton import bi_causal_conv1d_triton

        u = bi_causal_conv1d_triton(xz.chunk(2, dim=1)[0], params_f[0][:, 0], params_f[1], params_b[0][:, 0],
                                    params_b[1], "silu")

        def conv_fn(x, w, b, reverse):  # noqa: F811 - x is xz's x half, convolved above
            return u[1] if reverse else u[0]

    def bi_scan_fn(*args):
        return bi_selective_scan_fn(*args[:15], delta_softplus=True, backend=backend, index_b=args[15])

    return _bi_inner.bimamba_inner_composed(xz, params_f, params_b, conv_fn=conv_fn, bi_scan_fn=bi_scan_fn,
                                            take_fn=take_along_seq, index_b=index_b)


def has_fused_mixer(backend: str, device: torch.device | str, index_b=None) -> bool:
    """Whether :func:`bimamba_fn` has a fused form for tensors on ``device``: backend ``triton``
    resolved there, no ``index_b``."""
    return index_b is None and resolve_backend(backend, device) == "triton"


def bimamba_fn(hidden, in_proj_weight, in_proj_bias, params_f, params_b, out_proj_weight, out_proj_bias,
               backend="triton", save_states: bool | None = None):
    """The whole BiMamba mixer as one op: hidden (B, L, D) -> ``in_proj`` (weight (2 d_inner, D))
    -> both directions (``params_*`` as in :func:`bimamba_inner_fn`) -> ``out_proj`` (weight
    (D, d_inner)) -> (B, L, D). Backend ``triton`` only (:func:`has_fused_mixer`): one autograd
    function (:class:`videomamba.ops.triton.BiMambaTriton`) that saves ``hidden`` and the weights
    and recomputes the rest in its backward, the forward scan kernel included (``save_states``,
    default ``VIDEOMAMBA_TRITON_SAVE_STATES=1``: keep the scan's tile states and output instead).
    Raises ValueError on another backend."""
    if not has_fused_mixer(backend, hidden.device):
        raise ValueError(f"bimamba_fn needs backend 'triton' (got {backend!r} on {hidden.device})")
    from .triton import BiMambaTriton, save_scan_states

    save = save_scan_states() if save_states is None else bool(save_states)
    return BiMambaTriton.apply(hidden, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, save,
                               *params_f, *params_b)
