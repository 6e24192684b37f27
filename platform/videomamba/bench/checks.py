"""GPU correctness checks of the benchmark run (``videomamba bench --check``).

* ``keys``: the model's state dict has exactly the published key layout (names and shapes,
  see /work/shared/videomamba-facts.md), so released checkpoints load strict.
* ``load``: a state dict restricted to the published keys loads with ``strict=True`` into the
  model of every backend.
* ``agreement``: a shallow model (``depth`` 2) with fixed random weights and inputs; every
  backend's logits and parameter gradients (loss = cross-entropy on fixed labels) against the
  torch backend in fp32 (TF32 off), in fp32 and under bf16 autocast; ``rel`` is
  ``max|x - ref| / max|ref|`` per tensor (worst parameter named). Cases: 8 frames (L = 1569),
  64 frames (L = 12545), and every other scan order at 8 frames in fp32.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Callable

from .floor import first_int
from .measure import autocast, is_fatal_cuda

log = logging.getLogger(__name__)

# published state-dict layout: name -> shape as a function of the model's dims
PUBLISHED_GLOBAL = ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed",
                    "temporal_pos_embedding", "norm_f.weight", "head.weight", "head.bias")
PUBLISHED_MIXER = ("in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight",
                   "dt_proj.bias", "A_log", "D", "out_proj.weight", "conv1d_b.weight", "conv1d_b.bias",
                   "x_proj_b.weight", "dt_proj_b.weight", "dt_proj_b.bias", "A_b_log", "D_b")
TOLERANCES = {"fp32": 2e-3, "bf16": 1e-1}  # rel, applied to logits and to every gradient


def published_shapes(*, embed_dim: int, depth: int, num_frames: int, img_size: int, num_classes: int,
                     patch_size: int = 16, kernel_size: int = 1, d_state: int = 16, d_conv: int = 4,
                     expand: int = 2) -> dict[str, tuple[int, ...]]:
    """Published key -> shape for a VideoMamba of these dims."""
    d, e = embed_dim, expand * embed_dim
    r = math.ceil(d / 16)
    n = (img_size // patch_size) ** 2
    shapes = {
        "patch_embed.proj.weight": (d, 3, kernel_size, patch_size, patch_size), "patch_embed.proj.bias": (d,),
        "cls_token": (1, 1, d), "pos_embed": (1, n + 1, d), "temporal_pos_embedding": (1, num_frames // kernel_size, d),
        "norm_f.weight": (d,), "head.weight": (num_classes, d), "head.bias": (num_classes,),
    }
    mixer = {"in_proj.weight": (2 * e, d), "out_proj.weight": (d, e)}
    for sfx in ("", "_b"):
        mixer.update({f"conv1d{sfx}.weight": (e, 1, d_conv), f"conv1d{sfx}.bias": (e,),
                      f"x_proj{sfx}.weight": (r + 2 * d_state, e), f"dt_proj{sfx}.weight": (e, r),
                      f"dt_proj{sfx}.bias": (e,), f"A{sfx}_log": (e, d_state), f"D{sfx}": (e,)})
    for i in range(depth):
        shapes[f"layers.{i}.norm.weight"] = (d,)
        shapes.update({f"layers.{i}.mixer.{k}": v for k, v in mixer.items()})
    assert set(mixer) == set(PUBLISHED_MIXER)
    return shapes


def key_report(model, shapes: dict[str, tuple[int, ...]]) -> dict:
    sd = model.state_dict()
    missing = sorted(set(shapes) - set(sd))
    unexpected = sorted(set(sd) - set(shapes))
    bad = sorted(f"{k}: {tuple(sd[k].shape)} != {shapes[k]}" for k in set(sd) & set(shapes)
                 if tuple(sd[k].shape) != shapes[k])
    return {"kind": "keys", "n_keys": len(shapes), "missing": missing, "unexpected": unexpected,
            "shape_mismatch": bad, "pass": not (missing or unexpected or bad)}


def _compare(x, ref) -> tuple[float, float]:
    diff = (x.detach().double() - ref.detach().double()).abs().max().item()
    scale = max(ref.detach().double().abs().max().item(), 1e-6)
    return diff, diff / scale


@contextlib.contextmanager
def _no_tf32():
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _forward_backward(model, video, labels, dtype: str):
    """logits (fp32) and {param name: grad} of cross-entropy on ``labels``."""
    import torch
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    with autocast(video.device, dtype):
        logits = model(video)
    F.cross_entropy(logits.float(), labels).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return logits.detach().float(), grads


def _scan_orders() -> tuple[str, list[str]]:
    """(default order, the other orders)."""
    import videomamba

    orders = list(getattr(videomamba, "SCAN_ORDERS", ["spatial_first"]))
    default = "spatial_first" if "spatial_first" in orders else orders[0]
    return default, [o for o in orders if o != default]


def _build(name: str, backend: str, frames: int, img_size: int, depth: int, num_classes: int, scan_order: str, device):
    import videomamba

    return videomamba.create_model(name, num_frames=frames, img_size=img_size, num_classes=num_classes, depth=depth,
                                   backend=backend, scan_order=scan_order).to(device).eval()


def reference_state(model, seed: int) -> dict:
    """The model's weights plus fixed N(0, 0.02) noise (so nothing sits at a symmetric init),
    as a state dict."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            v = v + 0.02 * torch.randn(v.shape, generator=gen).to(v)
        sd[k] = v.clone()
    return sd


def run_checks(device, backends: list[str], emit: Callable[[dict], None], *, model_name: str = "videomamba_tiny",
               depth: int = 2, img_size: int = 224, num_classes: int = 10, seed: int = 0,
               frames: tuple[int, int] = (8, 64),
               cases: list[tuple[int, int, str | None, tuple[str, ...]]] | None = None,
               deadline: float | None = None) -> None:
    """Emit ``{"type": "check", "kind": "keys"|"load"|"agreement", ..., "pass"}`` records.

    ``cases``: ``(frames, batch, scan_order or None for the default, dtypes)``; by default
    ``frames[0]`` at batch 2 and ``frames[1]`` at batch 1 in fp32 and bf16, and every other
    scan order at ``frames[0]``, batch 1, fp32.
    """
    import torch

    default_order, other_orders = _scan_orders()
    if cases is None:
        cases = [(frames[0], 2, None, ("fp32", "bf16")), (frames[1], 1, None, ("fp32", "bf16"))]
        cases += [(frames[0], 1, o, ("fp32",)) for o in other_orders]
    if "torch" not in backends:
        backends = ["torch", *backends]
    fatal = None
    first = True
    with _no_tf32():
        for frames, batch, order, dtypes in cases:
            order = order or default_order
            common = dict(frames=frames, batch=batch, scan_order=order)
            if deadline is not None and time.time() > deadline:
                for b in backends:
                    for dt in dtypes:
                        emit(_agree_row(b, dt, **common, error="skipped: time limit", ok=None))
                continue
            torch.manual_seed(seed)
            ref_model = _build(model_name, "torch", frames, img_size, depth, num_classes, order, device)
            ref_sd = reference_state(ref_model, seed)
            ref_model.load_state_dict(ref_sd)
            shapes = published_shapes(embed_dim=ref_model.embed_dim, depth=depth, num_frames=frames,
                                      img_size=img_size, num_classes=num_classes,
                                      patch_size=first_int(getattr(ref_model, "patch_size", 16)),
                                      kernel_size=first_int(getattr(ref_model, "kernel_size", 1)))
            if first:
                emit({"type": "check", **key_report(ref_model, shapes)})
            published = {k: v for k, v in ref_sd.items() if k in shapes}
            gen = torch.Generator(device=device).manual_seed(seed + 1)
            video = torch.randn(batch, 3, frames, img_size, img_size, device=device, generator=gen)
            labels = torch.randint(0, num_classes, (batch,), device=device, generator=gen)
            ref_logits, ref_grads = _forward_backward(ref_model, video, labels, "fp32")
            del ref_model
            for b in backends:
                if fatal:
                    for dt in dtypes:
                        emit(_agree_row(b, dt, **common, error=f"skipped: CUDA context lost ({fatal})", ok=None))
                    continue
                try:
                    model = _build(model_name, b, frames, img_size, depth, num_classes, order, device)
                except Exception as err:  # noqa: BLE001
                    for dt in dtypes:
                        emit(_agree_row(b, dt, **common, error=f"build: {type(err).__name__}: {err}", ok=False))
                    continue
                load_err = None
                try:
                    model.load_state_dict(published, strict=True)
                except Exception as err:  # noqa: BLE001
                    load_err = f"{type(err).__name__}: {str(err)[:500]}"
                if first:
                    emit({"type": "check", "kind": "load", "backend": b, "pass": load_err is None, "error": load_err})
                if load_err:  # fall back to the full state dict so agreement is still measured
                    model.load_state_dict(ref_sd, strict=False)
                for dt in dtypes:
                    try:
                        logits, grads = _forward_backward(model, video, labels, dt)
                        emit(_agreement(b, dt, common, logits, grads, ref_logits, ref_grads))
                    except Exception as err:  # noqa: BLE001
                        msg = f"{type(err).__name__}: {str(err)[:400]}"
                        emit(_agree_row(b, dt, **common, error=msg, ok=False))
                        if is_fatal_cuda(err):
                            fatal = msg[:120]
                            break
                del model
            first = False


def _agree_row(backend, dtype, *, frames, batch, scan_order, error=None, ok=None, **numbers) -> dict:
    row = {"type": "check", "kind": "agreement", "backend": backend, "dtype": dtype, "frames": frames, "batch": batch,
           "scan_order": scan_order, "logits_abs": None, "logits_rel": None, "grad_abs": None, "grad_rel": None,
           "grad_worst": None, "tol": TOLERANCES[dtype], "pass": ok, "error": error}
    row.update(numbers)
    return row


def _agreement(backend, dtype, common, logits, grads, ref_logits, ref_grads) -> dict:
    l_abs, l_rel = _compare(logits, ref_logits)
    g_abs = g_rel = 0.0
    worst = None
    missing = sorted(set(ref_grads) ^ set(grads))
    for name, ref in ref_grads.items():
        if name not in grads:
            continue
        a, r = _compare(grads[name], ref)
        g_abs = max(g_abs, a)
        if r > g_rel or worst is None:
            g_rel, worst = r, name
    tol = TOLERANCES[dtype]
    ok = l_rel <= tol and g_rel <= tol and not missing and math.isfinite(l_rel) and math.isfinite(g_rel)
    return _agree_row(backend, dtype, **common, ok=ok, logits_abs=l_abs, logits_rel=l_rel, grad_abs=g_abs,
                      grad_rel=g_rel, grad_worst=worst,
                      error=f"gradients missing/extra: {missing[:5]}" if missing else None)
