"""A decode task's CPU per clip, uint8 vs float32 clips (issue 14), side by side in one process.

What one decode task does per block, timed with ``time.process_time`` (one torch/OpenMP thread, as
in a Ray task): ``pipeline.decode_batch`` (decode + transform [+ normalise]) on ``--rows`` manifest
rows, ``BlockAccessor.batch_to_block`` and ``ray.put`` of the block (the copy into Ray's object
store), alternating ``uint8`` / ``float32`` (ABAB, ``--repeats`` rounds). Also the consumer's
normalisation of the uint8 block on this CPU (a training worker runs it on its GPU).

    python benchmarks/clip_dtype_worker.py MANIFEST --num-frames 8 --img-size 224 \
        --randaugment rand-m7-n4-mstd0.5-inc1 --rows 4 --repeats 6
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--randaugment", default="rand-m7-n4-mstd0.5-inc1")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=6)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray
    import torch
    from ray.data.block import BlockAccessor

    from videomamba.data import pipeline
    from videomamba.data.config import DataConfig
    from videomamba.data.manifest import read_manifest, to_columns
    from videomamba.data.normalize import normalize_video
    from videomamba.data.skips import ensure_ledger
    from videomamba.env import cpu_description

    torch.set_num_threads(1)
    ray.init(num_cpus=1, include_dashboard=False, configure_logging=False)
    ensure_ledger("w")
    columns = to_columns(read_manifest(args.manifest))
    rows = np.arange(min(args.rows, len(columns["label"])))
    ra = None if args.randaugment.lower() == "none" else args.randaugment
    cfgs = {d: DataConfig(num_frames=args.num_frames, img_size=args.img_size, randaugment=ra, clip_dtype=d)
            for d in ("uint8", "float32")}
    parts = {d: {"decode_transform": 0.0, "to_block": 0.0, "ray_put": 0.0, "consumer_normalise": 0.0}
             for d in cfgs}
    clips = {d: 0 for d in cfgs}
    for r in range(args.repeats + 1):  # round 0 warms up (imports, RandAugment set-up, first open)
        for d, cfg in cfgs.items():
            t0 = time.process_time()
            out = pipeline.decode_batch(pipeline.take_rows(columns, rows, r), cfg=cfg, split="train", seed=0, scope="w")
            t1 = time.process_time()
            block = BlockAccessor.batch_to_block(out)
            t2 = time.process_time()
            ref = ray.put(block)
            t3 = time.process_time()
            normalize_video(torch.from_numpy(out["video"]), cfg.mean, cfg.std)
            t4 = time.process_time()
            del ref
            if r:
                for k, dt in zip(parts[d], (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    parts[d][k] += dt
                clips[d] += len(out["label"])
    res = {d: {k: 1000 * v / clips[d] for k, v in p.items()} for d, p in parts.items()}
    for d in res:
        res[d]["decode_task_total"] = res[d]["decode_transform"] + res[d]["to_block"] + res[d]["ray_put"]
    print(json.dumps({"machine": cpu_description(), "load_avg": os.getloadavg()[0], "clips": clips,
                      "ms_cpu_per_clip": res}, indent=1))


if __name__ == "__main__":
    main()
