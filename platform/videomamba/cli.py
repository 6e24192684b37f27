"""``videomamba`` command line: one sub-command per module under ``videomamba.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

from videomamba import console, errors

# Each entry is a module in videomamba.commands exposing ``register(subparsers)``;
# ``register`` adds its parser and sets ``func`` (called with the parsed args, returns an exit code).
COMMAND_MODULES = ["info", "data", "train", "pretrain", "evaluate", "predict", "retrieve", "demo", "ui", "tune", "submit", "bench", "checkpoint"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videomamba", description="VideoMamba on Ray")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output: -v everything Ray and MLflow log (quiet by default when stderr is not "
                             "a terminal), -vv debug logging")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (also ${errors.DEBUG_ENV}=1); accepted after the command too")
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


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Take ``--debug`` from anywhere before a ``--`` (``videomamba evaluate ... --debug`` works too)."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a != "--debug"]
    return head + argv[end:], len(head) != end


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become one line on stderr and an exit code (see ``videomamba.errors``)."""
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = debug = debug or args.debug or errors.debug_enabled()
    console.configure(args.verbose)  # quiet when stderr is not a terminal, unless -v
    if not getattr(args, "func", None):
        parser.print_help()
        return errors.EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the CLI's one error layer
        if debug:
            raise
        code, message = errors.describe(err)
        if code == errors.EXIT_INTERRUPTED:
            print("\ninterrupted", file=sys.stderr)
        else:
            hint = "" if code == errors.EXIT_USAGE else f"  (traceback: --debug or {errors.DEBUG_ENV}=1)"
            print(f"error: {message}{hint}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
