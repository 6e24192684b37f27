"""`videomamba pretrain` as a Ray job entrypoint (same options)::

    ray job submit --working-dir . -- python pipelines/pretrain.py \
        --config configs/pretrain_demo.yaml [--set key=value ...] [--resume] [--export PATH]

or `videomamba submit -- pretrain ...`: masked pretraining, then the student exported for
fine-tuning (see ``videomamba.commands.pretrain``). Joins the job's cluster (`RAY_ADDRESS`).
"""

from __future__ import annotations

import sys

from videomamba.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
