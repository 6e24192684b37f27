"""`videomamba evaluate` as a Ray job entrypoint (same options)::

    ray job submit --working-dir . -- python pipelines/evaluate.py --checkpoint CKPT --manifest MANIFEST

or `videomamba submit -- evaluate ...`. Joins the job's cluster (`RAY_ADDRESS`).
"""

from __future__ import annotations

import sys

from videomamba.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
