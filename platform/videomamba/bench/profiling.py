"""torch.profiler view of one benchmark step: where device time goes.

Kernels are bucketed by name into categories (scan, conv1d, gemm, attention, norm, copy,
optimizer, ...) so that scan vs projections vs copies is visible at a glance; the full
top-kernel table (by self device time) is written to ``profile_<model>_<backend>_<T>_<mode>.txt``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .measure import ModelCache, is_oom, make_step

# first match wins; patterns are matched against the lower-cased kernel / op name
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("scan", r"selective_scan|scan|ssm|sloop|^_(bi_)?(fwd|bwd)_kernel|cumsum|cumprod"),
    ("conv1d", r"causal_conv1d|conv1d|conv_depthwise|depthwise"),
    ("attention", r"flash|fmha|attention|sdpa|softmax"),
    ("norm", r"rms|layer_norm|layernorm|norm_"),
    ("optimizer", r"adam|multi_tensor|foreach"),
    ("conv3d/patch", r"implicit_gemm|fprop|dgrad|wgrad|conv3d|convolution|cudnn"),
    ("gemm", r"gemm|cutlass|xmma|nvjet|cublas|matmul|::mm\b|::bmm|addmm|linear|\bmm\b"),
    ("copy/layout", r"copy|transpose|permute|contiguous|cat|flip|index|gather|scatter|clone|fill|zero"),
    ("elementwise", r"elementwise|vectorized|silu|softplus|exp|mul|add|gelu|reduce|sum|where"),
)


def categorize(name: str) -> str:
    low = name.lower()
    for cat, pattern in CATEGORIES:
        if re.search(pattern, low):
            return cat
    return "other"


def _self_time_us(evt, device: bool) -> float:
    if not device:
        return float(evt.self_cpu_time_total)
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(evt, attr):
            return float(getattr(evt, attr))
    return 0.0


def kernel_table(prof, device: bool, top: int = 40) -> tuple[list[dict], dict[str, dict], float]:
    """``(top rows, categories, total_ms)`` from a finished profiler. On a GPU only device
    kernels count (self device time); on CPU the operators' self CPU time."""
    rows = []
    for evt in prof.key_averages():
        is_kernel = str(getattr(evt, "device_type", "")).endswith("CUDA")
        if device and not is_kernel:
            continue
        us = _self_time_us(evt, device)
        if us > 0:
            rows.append({"name": evt.key, "count": int(evt.count), "ms": us / 1e3, "category": categorize(evt.key)})
    if device and not rows:  # profiler without per-kernel rows: fall back to ops' device time
        rows = [{"name": e.key, "count": int(e.count), "ms": _self_time_us(e, True) / 1e3, "category": categorize(e.key)}
                for e in prof.key_averages() if _self_time_us(e, True) > 0]
    rows.sort(key=lambda r: -r["ms"])
    total = sum(r["ms"] for r in rows) or 1e-9
    cats: dict[str, dict] = {}
    for r in rows:
        r["pct"] = 100 * r["ms"] / total
        c = cats.setdefault(r["category"], {"ms": 0.0, "pct": 0.0, "kernels": 0})
        c["ms"] += r["ms"]
        c["pct"] += r["pct"]
        c["kernels"] += r["count"]
    cats = dict(sorted(cats.items(), key=lambda kv: -kv[1]["ms"]))
    return rows[:top], cats, total


def _is_ours(name: str) -> bool:
    return "videomamba/" in name and "videomamba/bench" not in name and ".py(" in name


def _our_frame(node) -> str | None:
    """The event itself when it is a Python frame of ours, else the innermost of ours in its
    recorded stack (some torch versions attach stacks to operators instead of Python events)."""
    if _is_ours(node.name):
        return node.name
    return next((f for f in (getattr(node, "stack", None) or []) if _is_ours(f)), None)


def source_table(prof, device: bool, top: int = 40) -> list[dict]:
    """Device time (CPU time without a GPU) by the line of videomamba code that issued it. Each
    operator's own kernels go to its nearest ``videomamba`` Python frame (not ``videomamba/bench``)
    among its callers, labelled with the operator and the outermost operator below that frame
    (``aten::copy_ < aten::matmul``: a copy inside a matmul). Backward operators go to their
    forward operator's line (autograd's sequence number), marked ``bwd``. Needs
    ``profile(with_stack=True)``. Rows ``{"where", "op", "ms", "count"}``, largest first."""
    events = [e for e in prof.events() if not str(getattr(e, "device_type", "")).endswith("CUDA")]

    def locate(evt):
        outer, node = evt.name, evt
        while node is not None:
            where = _our_frame(node)
            if where is not None:
                return where, outer
            if node.name.startswith("aten::"):
                outer = node.name
            if node.name.startswith("autograd::engine::evaluate_function"):
                return "bwd " + by_seq.get(node.sequence_nr, "(outside videomamba)"), outer
            node = node.cpu_parent
        return "(outside videomamba)", outer

    by_seq: dict[int, str] = {}
    for e in events:
        if e.sequence_nr is not None and e.sequence_nr >= 0 and e.sequence_nr not in by_seq \
                and not e.name.startswith("autograd::"):
            where, _ = locate(e)
            if not where.startswith("bwd "):
                by_seq[e.sequence_nr] = where
    acc: dict[tuple[str, str], list] = {}
    for evt in events:
        us = sum(k.duration for k in getattr(evt, "kernels", [])) if device else float(evt.self_cpu_time_total)
        if us <= 0 or not evt.name.startswith("aten::"):
            continue
        where, outer = locate(evt)
        op = evt.name if outer == evt.name else f"{evt.name} < {outer}"
        row = acc.setdefault((where, op), [0.0, 0])
        row[0] += us / 1e3
        row[1] += 1
    rows = [{"where": w, "op": op.replace("aten::", ""), "ms": v[0], "count": v[1]} for (w, op), v in acc.items()]
    rows.sort(key=lambda r: -r["ms"])
    return rows[:top]


def format_sources(rows: list[dict]) -> str:
    note = ("  (no Python frames were recorded with the operators: this torch / Python gives no stacks here;"
            " see the top kernels)") if rows and all("outside videomamba" in r["where"] for r in rows) else None
    lines = ["", "by source line (operator self time on the device):"] + ([note] if note else []) + [f"{'ms':>9} {'calls':>6}  {'op':<40} where"]
    lines += [f"{r['ms']:9.3f} {r['count']:6d}  {r['op'][:40]:<40} {r['where'][-100:]}" for r in rows]
    return "\n".join(lines) + "\n"


def format_table(rows: list[dict], cats: dict[str, dict], total_ms: float, title: str) -> str:
    lines = [title, f"total self time {total_ms:.2f} ms", "", "by category:"]
    lines += [f"  {k:<14} {v['ms']:9.2f} ms {v['pct']:6.1f}%  ({v['kernels']} launches)" for k, v in cats.items()]
    lines += ["", f"{'ms':>9} {'%':>6} {'calls':>6}  {'category':<13} name"]
    lines += [f"{r['ms']:9.3f} {r['pct']:6.1f} {r['count']:6d}  {r['category']:<13} {r['name'][:160]}" for r in rows]
    return "\n".join(lines) + "\n"


def profile_spec(spec, device, opts, out_dir: Path, warmup: int = 2) -> dict:
    """Profile one step of ``spec`` after ``warmup`` steps; write the table; return a summary
    ``{"spec", "path", "total_ms", "categories", "top"}`` (or ``{"spec", "error"}``)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cache = ModelCache()
    label = spec.label()
    try:
        model = cache.get(spec, device)
        step, release = make_step(model, spec, device, opts.dtype, cuda_graph=opts.cuda_graphs)
        cuda = device.type == "cuda"
        for _ in range(warmup):
            step()
        if cuda:
            torch.cuda.synchronize()
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts, with_stack=True) as prof:
            step()
            if cuda:
                torch.cuda.synchronize()
        release()
        rows, cats, total = kernel_table(prof, cuda)
        name = f"profile_{spec.model}_{spec.backend}_{spec.frames}_{spec.mode}.txt"
        path = Path(out_dir) / name
        text = format_table(rows, cats, total, f"{label} on {torch.cuda.get_device_name(device) if cuda else 'cpu'}")
        with_ops = prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                             row_limit=30)
        text += format_sources(source_table(prof, cuda))
        path.write_text(text + "\n\noperators (torch.profiler):\n" + with_ops)
        return {"spec": label, "path": str(path), "total_ms": total, "categories": cats, "top": rows[:15]}
    except Exception as err:  # noqa: BLE001 - reported, never fatal
        return {"spec": label, "error": "OOM" if is_oom(err) else f"{type(err).__name__}: {str(err)[:400]}"}
    finally:
        cache.clear()
