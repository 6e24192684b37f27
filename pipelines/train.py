"""`videomamba train` as a Ray job entrypoint (same options)::

    ray job submit --working-dir . -- python pipelines/train.py --config configs/demo.yaml [...]

or `videomamba submit -- train ...`. Joins the job's cluster (`RAY_ADDRESS`).
"""

from __future__ import annotations

import sys

from videomamba.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
