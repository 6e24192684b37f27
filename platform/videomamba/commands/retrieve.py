"""``videomamba retrieve``: the videos of a manifest that best match text queries, with a
``contrastive`` (video-text) checkpoint (in-process, no Ray)."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("retrieve", help="text-to-video search with a video-text checkpoint", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory or URI of a contrastive run")
    p.add_argument("--query", action="append", required=True, help="a text query (repeat for several)")
    p.add_argument("--manifest", required=True, help="the videos to search: a CSV/JSONL manifest (labels optional) or a plain list of video paths")
    p.add_argument("--path-prefix", default=None, help="joined to relative video paths (default: the manifest's dir)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--views", choices=["test", "val"], default="val",
                   help="evaluation views of this split (clips x crops) averaged per video")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--output", help="also write the hits as JSON here")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    from videomamba.commands._common import checkpoint_arg, device_arg, manifest_arg
    from videomamba.inference.retrieval import retrieve

    device = device_arg(args.device)
    checkpoint = checkpoint_arg(args.checkpoint)
    manifest_arg(args.manifest, "--manifest", require_labels=False, path_prefix=args.path_prefix)
    results = retrieve(checkpoint, args.query, args.manifest, top_k=args.top_k, split=args.views, device=device,
                       path_prefix=args.path_prefix)
    for query, hits in zip(args.query, results):
        print(f"query: {query}")
        for rank, hit in enumerate(hits, 1):
            caption = f"  ({hit.caption})" if hit.caption else ""
            print(f"  {rank:2d}. {hit.score:+.3f}  {hit.path}{caption}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump([{"query": q, "hits": [vars(h) for h in hits]} for q, hits in zip(args.query, results)], f, indent=2)
    return 0
