"""`videomamba tune` as a Ray job entrypoint (same options)::

    ray job submit --working-dir . -- python pipelines/tune.py \
        --config configs/demo.yaml --space search_spaces/scan_order.yaml [--num-samples N] \
        [--max-concurrent M] [--resume] [--set key=value ...]

or `videomamba submit -- tune ...`. Joins the job's cluster (`RAY_ADDRESS`); see ``videomamba.tune.runner``.
"""

from __future__ import annotations

import sys

from videomamba.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
