"""``videomamba predict``: top-k classes for video files with a trained checkpoint."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="classify video files with a checkpoint", description=__doc__)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint directory or URI (with model.pt, meta.json), or an MLflow model URI "
                        "(models:/NAME/VERSION, runs:/RUN_ID/model)")
    p.add_argument("--tracking-uri", help="MLflow store for models:/ and runs:/ URIs "
                                          "(default: $MLFLOW_TRACKING_URI, else sqlite:///runs/mlflow.db)")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (local paths or URIs)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--views", choices=["test", "val"], default="test",
                   help="evaluation views of this split (clips x crops) averaged per video")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    from collections import Counter

    from videomamba.commands._common import checkpoint_arg, device_arg
    from videomamba.inference.predict import predict_videos

    device = device_arg(args.device)
    checkpoint = checkpoint_arg(args.checkpoint)
    failed: Counter = Counter()
    preds = predict_videos(checkpoint, args.videos, top_k=args.top_k, split=args.views, device=device,
                           tracking_uri=args.tracking_uri)
    for pred in preds:
        if pred.top is None:
            failed[pred.reason or "error"] += 1
            print(f"{pred.path}: ERROR {pred.error}")
            continue
        print(f"{pred.path} ({pred.num_views} views):")
        if pred.warning:
            print(f"  WARNING: {pred.warning}")
        for name, prob in pred.top:
            print(f"  {prob:7.2%}  {name}")
    if failed:
        reasons = ", ".join(f"{r} {n}" for r, n in failed.items())
        print(f"{sum(failed.values())} of {len(preds)} videos not predicted ({reasons})")
    return 1 if failed else 0
