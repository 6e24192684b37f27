"""``videomamba bench``: GPU throughput/memory vs an attention baseline, correctness checks,
profiles (see ``videomamba.bench.gpu``). Also ``python -m videomamba.bench.gpu``."""

from __future__ import annotations

import argparse
import logging
import sys


def register(subparsers) -> None:
    from videomamba.bench.gpu import add_arguments

    p = subparsers.add_parser("bench", help="benchmark VideoMamba backends against an attention baseline",
                              description=__doc__)
    add_arguments(p)
    p.set_defaults(func=run_command)


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
