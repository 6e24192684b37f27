"""Results of a benchmark run: layout, derived numbers (ratios, floor, targets), markdown
table, JSON and the PNG plot.

Layout of ``results.json``::

    {"schema": 1,
     "meta": {"argv", "options", "started", "wall_s"},
     "env": {"date", "device", "torch", "cuda", "triton", "mamba_ssm", "backends", ...},
     "rows": [row, ...],            # bench rows, see spec.ROW_FIELDS, plus the derived
                                    # thr_ratio, mem_ratio (vs the baseline, same frames/mode/
                                    # batch), floor_ms (per step), floor_x (measured / floor)
     "memory_fit": [row, ...],      # + fits_80gb
     "checks": {"keys", "load", "agreement", "pass"} | None,
     "profiles": [{"spec", "path", "categories", "top"}, ...],
     "floor": {"model", "frames", "mode", "per_clip", "backends": {b: {...}}},
     "targets": [{"backend", "name", "value", "threshold", "pass"}, ...]}
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .floor import Dims, floor_per_clip, mamba_dims, peaks_for
from .spec import (BACKEND_ORDER, DEFAULT_BASELINE, MODES, ROW_FIELDS, ROW_STATUSES, SCHEMA_VERSION, Options,
                   default_batch, is_baseline, series_label)

log = logging.getLogger(__name__)

GIB = 1024**3
FIT_BYTES = 80e9  # "fits in 80 GB"
TARGET_MODEL = "videomamba_tiny"
DERIVED_FIELDS = ("thr_ratio", "mem_ratio", "floor_ms", "floor_x")


def series(r: dict) -> str:
    """A row's backend label, ``+ckpt`` when every block is checkpointed."""
    return series_label(r["backend"], r.get("use_checkpoint", False))


def gib(nbytes) -> str:
    return "-" if nbytes is None else f"{nbytes / GIB:.2f}"


def new_results(opts: Options) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "meta": {"argv": opts.argv, "options": opts.to_dict(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "wall_s": None},
        "env": {}, "rows": [], "memory_fit": [], "checks": None, "profiles": [], "floor": None, "targets": [],
    }


# --------------------------------------------------------------------------------------------
# derived numbers


def attach_ratios(rows: list[dict], baseline: str, reference: list[dict] | None = None) -> None:
    """``thr_ratio`` = clips/s / baseline's, ``mem_ratio`` = peak / baseline's, matched on
    (frames, mode, batch, img_size) among ``reference`` (default ``rows``); ``None`` where
    either side did not run."""
    base = {(r["frames"], r["mode"], r["batch"], r["img_size"]): r for r in (rows if reference is None else reference)
            if r["model"] == baseline and r["status"] == "ok"}
    for r in rows:
        b = base.get((r["frames"], r["mode"], r["batch"], r["img_size"]))
        ok = r["status"] == "ok" and b is not None
        r["thr_ratio"] = r["clips_per_s"] / b["clips_per_s"] if ok else None
        r["mem_ratio"] = (r["peak_mem_bytes"] / b["peak_mem_bytes"]
                          if ok and r["peak_mem_bytes"] and b["peak_mem_bytes"] else None)


def attach_floor(rows: list[dict], device_name: str | None, on_gpu: bool = True) -> None:
    """``floor_ms`` (physical floor of the whole step on the GPU ``device_name``) and, for runs
    on a GPU, ``floor_x`` = step_ms / floor_ms."""
    peaks = peaks_for(device_name)
    for r in rows:
        r["floor_ms"] = r["floor_x"] = None
        if not r.get("dims"):
            continue
        fl = floor_per_clip(Dims(**r["dims"]), r["frames"], r["img_size"], r["mode"], peaks)
        r["floor_ms"] = fl["t_floor"] * r["batch"] * 1e3
        if r["status"] == "ok" and on_gpu:
            r["floor_x"] = r["step_ms"] / r["floor_ms"]


def floor_summary(rows: list[dict], device_name: str | None, frames: int = 64, mode: str = "train") -> dict:
    """The floor of one VideoMamba-Ti step at ``frames`` and each backend's distance from it."""
    peaks = peaks_for(device_name)
    ti = [r for r in rows if r["model"] == TARGET_MODEL and r["frames"] == frames and r["mode"] == mode]
    dims = next((Dims(**r["dims"]) for r in ti if r.get("dims")), None) or mamba_dims(192, 24)
    img = ti[0]["img_size"] if ti else 224
    per_clip = floor_per_clip(dims, frames, img, mode, peaks)
    backends = {
        series(r): {"batch": r["batch"], "status": r["status"],
                       "ms_per_clip": r["step_ms"] / r["batch"] if r["status"] == "ok" else None,
                       "x_floor": (r["step_ms"] / r["batch"]) / (per_clip["t_floor"] * 1e3) if r["status"] == "ok" else None}
        for r in ti
    }
    return {"model": TARGET_MODEL, "frames": frames, "mode": mode, "img_size": img, "dims": dims.to_dict(),
            "peaks": {"name": peaks.name, "mma_flops": peaks.mma_flops, "hbm_bytes": peaks.hbm_bytes,
                      "sfu_exp": peaks.sfu_exp},
            "per_clip": per_clip, "backends": backends}


# issue 8's and issue 15's targets for VideoMamba-Ti vs the attention baseline (same run, same GPU)
TARGETS = (
    ("issue 15: 64f train clips/s ratio >= 1", 64, "train", "thr_ratio", ">=", 1.0),
    ("issue 15: 8f train clips/s ratio >= 0.35", 8, "train", "thr_ratio", ">=", 0.35),
    ("64f infer clips/s ratio >= 3", 64, "infer", "thr_ratio", ">=", 3.0),
    ("64f train clips/s ratio >= 3", 64, "train", "thr_ratio", ">=", 3.0),
    ("64f train peak-memory ratio <= 1", 64, "train", "mem_ratio", "<=", 1.0),
    ("8f infer clips/s ratio >= 1", 8, "infer", "thr_ratio", ">=", 1.0),
    ("8f train clips/s ratio >= 1", 8, "train", "thr_ratio", ">=", 1.0),
)


def evaluate_targets(rows: list[dict]) -> list[dict]:
    out = []
    backends = sorted({series(r) for r in rows if r["model"] == TARGET_MODEL})
    for b in backends:
        for name, frames, mode, key, op, thr in TARGETS:
            r = next((r for r in rows if r["model"] == TARGET_MODEL and series(r) == b and r["frames"] == frames
                      and r["mode"] == mode), None)
            value = r.get(key) if r else None
            ok = None if value is None else (value >= thr if op == ">=" else value <= thr)
            out.append({"backend": b, "name": name, "value": value, "threshold": thr, "pass": ok})
    return out


def finalize(results: dict) -> None:
    """Recompute every derived number (idempotent; called after each section)."""
    device = results.get("env", {}).get("device")
    baseline = results["meta"]["options"].get("baseline", DEFAULT_BASELINE)
    attach_ratios(results["rows"], baseline)
    attach_ratios(results["memory_fit"], baseline, reference=results["rows"])
    on_gpu = results.get("env", {}).get("device_type") == "cuda"
    attach_floor(results["rows"], device, on_gpu)
    attach_floor(results["memory_fit"], device, on_gpu)
    for r in results["memory_fit"]:
        r["fits_80gb"] = r["status"] == "ok" and r["peak_mem_bytes"] is not None and r["peak_mem_bytes"] <= FIT_BYTES
    results["floor"] = floor_summary(results["rows"], device)
    results["targets"] = evaluate_targets(results["rows"])


# --------------------------------------------------------------------------------------------
# checks (records streamed by videomamba.bench.checks)


def check_line(rec: dict) -> str:
    if rec.get("kind") == "agreement":
        return (f"{rec['backend']:>9} {rec['dtype']} T={rec['frames']} {rec['scan_order']}: logits rel {_e(rec['logits_rel'])}"
                f" grads rel {_e(rec['grad_rel'])} ({rec.get('grad_worst')}) -> {_pf(rec['pass'])}"
                + (f" [{rec['error']}]" if rec.get("error") else ""))
    if rec.get("kind") == "load":
        return f"{rec['backend']:>9} strict load of published keys: {_pf(rec['pass'])} {rec.get('error') or ''}"
    if rec.get("kind") == "keys":
        return (f"published key layout: {_pf(rec['pass'])} ({rec['n_keys']} keys; missing {rec['missing'][:5]},"
                f" unexpected {rec['unexpected'][:5]}, shape {rec['shape_mismatch'][:5]})")
    return json.dumps(rec)[:300]


def collect_checks(outcome: dict) -> dict:
    recs = [r for r in outcome["records"] if r.get("type") == "check"]
    out = {"keys": next((r for r in recs if r["kind"] == "keys"), None),
           "load": [r for r in recs if r["kind"] == "load"],
           "agreement": [r for r in recs if r["kind"] == "agreement"], "error": None}
    if outcome["rc"] != 0:
        out["error"] = f"check worker rc={outcome['rc']}: {outcome['log_tail'][-800:]}"
    verdicts = [r["pass"] for r in recs if "pass" in r]
    out["pass"] = bool(verdicts) and all(verdicts) and out["error"] is None
    return out


def _e(x) -> str:
    return "-" if x is None else f"{x:.1e}"


def _pf(x) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[x]


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


# --------------------------------------------------------------------------------------------
# markdown


def _note(r: dict) -> str:
    """'' for ok rows, else the status with the (shortened) error: 'OOM', 'error: ...'."""
    if r["status"] == "ok":
        return ""
    err = (r.get("error") or "").replace("|", "/").replace("\n", " ")
    if r["status"] == "OOM" or not err:
        return r["status"]
    return f"{r['status']}: {err.removeprefix('skipped: ')[:110]}"


def _bench_table(rows: list[dict]) -> list[str]:
    lines = ["| model | backend | frames | batch | clips/s | ms/step | peak GiB | thr x | mem x | floor x | note |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        note = _note(r)
        lines.append(
            f"| {r['model']} | {series(r)} | {r['frames']} | {r['batch']} | {_f(r['clips_per_s'], '{:.1f}')}"
            f" | {_f(r['step_ms'], '{:.1f}')} | {gib(r['peak_mem_bytes'])} | {_f(r.get('thr_ratio'), '{:.3g}')}"
            f" | {_f(r.get('mem_ratio'), '{:.3g}')} | {_f(r.get('floor_x'), '{:.1f}')} | {note} |")
    return lines


def markdown(results: dict) -> str:
    env, meta, opts = results["env"], results["meta"], results["meta"]["options"]
    dev = env.get("device", "?")
    if env.get("total_memory_bytes"):
        dev += f" ({env.get('sm_count')} SMs, {env['total_memory_bytes'] / GIB:.1f} GiB, cc {env.get('capability')}," \
               f" driver {env.get('driver')}; SDPA flash: {env.get('sdpa_flash')})"
    batches = {f: (opts["batch"].get(str(f)) or default_batch(f)) for f in opts["frames"]}
    out = [
        "# VideoMamba vs attention baseline: throughput and memory", "",
        f"- date: {env.get('date', meta['started'])}; device: {dev}",
        f"- torch {env.get('torch')} (CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}), triton {env.get('triton')},"
        f" mamba_ssm {env.get('mamba_ssm')}, causal_conv1d {env.get('causal_conv1d')}, python {env.get('python')},"
        f" commit {env.get('git_commit')}",
        f"- backends available: {env.get('backends')}" + (f" ({env['backends_error']})" if env.get("backends_error") else ""),
        f"- command: `{' '.join(meta['argv'])}`" if meta.get("argv") else "- command: (API)",
        f"- {opts['dtype']} autocast, {opts['img_size']} px, random normal clips, batch per frame count {batches}"
        f" (same for every model); warm-up <= {opts['warmup']}, median of <= {opts['repeats']} back-to-back steps"
        f" timed with CUDA events (perf_counter on CPU), <= {opts['config_budget_s']:g} s per config; peak = max_memory_allocated"
        + ("; each step captured once in a CUDA graph and replayed (--cuda-graphs)." if opts.get("cuda_graphs") else "."),
        f"- thr x = clips/s / {opts['baseline']}'s at the same frames and mode (> 1: faster); mem x = peak memory /"
        f" its (< 1: less); floor x = measured step / physical floor (videomamba/bench/floor.py).",
        f"- baseline: TimeSformer-style ViT-Ti (D 192, depth 12, 3 heads), joint space-time attention through"
        f" scaled_dot_product_attention (fused kernels only); training = fwd + bwd + fused AdamW.",
        f"- wall time: {_f(meta.get('wall_s'), '{:.0f}')} s",
    ]
    models = [opts["baseline"], *opts["models"]]
    backends = ["sdpa", *BACKEND_ORDER]
    rank = lambda r: (r["frames"], models.index(r["model"]) if r["model"] in models else len(models),  # noqa: E731
                      backends.index(r["backend"]) if r["backend"] in backends else len(backends), series(r))
    for mode, title in (("infer", "Inference"), ("train", "Training step (fwd + bwd + AdamW)")):
        rows = sorted((r for r in results["rows"] if r["mode"] == mode), key=rank)
        if rows:
            out += ["", f"## {title}", "", *_bench_table(rows)]
    if results["targets"]:
        out += ["", f"## Targets (issues 8 and 15; {TARGET_MODEL} vs {opts['baseline']}, same run)", "",
                "| backend | target | value | verdict |", "|---|---|---:|---|"]
        out += [f"| {t['backend']} | {t['name']} | {_f(t['value'], '{:.3g}')} | {_pf(t['pass'])} |"
                for t in results["targets"]]
    fl = results.get("floor")
    if fl:
        pc, pk = fl["per_clip"], fl["peaks"]
        out += ["", f"## Physical floor: {fl['model']}, {fl['frames']} frames, {fl['mode']} step, per clip", "",
                f"- peaks ({pk['name']}): {pk['mma_flops'] / 1e12:.0f} TFLOP/s bf16 dense, {pk['hbm_bytes'] / 1e12:.2f} TB/s"
                f" HBM, {pk['sfu_exp'] / 1e12:.2f} Texp/s SFU",
                f"- projections {pc['flops'] / 1e9:.0f} GFLOP -> {pc['t_mma'] * 1e3:.3f} ms; scan HBM"
                f" {pc['bytes'] / 1e9:.2f} GB -> {pc['t_hbm'] * 1e3:.3f} ms; scan exp {pc['exps'] / 1e9:.2f} G ->"
                f" {pc['t_sfu'] * 1e3:.3f} ms; floor {pc['t_floor'] * 1e3:.3f} ms/clip ({pc['bound']}-bound),"
                f" i.e. {1 / pc['t_floor']:.0f} clips/s", "",
                "| backend | batch | measured ms/clip | x floor |", "|---|---:|---:|---:|"]
        out += [f"| {b} | {v['batch']} | {_f(v['ms_per_clip'], '{:.3f}')} | {_f(v['x_floor'], '{:.1f}')} |"
                for b, v in fl["backends"].items()]
    if results["memory_fit"]:
        out += ["", "## Memory fit: checkpointed training (use_checkpoint, checkpoint_num = depth)", "",
                "| model | backend | frames | batch | status | peak GiB | reserved GiB | s/step | fits 80 GB |",
                "|---|---|---:|---:|---|---:|---:|---:|---|"]
        for r in results["memory_fit"]:
            out.append(f"| {r['model']} | {r['backend']} | {r['frames']} | {r['batch']} | {_note(r) or 'ok'}"
                       f" | {gib(r['peak_mem_bytes'])} | {gib(r['reserved_mem_bytes'])}"
                       f" | {_f(r['step_ms'] and r['step_ms'] / 1e3)} | {'yes' if r.get('fits_80gb') else 'no'} |")
    ch = results.get("checks")
    if ch:
        out += ["", f"## GPU correctness: {'PASS' if ch['pass'] else 'FAIL'}", ""]
        if ch.get("keys"):
            out.append(f"- {check_line(ch['keys'])}")
        out += [f"- {check_line(r)}" for r in ch["load"]]
        if ch["agreement"]:
            out += ["", "Each backend vs the torch backend in fp32 (same weights, inputs); rel = max |diff| /"
                    " max |reference| per tensor, worst parameter gradient named.", "",
                    "| backend | dtype | frames | batch | scan order | logits abs | logits rel | grad abs | grad rel |"
                    " worst grad | tol | verdict |", "|---|---|---:|---:|---|---:|---:|---:|---:|---|---:|---|"]
            for r in ch["agreement"]:
                out.append(f"| {r['backend']} | {r['dtype']} | {r['frames']} | {r['batch']} | {r['scan_order']}"
                           f" | {_e(r['logits_abs'])} | {_e(r['logits_rel'])} | {_e(r['grad_abs'])} | {_e(r['grad_rel'])}"
                           f" | {r.get('grad_worst')} | {_e(r['tol'])} | {_pf(r['pass'])}"
                           + (f" {r['error'][:100]}" if r.get("error") else "") + " |")
        if ch.get("error"):
            out.append(f"- error: {ch['error'][-400:]}")
    if results["profiles"]:
        out += ["", "## Profiles (one step, device time by kernel category)", ""]
        for p in results["profiles"]:
            if p.get("error"):
                out.append(f"- {p.get('spec', '')} error: {p['error'][:300]}")
                continue
            cats = ", ".join(f"{k} {v['pct']:.0f}%" for k, v in p["categories"].items())
            out.append(f"- {p['spec']}: total {p['total_ms']:.1f} ms; {cats}; top kernels in `{Path(p['path']).name}`")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# files


def plot_figure(results: dict, path: Path) -> bool:
    """Throughput and peak memory vs frames (rows) for inference and training (columns), one
    line per model/backend, the baseline dashed. False (with a warning) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as err:  # noqa: BLE001 - optional dependency
        log.warning("matplotlib unavailable (%s): no PNG written", err)
        return False
    rows = [r for r in results["rows"] if r["status"] == "ok"]
    if not rows:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    lines = sorted({(r["model"], series(r)) for r in rows})
    models = sorted({m for m, _ in lines if not is_baseline(m)})
    backend_style = {"triton": ("-", "o"), "mamba_ssm": ("--", "s"), "torch": (":", "^")}
    colors = plt.get_cmap("tab10")
    frames = sorted({r["frames"] for r in rows})
    img = results["meta"]["options"].get("img_size", 224)
    for j, mode in enumerate(MODES):
        for model, backend in lines:
            pts = sorted((r["frames"], r["clips_per_s"], (r["peak_mem_bytes"] or 0) / GIB) for r in rows
                         if r["model"] == model and series(r) == backend and r["mode"] == mode)
            if not pts:
                continue
            if is_baseline(model):
                style = dict(linestyle="--", marker="D", color="black")
            else:
                ls, mk = backend_style.get(backend.removesuffix("+ckpt"), ("-.", "x"))
                mk = "x" if backend.endswith("+ckpt") else mk
                style = dict(linestyle=ls, marker=mk, color=colors(models.index(model)))
            xs = [p[0] for p in pts]
            axes[0][j].plot(xs, [p[1] for p in pts], label=f"{model} ({backend})", **style)
            if any(p[2] for p in pts):
                axes[1][j].plot(xs, [p[2] for p in pts], label=f"{model} ({backend})", **style)
        axes[0][j].set_title(f"{mode}: throughput")
        axes[1][j].set_title(f"{mode}: peak memory")
        axes[0][j].set_ylabel("clips/s")
        axes[1][j].set_ylabel("GiB (max allocated)")
        for i in range(2):
            ax = axes[i][j]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(frames, [str(f) for f in frames])
            ax.set_xlabel(f"frames ({img} px)")
            ax.grid(True, which="both", alpha=0.3)
    labels_seen: dict[str, object] = {}
    for ax in (a for row in axes for a in row):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            labels_seen.setdefault(lab, h)
    handles, labels = list(labels_seen.values()), list(labels_seen)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(f"{results['env'].get('device', '?')}  {results['env'].get('date', '')}")
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write(results: dict, out: Path, plot: bool = True) -> dict[str, Path]:
    """Write results.json, results.md (and bench.png). Returns the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md"}
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(paths["json"])
    paths["md"].write_text(markdown(results))
    if plot and plot_figure(results, out / "bench.png"):
        paths["png"] = out / "bench.png"
    return paths


def validate(results: dict) -> list[str]:
    """Schema problems of a results dict (empty list: valid)."""
    problems = []
    for key in ("schema", "meta", "env", "rows", "memory_fit", "checks", "profiles", "floor", "targets"):
        if key not in results:
            problems.append(f"missing top-level key {key!r}")
    for i, r in enumerate(results.get("rows", []) + results.get("memory_fit", [])):
        missing = [k for k in (*ROW_FIELDS, *DERIVED_FIELDS) if k not in r]
        if missing:
            problems.append(f"row {i} lacks {missing}")
        if r.get("status") not in ROW_STATUSES:
            problems.append(f"row {i} has status {r.get('status')!r}")
        if r.get("status") == "ok" and not (r.get("step_ms") and r.get("clips_per_s")):
            problems.append(f"row {i} ok without timing")
        if r.get("status") != "ok" and not r.get("error"):
            problems.append(f"row {i} failed without an error text")
    return problems
