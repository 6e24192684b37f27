"""Evidence that the ``distill`` and ``masked_align`` objectives work (issue 5), on the synthetic
motion dataset, through the platform's public API on an embedded local Ray::

    python benchmarks/objectives_evidence.py [--seeds 0 1 2] [--set key=value ...]
    python benchmarks/objectives_evidence.py --report-only   # re-render .md/.png from the .json
    # second distillation comparison, a stronger teacher (same D=32 model, trained longer); adds a
    # "strong_teacher" section to the existing .json and keeps the first comparison's runs:
    python benchmarks/objectives_evidence.py --only distill --teacher-epochs 40 --reuse-scratch

Training runs, each a :func:`videomamba.train.launcher.run_training` of a shipped config plus
overrides (data paths, seed, run names, MLflow experiment, held-out test set). Once:

1. ``teacher``: ``configs/distill_demo_teacher.yaml`` (the SMALL VideoMamba, supervised), with
   ``train.seed = --teacher-seed``; a fixed, trained teacher for every student seed.

Then per seed (``train.seed``: init, shuffle order, augmentation; the data are the same for every seed):

2. ``scratch``: ``configs/pretrain_demo_finetune.yaml`` with ``model.pretrained=null``: the student
   trained from scratch, supervised, no teacher. It is the baseline of BOTH comparisons: the script
   checks that it is exactly ``configs/distill_demo.yaml`` with the objective replaced by
   ``supervised`` (same model, data, optimiser, schedule, epochs, batch, seed);
3. ``distill``: ``configs/distill_demo.yaml``, teacher = run 1's best checkpoint;
4. ``pretrain``: ``configs/pretrain_demo.yaml`` (``masked_align``, same frozen teacher, labels unused
   by the student) through ``pipelines/pretrain.py``'s ``main`` (train + export of ``model.pt``);
5. ``finetune``: ``configs/pretrain_demo_finetune.yaml`` initialised from run 4's export.

The metrics are read back from MLflow (``MlflowClient``): per-epoch ``val/top1`` and
``train/align_loss_epoch``, and ``test/top1`` of each run's best checkpoint (multi-view evaluation on
a held-out synthetic test set drawn with another data seed, ``eval.at_end``). Writes
``benchmarks/objectives_evidence.{json,md,png}``; the markdown keeps anything below its
``NOTES_MARKER`` line (hand-written reading) when it is regenerated.

``--only distill`` trains only runs 1-3 (no masked pretraining / fine-tuning) and stores them as the
JSON's ``strong_teacher`` section (the first comparison's ``runs`` are kept as they are);
``--teacher-epochs N`` sets the teacher's ``train.epochs`` (default: the config's 16; its cosine
schedule stretches with it). ``--reuse-scratch`` takes the ``scratch`` runs of the first comparison
(same seeds, same config and overrides but for the run name: they do not depend on the teacher)
instead of training them again.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import logging
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
OUT = ROOT / "benchmarks" / "objectives_evidence"
EXPERIMENT = "objectives-evidence"
NOTES_MARKER = "<!-- notes below are kept when the script regenerates this file -->"

# run kind -> (shipped config, objective as the table shows it)
RUNS = {
    "teacher": ("distill_demo_teacher.yaml", "supervised (small teacher)"),
    "scratch": ("pretrain_demo_finetune.yaml", "supervised, from scratch"),
    "distill": ("distill_demo.yaml", "distill (CE + align)"),
    "pretrain": ("pretrain_demo.yaml", "masked_align (no labels)"),
    "finetune": ("pretrain_demo_finetune.yaml", "supervised, from masked_align"),
}
# the second distillation comparison (--only distill) runs these kinds
DISTILL_ONLY = ("teacher", "scratch", "distill")
# the sections that must agree for `scratch` to be the same-budget baseline of `distill` and `finetune`
BUDGET_SECTIONS = ("data", "optim", "schedule", "train", "scaling")

logger = logging.getLogger("objectives_evidence")


def load_pretrain_pipeline():
    """``pipelines/pretrain.py`` as a module (``pipelines/`` is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("videomamba_pipelines_pretrain", ROOT / "pipelines" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_data(root: Path, args) -> dict[str, str]:
    """Train/val set (data seed 0) and a held-out test set (data seed 1), written once."""
    from videomamba.data import make_synthetic_dataset

    params = {"classes": args.classes, "videos_per_class": args.videos_per_class,
              "val_videos_per_class": args.val_videos_per_class, "test_videos_per_class": args.test_videos_per_class,
              "frames": 16, "size": args.size}
    stamp = root / "data_params.json"
    data, test = root / "data", root / "test_data"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == params):
        make_synthetic_dataset(str(data), args.classes, args.videos_per_class,
                               val_videos_per_class=args.val_videos_per_class, frames=16, size=args.size, seed=0)
        # only its val split is used (as the test split): other videos than train/val, same classes
        make_synthetic_dataset(str(test), args.classes, 0, val_videos_per_class=args.test_videos_per_class,
                               frames=16, size=args.size, seed=1)
        stamp.write_text(json.dumps(params))
    return {"train": str(data / "train.csv"), "val": str(data / "val.csv"), "test": str(test / "val.csv"),
            "classes": str(data / "classes.txt")}


def common_overrides(data: dict[str, str], root: Path, seed: int) -> list[str]:
    return [
        f"data.train_manifest={data['train']}", f"data.val_manifest={data['val']}",
        f"data.test_manifest={data['test']}", f"data.classes_file={data['classes']}",
        "data.test_num_clips=2", "data.test_num_crops=1",
        "eval.at_end=true", "eval.split=test",
        f"train.seed={seed}", "train.eval_every=1",
        f"run.root={root}", f"mlflow.experiment={EXPERIMENT}", "mlflow.log_model=false", "mlflow.register_model=null",
    ]


def check_same_budget(scratch, distill_cfg) -> None:
    """``scratch`` must be the distill config with only the objective (and init) changed."""
    a, b = scratch.model_dump(mode="json"), distill_cfg.model_dump(mode="json")
    diffs = [s for s in BUDGET_SECTIONS if a[s] != b[s]]
    ma = {k: v for k, v in a["model"].items() if k != "pretrained"}
    mb = {k: v for k, v in b["model"].items() if k != "pretrained"}
    if ma != mb:
        diffs.append("model")
    if a["objective"].get("label_smoothing") != b["objective"].get("label_smoothing"):
        diffs.append("objective.label_smoothing")
    if diffs:
        raise SystemExit(f"configs disagree on {diffs}: scratch is not the same-budget baseline of distill")


def metric_by_epoch(client, run_id: str, key: str) -> dict[int, float]:
    """MLflow history of ``key`` keyed by epoch (the loop logs ``epoch`` at the same step)."""
    epochs = {m.step: int(m.value) for m in client.get_metric_history(run_id, "epoch")}
    return {epochs[m.step]: m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp)
            if m.step in epochs}


def read_back(client, run_id: str) -> dict[str, Any]:
    run = client.get_run(run_id)
    val = metric_by_epoch(client, run_id, "val/top1")
    align = metric_by_epoch(client, run_id, "train/align_loss_epoch")
    loss = metric_by_epoch(client, run_id, "train/loss_epoch")
    epochs = sorted(metric_by_epoch(client, run_id, "train/loss_epoch"))
    out = {
        "mlflow_run_id": run_id,
        "status": run.info.status,
        "epochs": len(epochs),
        "val_top1": [val[e] for e in sorted(val)],
        "val_top1_last": val[max(val)] if val else None,
        "val_top1_best": max(val.values()) if val else None,
        "test_top1": run.data.metrics.get("test/top1"),
        "train_loss": [loss[e] for e in sorted(loss)],
        "align_loss": [align[e] for e in sorted(align)],
        "align_first": align[min(align)] if align else None,
        "align_last": align[max(align)] if align else None,
        "best_checkpoint": run.data.tags.get("best_checkpoint"),
        "mlflow_wall_s": (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None,
    }
    return out


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt(v, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def fmt_ms(values: list[float]) -> str:
    m, s = mean_sd(values)
    if m is None:
        return ""
    return f"{m:.3f}" + (f" ± {s:.3f}" if s is not None else "")


def machine_info() -> dict[str, Any]:
    import ray
    import torch

    from videomamba.env import cpu_model

    cpu = cpu_model()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    # uncommitted changes to what the runs execute (other files of a shared checkout do not matter)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "platform", "pipelines", "configs", "benchmarks/objectives_evidence.py"],
                           cwd=ROOT, capture_output=True, text=True).stdout.split("\n")
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
            "os": platform.platform(), "git_commit": commit, "git_dirty": [line[3:] for line in dirty if line.strip()]}


def teacher_epochs_of(section: dict[str, Any]) -> int | None:
    rows = [r for r in section["runs"] if r["kind"] == "teacher"]
    return rows[0]["epochs"] if rows else None


def plot_val_curves(ax, runs: list[dict[str, Any]], kinds, colours, chance: float, title: str) -> None:
    for kind in kinds:
        curves = [r["val_top1"] for r in runs if r["kind"] == kind and r["val_top1"]]
        for c in curves:
            ax.plot(range(1, len(c) + 1), c, color=colours[kind], alpha=0.35, lw=1)
        if curves:
            n = min(len(c) for c in curves)
            mean = [statistics.fmean(c[e] for c in curves) for e in range(n)]
            reused = " (comparison 1's runs)" if any(r.get("reused_from") for r in runs if r["kind"] == kind) else ""
            ax.plot(range(1, n + 1), mean, color=colours[kind], lw=2.2, label=f"{kind}{reused} (mean of {len(curves)})")
    ax.axhline(chance, color="k", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.set(title=title, xlabel="epoch", ylabel="val top-1", ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)


def plot_align(ax, runs: list[dict[str, Any]], kind: str, colour: str, title: str) -> None:
    for r in runs:
        if r["kind"] == kind and r["align_loss"]:
            c = r["align_loss"]
            ax.plot(range(1, len(c) + 1), c, color=colour, marker=".", label=f"seed {r['seed']}",
                    alpha=0.4 + 0.6 / (1 + r["seed"]))
    ax.set(title=title, xlabel="epoch", ylabel="align loss")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot(results: dict[str, Any], path: Path, chance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    strong = results.get("strong_teacher")
    colours = {"teacher": "tab:gray", "scratch": "tab:blue", "distill": "tab:orange", "finetune": "tab:green",
               "pretrain": "tab:purple"}
    rows = 2 if strong and strong["runs"] else 1
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4.2 * rows), squeeze=False)
    first = f" (teacher {teacher_epochs_of(results)} ep.)" if rows == 2 else ""
    plot_val_curves(axes[0][0], runs, ("teacher", "scratch", "distill", "finetune"), colours, chance,
                    f"val top-1 per epoch{first} (thin: one seed)")
    plot_align(axes[0][1], runs, "distill", colours["distill"], f"distill{first}: align loss (2 - 2 cos), train epoch mean")
    plot_align(axes[0][2], runs, "pretrain", colours["pretrain"], "masked_align: align loss (l2), train epoch mean")
    if rows == 2:
        ep = teacher_epochs_of(strong)
        sruns = strong["runs"]
        plot_val_curves(axes[1][0], sruns, ("teacher", "scratch", "distill"), colours, chance,
                        f"strong teacher ({ep} ep.): val top-1 per epoch")
        plot_align(axes[1][1], sruns, "distill", colours["distill"],
                   f"distill, strong teacher ({ep} ep.): align loss (2 - 2 cos)")
        ax = axes[1][2]
        for section, ls in ((results, "--"), (strong, "-")):
            for r in section["runs"]:
                if r["kind"] == "teacher" and r["val_top1"]:
                    c = r["val_top1"]
                    line, = ax.plot(range(1, len(c) + 1), c, ls=ls, color=colours["teacher"] if ls == "--" else "k",
                                    label=f"teacher, {r['epochs']} epochs (val)")
                    if r["test_top1"] is not None:
                        ax.axhline(r["test_top1"], ls=ls, lw=0.8, color=line.get_color(), alpha=0.6,
                                   label=f"its test top-1 {r['test_top1']:.3f}")
        ax.axhline(chance, color="k", ls=":", lw=1)
        ax.set(title="the two teachers (same D=32 model, seed, data)", xlabel="epoch", ylabel="val top-1", ylim=(0, 1.02))
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_table(runs: list[dict[str, Any]], kinds, teacher_label: str = "") -> list[str]:
    lines = [
        "| run | objective | epochs | val top-1 (last epoch) | best val top-1 | test top-1 (best ckpt) | align loss first → last epoch | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in kinds:
        objective = RUNS[kind][1]
        rs = [r for r in runs if r["kind"] == kind]
        if not rs:
            continue
        if kind == "teacher":
            objective = (objective[:-1] + teacher_label + ")" if teacher_label else objective) + f", seed {rs[0]['seed']}"
        reused = any(r.get("reused_from") for r in rs)
        if reused:
            objective += f" (the runs of the {rs[0]['reused_from']})"
        af, al = mean_sd([r["align_first"] for r in rs]), mean_sd([r["align_last"] for r in rs])
        align = f"{af[0]:.3f} → {al[0]:.3f}" if af[0] is not None else ""
        lines.append(
            f"| {kind} | {objective} | {rs[0]['epochs']} | {fmt_ms([r['val_top1_last'] for r in rs])} | "
            f"{fmt_ms([r['val_top1_best'] for r in rs])} | {fmt_ms([r['test_top1'] for r in rs])} | {align} | "
            f"{statistics.fmean(r['wall_s'] for r in rs):.0f}{' (then)' if reused else ''} |"
        )
    return lines


def paired_lines(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]], a: str, b: str,
                 name_a: str | None = None, name_b: str | None = None) -> list[str]:
    """``a`` - ``b`` per seed (every ``a`` seed against the single teacher when ``b`` is the teacher)."""
    name_a, name_b = name_a or a, name_b or b
    lines = []
    for metric, label in (("test_top1", "test top-1"), ("val_top1_last", "val top-1 (last epoch)")):
        pairs = [(ra[metric], rb[metric]) for ra in runs_a for rb in runs_b
                 if ra["kind"] == a and rb["kind"] == b and (ra["seed"] == rb["seed"] or b == "teacher")
                 and ra[metric] is not None and rb[metric] is not None]
        if not pairs:
            continue
        d = [x - y for x, y in pairs]
        md, sd = mean_sd(d)
        wins = sum(x >= y for x, y in pairs)
        lines.append(f"* `{name_a}` − `{name_b}`, {label}: mean {md:+.3f}" + (f" (sd {sd:.3f})" if sd is not None else "")
                     + f"; per seed {', '.join(f'{x:+.3f}' for x in d)}; `{name_a}` ≥ `{name_b}` in {wins} of {len(pairs)} seeds.")
    return lines


def per_run_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | seed | objective | epochs | val top-1 (last) | best val top-1 | test top-1 | align loss first → last | wall (s) | MLflow run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        align = f"{r['align_first']:.3f} → {r['align_last']:.3f}" if r["align_first"] is not None else ""
        objective = RUNS[r["kind"]][1] + (f" (reused: {r['reused_from']})" if r.get("reused_from") else "")
        lines.append(f"| {r['kind']} | {r['seed']} | {objective} | {r['epochs']} | {fmt(r['val_top1_last'])} | "
                     f"{fmt(r['val_top1_best'])} | {fmt(r['test_top1'])} | {align} | {r['wall_s']:.0f} | "
                     f"`{r['mlflow_run_id'][:8]}` |")
    return lines


def write_markdown(results: dict[str, Any], path: Path) -> None:
    runs, s = results["runs"], results["settings"]
    m = results["machine"]
    strong = results.get("strong_teacher")
    chance = 1 / s["classes"]
    ep1 = teacher_epochs_of(results)
    lines = [
        "# Evidence: distillation and masked pretraining on the synthetic motion data",
        "",
        f"Recorded {results['date']} by `{results['command']}` ({results['total_wall_min']:.1f} min wall in all).",
    ]
    if strong:
        ms = strong["machine"]
        lines.append(
            f"Second distillation comparison (a stronger teacher: the same D=32 model trained "
            f"{teacher_epochs_of(strong)} epochs) recorded {strong['date']} by `{strong['command']}` "
            f"({strong.get('total_wall_min', 0):.1f} min wall) at git {ms['git_commit']}"
            + (f" with uncommitted changes to {', '.join(ms['git_dirty'])}" if ms.get("git_dirty") else "") + ".")
    lines += [
        "Files: `objectives_evidence.json` (every run, every curve, the exact configs' overrides; the second "
        "comparison under `strong_teacher`), `objectives_evidence.png` (val accuracy curves, align-loss curves"
        + ("; second row: the strong-teacher comparison" if strong else "") + "). Code: `benchmarks/objectives_evidence.py`.",
        "",
        f"* Machine: {m['cpu']}, {m['cpu_count']} CPU cores, GPU: {m['gpu'] or 'none'}; Python {m['python']}, "
        f"torch {m['torch']}, Ray {m['ray']} (embedded local Ray, 1 training worker per run, runs one after another); "
        f"git {m['git_commit']}"
        + (f" with uncommitted changes to {', '.join(m['git_dirty'])}" if m.get("git_dirty") else "")
        + ". Other jobs may have shared the cores: wall times are indicative only.",
        f"* Data: `make_synthetic_dataset` ({s['classes']} classes whose label is ONLY the temporal order of the "
        f"motion, so chance = {chance:.2f}; {s['videos_per_class']} train / {s['val_videos_per_class']} val videos per "
        f"class (data seed 0) and a held-out test set of {s['test_videos_per_class']} videos per class (data seed 1); "
        f"16 frames, {s['size']} px). Test = multi-view (2 clips) evaluation of each run's best-val checkpoint.",
        f"* Seeds (`train.seed`: init, shuffling, augmentation; the same for every run of a seed): students "
        f"{s['seeds']}; the teacher is trained once (seed {s['teacher_seed']}) and shared by every student seed.",
        "* Runs per seed (shipped configs + the overrides in the JSON): "
        + "; ".join(f"`{k}` = `configs/{v[0]}`" + (" with `model.pretrained=null`" if k == "scratch" else "")
                    for k, v in RUNS.items())
        + ". `distill` and `pretrain` use the `teacher`'s best val checkpoint as the frozen teacher; "
        "`finetune` starts from the seed's `pretrain` export. `scratch` is checked to be `distill`'s config with "
        "the objective replaced by `supervised` (same model, data, optimiser, schedule, epochs, batch).",
        "",
        f"## Comparison 1 (teacher: {ep1} epochs): summary (mean ± sd over seeds)",
        "",
        *summary_table(runs, RUNS),
        "",
        "## Comparison 1: paired differences (same seed, same budget; the teacher is one run)",
        "",
    ]
    for a, b in (("distill", "scratch"), ("finetune", "scratch"), ("distill", "teacher")):
        lines += paired_lines(runs, runs, a, b)
    n_test, n_val = s["test_videos_per_class"] * s["classes"], s["val_videos_per_class"] * s["classes"]
    se = lambda p, n: math.sqrt(p * (1 - p) / n)  # noqa: E731
    lines += [
        "",
        f"Sampling noise of one accuracy: binomial standard error at p = 0.8 is {se(0.8, n_test):.3f} on the "
        f"{n_test} test videos and {se(0.8, n_val):.3f} on the {n_val} val videos (√2 times that for a difference).",
    ]
    if strong and strong["runs"]:
        ep2, sruns = teacher_epochs_of(strong), strong["runs"]
        teacher = [r for r in sruns if r["kind"] == "teacher"]
        lines += [
            "",
            f"## Comparison 2: a strong teacher ({ep2} epochs), distillation only",
            "",
            f"The same D=32 teacher config, seed and data, `train.epochs={ep2}` (the cosine schedule stretches with "
            "it; nothing else changes); then per student seed `distill` from its best val checkpoint, with the student "
            "config and budget of comparison 1 (D=64, 8 epochs). No masked pretraining / fine-tuning runs here."
            + (" `scratch` (the teacher-free student) does not depend on the teacher: its rows are comparison 1's "
               "runs (same seeds, same config and overrides, checked by the script), not new runs."
               if any(r.get("reused_from") for r in sruns) else ""),
            "",
            *summary_table(sruns, DISTILL_ONLY, f", {ep2} epochs"),
        ]
        if teacher and teacher[0]["val_top1"]:
            lines += ["", f"Strong teacher's val top-1 per epoch: {', '.join(f'{v:.2f}' for v in teacher[0]['val_top1'])}."]
        lines += ["", "Paired differences (same seed; the teacher is one run):", ""]
        lines += paired_lines(sruns, sruns, "distill", "scratch")
        lines += paired_lines(sruns, sruns, "distill", "teacher")
        lines += paired_lines(sruns, runs, "distill", "distill", f"distill ({ep2}-ep. teacher)",
                              f"distill ({ep1}-ep. teacher)")
    lines += [
        "",
        "## Per run" + (" (comparison 1)" if strong else ""),
        "",
        *per_run_table(runs),
    ]
    if strong and strong["runs"]:
        lines += ["", "## Per run (comparison 2, strong teacher)", "", *per_run_table(strong["runs"])]
    lines += [
        "",
        f"MLflow: experiment `{EXPERIMENT}` at `{results['tracking_uri']}` (not committed; rerun the command to "
        "regenerate). `pretrain` has no val accuracy: its classifier is frozen and unused.",
        "",
        NOTES_MARKER,
    ]
    notes = ""
    if path.exists() and NOTES_MARKER in path.read_text():
        notes = path.read_text().split(NOTES_MARKER, 1)[1].lstrip("\n")
    path.write_text("\n".join(lines) + "\n" + ("\n" + notes if notes else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="student seeds")
    p.add_argument("--teacher-seed", type=int, default=0)
    p.add_argument("--root", default=str(ROOT / "runs/objectives_evidence"), help="data, checkpoints, MLflow")
    # the data of configs/distill_demo_teacher.yaml's comment, plus a held-out test set
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--videos-per-class", type=int, default=256)
    p.add_argument("--val-videos-per-class", type=int, default=32)
    p.add_argument("--test-videos-per-class", type=int, default=128)
    p.add_argument("--size", type=int, default=32, help="synthetic video size (the configs train at 32 px)")
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs of the local Ray (default: init_ray's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra override for every run (e.g. train.epochs=2 for a smoke test)")
    p.add_argument("--out", default=str(OUT), help="output path stem (.json, .md, .png)")
    p.add_argument("--report-only", action="store_true", help="no training: rewrite the .md and .png from the .json")
    p.add_argument("--only", choices=("all", "distill"), default="all",
                   help="distill: only teacher, scratch and distill runs, stored as the .json's strong_teacher "
                        "section next to the existing runs (which are kept)")
    p.add_argument("--teacher-epochs", type=int, default=None, help="the teacher's train.epochs (default: the config's)")
    p.add_argument("--reuse-scratch", action="store_true",
                   help="with --only distill: take the scratch runs of the .json's first comparison instead of training them")
    args = p.parse_args(argv)
    if args.reuse_scratch and args.only != "distill":
        p.error("--reuse-scratch needs --only distill")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    if args.report_only:
        results = json.loads(out.with_suffix(".json").read_text())
        plot(results, out.with_suffix(".png"), 1 / results["settings"]["classes"])
        write_markdown(results, out.with_suffix(".md"))
        return 0

    import ray

    from videomamba.train import tracking
    from videomamba.train.config import load_config
    from videomamba.train.launcher import init_ray, run_training

    started = datetime.datetime.now()
    t_start = time.perf_counter()
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    data = make_data(root, args)
    stamp = f"{started:%Y%m%d-%H%M%S}"
    pretrain_pipeline = load_pretrain_pipeline()
    command = "python benchmarks/objectives_evidence.py" + "".join(
        f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]))
    results: dict[str, Any] = {
        "date": f"{started:%Y-%m-%d %H:%M}", "command": command, "machine": machine_info(),
        "settings": {"seeds": args.seeds, "teacher_seed": args.teacher_seed, "classes": args.classes, "videos_per_class": args.videos_per_class,
                     "val_videos_per_class": args.val_videos_per_class,
                     "test_videos_per_class": args.test_videos_per_class, "size": args.size,
                     "extra_overrides": args.overrides, "teacher_epochs": args.teacher_epochs},
        "runs": [],
    }
    document = results  # what is written to the .json
    if args.only == "distill":
        # a second comparison next to the first one's runs, which are kept as they are
        document = json.loads(out.with_suffix(".json").read_text())
        first = document["settings"]
        same = ("classes", "videos_per_class", "val_videos_per_class", "test_videos_per_class", "size")
        if any(first[k] != results["settings"][k] for k in same):
            raise SystemExit(f"data settings differ from the first comparison's ({ {k: first[k] for k in same} })")
        document["strong_teacher"] = results
    teacher_extra = [f"train.epochs={args.teacher_epochs}"] if args.teacher_epochs else []

    def config(kind: str, seed: int, extra: list[str]):
        overrides = [*common_overrides(data, root, seed), f"run.name=ev-{stamp}-{kind}-s{seed}", *extra, *args.overrides]
        return load_config(CONFIGS / RUNS[kind][0], overrides), overrides

    reused: dict[int, dict[str, Any]] = {}
    if args.reuse_scratch:
        for seed in args.seeds:
            rows = [r for r in document["runs"] if r["kind"] == "scratch" and r["seed"] == seed]
            if len(rows) != 1:
                raise SystemExit(f"--reuse-scratch: {len(rows)} scratch runs of seed {seed} in the first comparison")
            _, overrides = config("scratch", seed, ["model.pretrained=null"])
            strip = lambda o: [x for x in o if not x.startswith("run.name=")]  # noqa: E731
            if strip(rows[0]["overrides"]) != strip(overrides):
                raise SystemExit(f"--reuse-scratch: seed {seed}'s scratch run had other overrides: {rows[0]['overrides']}")
            reused[seed] = {**rows[0], "reused_from": "first comparison"}

    # validate every config (and the same-budget claim) before anything trains
    for seed in args.seeds:
        scratch, _ = config("scratch", seed, ["model.pretrained=null"])
        distill, _ = config("distill", seed, ["objective.teacher.checkpoint=/not/yet"])
        check_same_budget(scratch, distill)
        if args.only == "all":
            config("pretrain", seed, ["objective.teacher.checkpoint=/not/yet"])
    config("teacher", args.teacher_seed, teacher_extra)
    if args.num_cpus:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    else:
        init_ray(scratch)
    client = None

    def record(kind: str, seed: int, run, wall: float, overrides: list[str]) -> dict[str, Any]:
        nonlocal client
        results["tracking_uri"] = run.tracking_uri
        client = client or tracking.client(run.tracking_uri)
        row = {"kind": kind, "seed": seed, "config": f"configs/{RUNS[kind][0]}", "overrides": overrides,
               "wall_s": wall, **read_back(client, run.mlflow_run_id)}
        results["runs"].append(row)
        logger.info("%s seed %d: val %s test %s align %s -> %s (%.0f s)", kind, seed, fmt(row["val_top1_last"]),
                    fmt(row["test_top1"]), fmt(row["align_first"]), fmt(row["align_last"]), wall)
        results["total_wall_min"] = (time.perf_counter() - t_start) / 60
        out.with_suffix(".json").write_text(json.dumps(document, indent=2))  # partial results survive a crash
        return row

    def train(kind: str, seed: int, extra: list[str]):
        cfg, overrides = config(kind, seed, extra)
        t0 = time.perf_counter()
        run = run_training(cfg)
        return run, record(kind, seed, run, time.perf_counter() - t0, overrides)

    teacher, _ = train("teacher", args.teacher_seed, teacher_extra)
    if teacher.best_checkpoint is None:
        raise RuntimeError(f"teacher run {teacher.name} has no checkpoint")
    for seed in args.seeds:
        if seed in reused:
            results["runs"].append(reused[seed])
        else:
            train("scratch", seed, ["model.pretrained=null"])
        train("distill", seed, [f"objective.teacher.checkpoint={teacher.best_checkpoint}"])
        if args.only == "distill":
            continue
        # masked pretraining + export through pipelines/pretrain.py, then fine-tuning from the export
        export = root / f"ev-{stamp}-pretrained-s{seed}.pt"
        extra = [f"objective.teacher.checkpoint={teacher.best_checkpoint}", "eval.at_end=false"]
        _, overrides = config("pretrain", seed, extra)
        argv_p = ["--config", str(CONFIGS / RUNS["pretrain"][0]), "--export", str(export)]
        for o in overrides:
            argv_p += ["--set", o]
        t0 = time.perf_counter()
        pre = pretrain_pipeline.main(argv_p)
        record("pretrain", seed, pre, time.perf_counter() - t0, overrides)
        train("finetune", seed, [f"model.pretrained={pre.export}"])

    results["total_wall_min"] = (time.perf_counter() - t_start) / 60
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(document, indent=2))
    plot(document, out.with_suffix(".png"), 1 / args.classes)
    write_markdown(document, out.with_suffix(".md"))
    logger.info("wrote %s.{json,md,png} (%.1f min)", out, results["total_wall_min"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
