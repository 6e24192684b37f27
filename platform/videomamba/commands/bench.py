"""``videomamba bench``: GPU throughput/memory vs an attention baseline, correctness checks,
profiles (see ``videomamba.bench.gpu``). Also ``python -m videomamba.bench.gpu``.

``videomamba bench e2e``: the whole training job (Ray Data decoding into Ray Train workers)
against the model-only step, per footage and ``clips_per_video`` (see ``videomamba.bench.e2e``)."""

from __future__ import annotations

import argparse
import logging
import sys


def register(subparsers) -> None:
    from videomamba.bench.gpu import add_arguments

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
    report = e2e.run(cfg, cases, manifests, epochs=args.epochs, warmup_epochs=args.warmup_epochs, out=args.e2e_out)
    print(e2e.markdown(report))
    return 1 if any(c["error"] for c in report["cases"]) else 0


def run_command(args) -> int:
    """Run the benchmark and print the markdown report (or serve as a worker)."""
    from videomamba.bench import gpu

    if args.worker:
        return gpu.worker_main(args.worker)
    results = gpu.run(gpu.options_from_args(args))
    from videomamba.bench import report

    print(report.markdown(results))
    print(f"results in {args.out}/ (results.json, results.md, bench.png, logs/)")
    failed_checks = results.get("checks") is not None and not results["checks"]["pass"]
    return 1 if failed_checks else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m videomamba.bench.gpu``), same options as the sub-command."""
    parser = argparse.ArgumentParser(prog="python -m videomamba.bench.gpu", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    from videomamba.bench.gpu import add_arguments

    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run_command(args)
