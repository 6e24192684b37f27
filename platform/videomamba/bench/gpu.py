"""``python -m videomamba.bench.gpu ARGS``: the same as ``videomamba bench ARGS`` (kept because
benchmarks/README.md and recorded results name this command line). The harness lives in
:mod:`videomamba.bench.run`; the command line in :mod:`videomamba.commands.bench`."""

if __name__ == "__main__":
    import sys

    from videomamba.commands.bench import main

    sys.exit(main())
