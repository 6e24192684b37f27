"""Evidence: self-distillation on images (``data.kind: image``) on the CPU, end to end through
``videomamba train``'s path (Ray Train + Ray Data + MLflow).

Data: ``make_synthetic_images`` (label = orientation of a bar, 4 classes, chance 0.25). Runs, one
after another: the small ``teacher`` (configs/images_demo_teacher.yaml), then per seed the larger
student with self-distillation from it (``distill``, configs/images_demo.yaml) and the same student
teacher-free (``scratch``: the objective replaced by ``supervised``; everything else identical).
Test = the held-out test folder, evaluated on Ray Data from each run's best-val checkpoint.

    python benchmarks/images_evidence.py [--seeds 0 1] [--root runs/images_evidence]
Writes benchmarks/images_evidence.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _history(run, key: str) -> list[float]:
    from mlflow.tracking import MlflowClient

    hist = MlflowClient(run.tracking_uri).get_metric_history(run.mlflow_run_id, key)
    return [m.value for m in sorted(hist, key=lambda m: m.step)]


def _train(config: str, overrides: list[str]) -> dict:
    from videomamba.train.config import load_config
    from videomamba.train.launcher import run_training

    cfg = load_config(ROOT / "configs" / config, overrides)
    t0 = time.time()
    run = run_training(cfg)
    val = _history(run, "val/top1")
    align = _history(run, "train/align_loss_epoch")
    return {
        "config": config, "overrides": overrides, "wall_s": round(time.time() - t0, 1),
        "val_top1": val, "best_val_top1": max(val) if val else None,
        "test_top1": (run.evaluation or {}).get("test/top1"), "align_loss_epoch": align,
        "best_checkpoint": run.best_checkpoint, "mlflow_run_id": run.mlflow_run_id,
        "settings": {"train_scale": list(cfg.data.train_scale), "train_ratio": list(cfg.data.train_ratio),
                     "auto_augment": cfg.data.image.auto_augment, "re_prob": cfg.data.image.re_prob,
                     "lr": cfg.optim.lr, "batch_size": cfg.train.batch_size, "epochs": cfg.train.epochs,
                     "objective": cfg.objective.name},
    }


_SETTINGS = {"train_scale": "data.train_scale", "train_ratio": "data.train_ratio", "auto_augment": "data.image.auto_augment",
             "re_prob": "data.image.re_prob", "lr": "optim.lr", "batch_size": "train.batch_size",
             "epochs": "train.epochs", "objective": "objective.name"}


def from_mlflow(root: Path, args) -> dict:
    """The ``main()`` record of the FINISHED runs in ``root/mlflow.db`` (names ``teacher-*``,
    ``distill-<seed>-*``, ``scratch-<seed>-*``; the latest of each), for a run stopped part way."""
    import ray
    import torch
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    found: dict[str, dict] = {}
    for r in sorted(client.search_runs(exps, max_results=1000), key=lambda r: r.info.start_time):
        if r.info.status != "FINISHED":
            continue
        name = r.info.run_name
        key = "teacher" if name.startswith("teacher-") else "/".join(name.split("-")[:2])

        def hist(metric):
            return [m.value for m in sorted(client.get_metric_history(r.info.run_id, metric), key=lambda m: m.step)]

        val = hist("val/top1")
        found[key] = {
            "config": "images_demo_teacher.yaml" if key == "teacher" else "images_demo.yaml",
            "overrides": [], "wall_s": round((r.info.end_time - r.info.start_time) / 1000, 1),
            "val_top1": val, "best_val_top1": max(val) if val else None,
            "test_top1": r.data.metrics.get("test/top1"), "align_loss_epoch": hist("train/align_loss_epoch"),
            "best_checkpoint": r.data.tags.get("best_checkpoint"), "mlflow_run_id": r.info.run_id,
            "settings": {short: r.data.params.get(key) for short, key in _SETTINGS.items()},
            "git": r.data.tags.get("git_commit", "")[:7], "started": r.info.start_time,
        }
    seeds = sorted(int(k.split("/")[1]) for k in found if k.startswith("distill/") and f"scratch/{k.split('/')[1]}" in found)
    runs = {"teacher": found["teacher"]}
    for seed in seeds:
        runs[f"distill/{seed}"], runs[f"scratch/{seed}"] = found[f"distill/{seed}"], found[f"scratch/{seed}"]
    ends = [r["started"] / 1000 + r["wall_s"] for r in runs.values()]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(max(ends))), "git": args.git or found["teacher"]["git"],
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs, GPU: none",
        "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
        "wall_s": round(max(ends) - runs["teacher"]["started"] / 1000, 1), "seeds": seeds, "runs": runs,
        "args": {"seeds": seeds, "classes": args.classes, "images_per_class": args.images_per_class},
        "rebuilt_from_mlflow": str(root / "mlflow.db"),
    }


def _f(x) -> str:
    return "" if x is None else f"{x:.3f}"


def _spread(values: list[float], sign: bool = False) -> str:
    import statistics

    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    fmt = "+.3f" if sign else ".3f"
    return f"{mean:{fmt}} ± {sd:.3f} [{min(values):{fmt}}, {max(values):{fmt}}] (n={len(values)})"


def report(record: dict) -> str:
    """The markdown summary of a ``main()`` record."""
    runs = record["runs"]
    lines = [
        "# Evidence: self-distillation on images (synthetic orientation data, CPU)", "",
        f"Recorded {record['date']} by `python benchmarks/images_evidence.py "
        + " ".join(f"--{'set' if k == 'overrides' else k.replace('_', '-')} "
                   f"{' '.join(map(str, v)) if isinstance(v, list) else v}"
                   for k, v in record["args"].items() if v is not None) + "` "
        f"({record['wall_s'] / 60:.1f} min wall in all) at git {record['git']}"
        + (f" (record rebuilt from the finished runs in `{record['rebuilt_from_mlflow']}` with `--from-mlflow`: "
           "the run was stopped part way)" if record.get("rebuilt_from_mlflow") else "") + ".",
        f"Machine: {record['machine']}; Python {record['python']}, torch {record['torch']}, Ray {record['ray']} "
        "(embedded local Ray, 1 training worker per run, runs one after another; the 2 cores were shared with "
        "other developers' jobs, so wall times are indicative only). Raw numbers: `images_evidence.json`.", "",
        "Data: `make_synthetic_images` (label = orientation of a bar: 0/45/90/135 degrees; colour, position, length, "
        f"thickness random; {record['args']['classes']} classes), {record['args']['images_per_class']} train / 32 val / 64 test images per class, 40 px, decoded and "
        "augmented on Ray Data as the demo configs say (eval resize 36 + centre crop 32). Models: the num_frames=1 VideoMamba, patch 8 (1 + 16 tokens), depth 4. "
        f"Teacher D=32 (`configs/images_demo_teacher.yaml`, {len(runs['teacher']['val_top1'])} epochs); students D=64 "
        "(`configs/images_demo.yaml`): `distill` = CE + 1.0 x (2 - 2 cos) on every token vs the frozen teacher; "
        "`scratch` = the same config with `objective={name: supervised, label_smoothing: 0.1}`. "
        "Test = the test folder, evaluated on Ray Data from each run's best-val checkpoint.", "",
        "Training settings (from the configs, as run): " + "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in (runs[name].get("settings") or {}).items())
            for name in ["teacher"] + [f"{kind}/{s}" for s in record["seeds"][:1] for kind in ("distill", "scratch")]) + ".", "",
        "| run | epochs | val top-1 (last) | best val top-1 | test top-1 | align loss first -> last epoch | wall (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        align = r["align_loss_epoch"]
        lines.append(
            f"| {name} | {len(r['val_top1'])} | {_f(r['val_top1'][-1] if r['val_top1'] else None)} | "
            f"{_f(r['best_val_top1'])} | {_f(r['test_top1'])} | "
            f"{f'{align[0]:.3f} -> {align[-1]:.3f}' if align else ''} | {r['wall_s']:.0f} |")
    lines += ["", "Paired differences (same seed, same budget):", ""]
    for seed in record["seeds"]:
        d, s = runs[f"distill/{seed}"], runs[f"scratch/{seed}"]
        if d["test_top1"] is not None and s["test_top1"] is not None:
            lines.append(f"* seed {seed}: `distill` - `scratch` test top-1 {d['test_top1'] - s['test_top1']:+.3f}, "
                         f"best val top-1 {d['best_val_top1'] - s['best_val_top1']:+.3f}")
    lines += ["", "Over seeds (mean ± sample standard deviation, [min, max]; n = number of seeds):", "",
              "| | distill | scratch | distill - scratch (paired) |", "|---|---|---|---|"]
    for key, label in (("test_top1", "test top-1"), ("best_val_top1", "best val top-1")):
        d = [runs[f"distill/{s}"][key] for s in record["seeds"]]
        c = [runs[f"scratch/{s}"][key] for s in record["seeds"]]
        if not d or None in d or None in c:
            continue
        lines.append(f"| {label} | {_spread(d)} | {_spread(c)} | {_spread([a - b for a, b in zip(d, c)], sign=True)} |")
    tests = [r["test_top1"] for r in runs.values() if r["test_top1"] is not None]
    p = sum(tests) / len(tests) if tests else 0.5
    n_test, n_val = 64 * record["args"]["classes"], 32 * record["args"]["classes"]
    lines += ["", f"Sampling noise of one accuracy: binomial standard error at p = {p:.2f} (the runs' mean test top-1) is "
              f"{(p * (1 - p) / n_test) ** 0.5:.3f} on the {n_test} test images and {(p * (1 - p) / n_val) ** 0.5:.3f} on the "
              f"{n_val} val images (sqrt(2) times that for a difference of two independent runs).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--root", default="runs/images_evidence")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "images_evidence"))
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--images-per-class", type=int, default=128)
    parser.add_argument("--teacher-epochs", type=int, default=None, help="default: the config's (30)")
    parser.add_argument("--student-epochs", type=int, default=None, help="default: the config's (15)")
    parser.add_argument("--set", dest="overrides", nargs="+", default=None, metavar="KEY=VALUE",
                        help="config overrides for every run (teacher and students), e.g. optim.lr=1e-3")
    parser.add_argument("--git", default=None, help="--from-mlflow: the commit the runs used (default: their tag)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json, run nothing")
    parser.add_argument("--from-mlflow", action="store_true",
                        help="run nothing: rebuild the record from the finished runs in --root's MLflow store "
                        "(a comparison stopped part way: the seeds whose distill AND scratch runs finished)")
    args = parser.parse_args()
    if args.report_only:
        Path(args.out + ".md").write_text(report(json.loads(Path(args.out + ".json").read_text())))
        return
    if args.from_mlflow:
        record = from_mlflow(Path(args.root).resolve(), args)
        Path(args.out + ".json").write_text(json.dumps(record, indent=2))
        Path(args.out + ".md").write_text(report(record))
        return

    import ray
    import torch

    from videomamba.data.synth_images import make_synthetic_images

    root = Path(args.root).resolve()
    t_all = time.time()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    data = make_synthetic_images(root / "orientations", args.classes, args.images_per_class, val_per_class=32,
                                 test_per_class=64, size=40, seed=0)
    teacher_extra = [f"train.epochs={args.teacher_epochs}"] if args.teacher_epochs else []
    student_extra = [f"train.epochs={args.student_epochs}"] if args.student_epochs else []
    common = [f"data.train_manifest={data.train_dir}", f"data.val_manifest={data.val_dir}",
              f"data.test_manifest={data.test_dir}", f"run.root={root}", *(args.overrides or [])]
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    stamp = time.strftime("%H%M%S")
    runs = {"teacher": _train("images_demo_teacher.yaml", [*common, *teacher_extra, f"run.name=teacher-{stamp}"])}
    teacher_ckpt = runs["teacher"]["best_checkpoint"]
    for seed in args.seeds:
        base = [*common, *student_extra, f"train.seed={seed}"]
        runs[f"distill/{seed}"] = _train("images_demo.yaml", [
            *base, f"objective.teacher.checkpoint={teacher_ckpt}", f"run.name=distill-{seed}-{stamp}"])
        runs[f"scratch/{seed}"] = _train("images_demo.yaml", [
            *base, "objective={name: supervised, label_smoothing: 0.1}", f"run.name=scratch-{seed}-{stamp}"])
    ray.shutdown()

    record = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "git": commit,
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs, GPU: none",
        "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
        "wall_s": round(time.time() - t_all, 1), "seeds": args.seeds, "runs": runs,
        "args": {k: v for k, v in vars(args).items() if k not in ("root", "out", "report_only", "from_mlflow", "git")},
    }
    Path(args.out + ".json").write_text(json.dumps(record, indent=2))
    Path(args.out + ".md").write_text(report(record))
    print(json.dumps({k: {m: v[m] for m in ("best_val_top1", "test_top1", "wall_s")} for k, v in runs.items()}, indent=2))


if __name__ == "__main__":
    main()
