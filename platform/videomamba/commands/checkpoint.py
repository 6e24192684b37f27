"""``videomamba checkpoint upgrade DIR...``: convert training checkpoints of format 1 (training state
as a pickle, ``train_state.pt``) to the data-only format 2 (``train_state.safetensors`` +
``train_state.json``) that ``--resume`` reads. The pickle is read with
``torch.load(weights_only=True)``: tensors and plain values only; anything else is refused."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("checkpoint", help="training checkpoint maintenance", description=__doc__)
    sub = p.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    up = sub.add_parser("upgrade", help="convert format-1 checkpoints (train_state.pt) to the data-only format",
                        description=__doc__)
    up.add_argument("directories", nargs="+", metavar="DIR", help="local checkpoint directories (epoch_NNNN)")
    up.set_defaults(func=run_upgrade)


def run_upgrade(args) -> int:
    from videomamba.checkpoints import UnsafeCheckpointError, upgrade_train_state

    failed = 0
    for directory in args.directories:
        try:
            upgrade_train_state(directory)
        except (UnsafeCheckpointError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"upgraded {directory}")
    return 1 if failed else 0
