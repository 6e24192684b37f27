"""``videomamba`` command line: one sub-command per module under ``videomamba.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each entry is a module in videomamba.commands exposing ``register(subparsers)``;
# ``register`` adds its parser and sets ``func`` (called with the parsed args, returns an exit code).
COMMAND_MODULES = ["info", "data", "train", "evaluate", "predict", "retrieve", "demo", "ui", "tune", "submit", "bench", "checkpoint"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videomamba", description="VideoMamba on Ray")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"videomamba.commands.{name}")
        except ModuleNotFoundError as err:  # command not built (yet) in this checkout
            if err.name == f"videomamba.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
