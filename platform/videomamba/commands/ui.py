"""``videomamba ui``: the MLflow UI on 127.0.0.1 for the configured tracking store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("ui", help="start the MLflow UI (127.0.0.1) on the runs' tracking store", description=__doc__)
    p.add_argument("--tracking-uri", help="store to browse (default: mlflow.tracking_uri of --config, "
                                          "$MLFLOW_TRACKING_URI, else sqlite:///<root>/mlflow.db)")
    p.add_argument("--config", "-c", help="take the tracking URI / run root from this training config")
    p.add_argument("--root", default=None, help="run directory holding mlflow.db (default: run.root, 'runs')")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=run_command)


def tracking_uri_for(args) -> str:
    from videomamba.train.tracking import resolve_tracking_uri

    if args.tracking_uri:
        return args.tracking_uri
    configured, root = None, "runs"
    if args.config:
        from videomamba.train.config import load_config

        cfg = load_config(args.config)
        configured, root = cfg.mlflow.tracking_uri, cfg.run.root
    return resolve_tracking_uri(configured, args.root or root)


def run_command(args) -> int:
    uri = tracking_uri_for(args)
    if uri.startswith("sqlite:///") and not os.path.exists(uri.removeprefix("sqlite:///")):
        print(f"note: {uri} does not exist yet (run `videomamba demo` or `videomamba train` first)", file=sys.stderr)
    exe = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    cmd = [exe, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI for {uri}: http://127.0.0.1:{args.port}  (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
