"""``videomamba submit [--address ADDR] [--no-wait] -- COMMAND ...``: run a videomamba command
(``train --config ...``, ``tune ...``) or any script (``python pipelines/train.py ...``) as a Ray
job on a cluster, shipping this checkout; streams the job's logs and exits non-zero unless the
job SUCCEEDED (see ``videomamba.cluster.submit``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "submit",
        help="run a command as a Ray job on a cluster (Jobs API), streaming its logs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  videomamba submit -- train --config configs/demo.yaml\n"
        "  videomamba submit --env MLFLOW_TRACKING_URI=http://10.0.0.5:5000 -- train --config C.yaml --set run.storage_path=s3://b/ckpt\n"
        "  videomamba submit --env MLFLOW_TRACKING_URI=http://10.0.0.5:5000 --env MLFLOW_TRACKING_USERNAME \\\n"
        "      --env MLFLOW_TRACKING_PASSWORD -- train --config C.yaml   # credentials from this shell\n"
        "  videomamba submit --no-wait -- python pipelines/train.py --config configs/demo.yaml",
    )
    p.add_argument("--address", default=None,
                   help="Jobs API URL (default: $RAY_API_SERVER_ADDRESS, $RAY_ADDRESS, else http://127.0.0.1:8265)")
    p.add_argument("--no-wait", action="store_true", help="return after submission (prints the job id)")
    p.add_argument("--working-dir", default=None,
                   help="checkout to ship (default: the one around the current directory)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the job (repeatable), e.g. MLFLOW_TRACKING_URI=...; a bare KEY "
                        "passes this shell's value (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD: credentials "
                        "travel this way, never in uploaded files)")
    p.add_argument("--runtime-env", default=None, metavar="FILE",
                   help="YAML/JSON runtime_env merged under the generated one (pip, env_vars, ...)")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="extra gitignore-style pattern not to upload (repeatable)")
    p.add_argument("--no-ship-package", action="store_true",
                   help="use the videomamba installed on the cluster instead of this checkout's platform/")
    p.add_argument("--python", default="python", help="interpreter name on the cluster (default: python)")
    p.add_argument("--submission-id", default=None, help="job id to use (default: generated)")
    p.add_argument("--entrypoint-num-cpus", type=float, default=None, help="CPUs reserved for the driver")
    p.add_argument("--entrypoint-resources", default=None, metavar="JSON",
                   help='custom resources for the driver, e.g. \'{"head_node": 0.001}\'')
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after N seconds (job keeps running)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="after `--`: the command to run")
    p.set_defaults(func=run_command)


def _load_runtime_env(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a runtime_env must be a mapping")
    return data


def run_command(args) -> int:
    """Submit, follow, and map the final status to an exit code (0 only for SUCCEEDED)."""
    from videomamba.cluster.submit import TERMINAL, submit

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        logger.error("nothing to run: videomamba submit [options] -- train --config configs/demo.yaml")
        return 2
    try:
        outcome = submit(
            command,
            address=args.address,
            working_dir=args.working_dir,
            ship_package=not args.no_ship_package,
            env=args.env,
            excludes=args.exclude,
            runtime_env=_load_runtime_env(args.runtime_env),
            python=args.python,
            submission_id=args.submission_id,
            entrypoint_num_cpus=args.entrypoint_num_cpus,
            entrypoint_resources=json.loads(args.entrypoint_resources) if args.entrypoint_resources else None,
            wait=not args.no_wait,
            timeout_s=args.timeout,
        )
    except (FileNotFoundError, ValueError) as err:  # bad checkout, --env, --runtime-env, command
        logger.error("%s", err)
        return 2
    except (TimeoutError, ConnectionError) as err:
        logger.error("%s", err)
        return 1
    print(f"job {outcome.job_id}: {outcome.status} ({outcome.address})")
    if args.no_wait:
        print(f"follow: ray job logs --address {outcome.address} --follow {outcome.job_id}")
        return 0
    if outcome.status not in TERMINAL:  # Ctrl-C: the job goes on
        return 130
    return 0 if outcome.ok else 1
