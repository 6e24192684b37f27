"""Hyperparameter search as a Ray job (same options as ``videomamba tune``)::

    ray job submit --working-dir . -- python pipelines/tune.py \
        --config configs/demo.yaml --space search_spaces/scan_order.yaml [--num-samples N] \
        [--max-concurrent M] [--resume] [--set key=value ...]

Joins the cluster of the job (``RAY_ADDRESS``); see ``videomamba.tune.runner``.
"""

from __future__ import annotations

import sys

from videomamba.commands.tune import main

if __name__ == "__main__":
    sys.exit(main())
