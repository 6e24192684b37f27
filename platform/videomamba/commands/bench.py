"""``videomamba bench``: GPU throughput/memory vs an attention baseline, correctness checks,
profiles (see ``videomamba.bench.run``). Also ``python -m videomamba.bench.gpu``.

``videomamba bench e2e``: the whole training job (Ray Data decoding into Ray Train workers)
against the model-only step, per footage and ``clips_per_video`` (see ``videomamba.bench.e2e``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from videomamba.bench import report
from videomamba.bench import run as bench_run
from videomamba.bench.spec import DEFAULT_BASELINE, DEFAULT_FRAMES, MODES, VIDEOMAMBA_MODELS, Options, parse_batch


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark VideoMamba backends against an attention baseline; "
                              "`bench e2e`: the whole training job", description=__doc__)
    add_arguments(p)
    p.set_defaults(func=run_command)
    sub = p.add_subparsers(dest="bench_command", metavar="{e2e}")
    e2e = sub.add_parser(
        "e2e", help="end-to-end training throughput, data wait and GPU utilisation vs the model-only step",
        description="Runs `videomamba train` (Ray Data -> Ray Train, one worker per GPU) for a few epochs per "
        "case and reports clips/s, train/data_wait_frac, the epoch start-up wait and GPU utilisation beside the "
        "model-only clips/s of the same training step (first batch replayed).",
    )
    from videomamba.commands.train import add_config_arguments

    add_config_arguments(e2e)
    e2e.add_argument("--manifest", action="append", default=[], metavar="NAME=PATH", required=True,
                     help="training manifest for the cases named NAME (e.g. raw=..., prepared=...); repeatable")
    e2e.add_argument("--cases", default=None,
                     help="comma list of NAME:CLIPS_PER_VIDEO[:nostream] and 'model' (default: model, then "
                     "NAME:1 and NAME:2 for every manifest)")
    e2e.add_argument("--epochs", type=int, default=3, help="epochs per case (default 3)")
    e2e.add_argument("--warmup-epochs", type=int, default=1, help="first epochs left out of the summary")
    e2e.add_argument("--num-workers", type=int, help="training workers (default: one per GPU)")
    e2e.add_argument("--e2e-out", default="benchmarks/e2e", help="output directory (e2e.json, e2e.md)")
    e2e.set_defaults(func=run_e2e)


def run_e2e(args) -> int:
    import torch

    from videomamba.bench import e2e
    from videomamba.train.config import load_config

    manifests = dict(item.split("=", 1) for item in args.manifest)
    overrides = list(args.overrides)
    workers = args.num_workers or torch.cuda.device_count() or None
    if workers:
        overrides.append(f"scaling.num_workers={workers}")
    cfg = load_config(args.config, overrides)
    names = args.cases.split(",") if args.cases else ["model"] + [f"{m}:{k}" for m in manifests for k in (1, 2)]
    cases = [e2e.parse_case(n) for n in names]
    unknown = [c.manifest for c in cases if c.manifest and c.manifest not in manifests]
    if unknown:
        raise SystemExit(f"--cases names {unknown} but --manifest gives only {sorted(manifests)}")
    summary = e2e.run(cfg, cases, manifests, epochs=args.epochs, warmup_epochs=args.warmup_epochs, out=args.e2e_out)
    print(e2e.markdown(summary))
    return 1 if any(c["error"] for c in summary["cases"]) else 0


def add_arguments(p) -> None:
    """Options of ``videomamba bench``."""
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
    p.add_argument("--cuda-graphs", action="store_true",
                   help="capture each timed step in a CUDA graph and replay it (every model): the GPU's time "
                        "without the host's kernel-launch overhead")
    p.add_argument("--no-isolate", dest="isolate", action="store_false", help="run everything in this process")
    p.add_argument("--device", default=None)


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
        cuda_graphs=args.cuda_graphs,
        argv=_command_line(),
    )


def _command_line() -> list[str]:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("gpu.py", "__main__.py")):
        argv[0:1] = ["python", "-m", "videomamba.bench.gpu"]
    elif argv:
        argv[0] = Path(argv[0]).name
    return argv


def run_command(args) -> int:
    """Run the benchmark and print the markdown report."""
    results = bench_run.run(options_from_args(args))
    print(report.markdown(results))
    print(f"results in {args.out}/ (results.json, results.md, bench.png, logs/)")
    failed_checks = results.get("checks") is not None and not results["checks"]["pass"]
    return 1 if failed_checks else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m videomamba.bench.gpu``), same options as the sub-command."""
    parser = argparse.ArgumentParser(prog="python -m videomamba.bench.gpu", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run_command(args)
