"""``videomamba tune --config BASE.yaml --space search_spaces/NAME.yaml``: a hyperparameter search
(Ray Tune + Optuna) whose trials are full training runs, tracked in MLflow (see
``videomamba.tune.runner``). The space is validated against the base config before Ray starts."""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="hyperparameter search over training runs (Ray Tune + Optuna, MLflow)",
                              description=__doc__)
    add_arguments(p)
    p.set_defaults(func=run_command)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="base training config (YAML)")
    p.add_argument("--space", required=True, help="search space (YAML, e.g. search_spaces/demo.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base config value (dotted key, YAML value); repeatable")
    p.add_argument("--num-samples", type=int, default=None, help="trials (default: the space's search.num_samples)")
    p.add_argument("--max-concurrent", type=int, default=None, help="trials at a time (default: the space's)")
    p.add_argument("--metric", action="append", default=None,
                   help="metric to optimise (repeat for multi-objective); default: the space's")
    p.add_argument("--mode", action="append", default=None, choices=["max", "min"], help="one per --metric")
    p.add_argument("--seed", type=int, default=None, help="sampler seed (default: the space's)")
    p.add_argument("--name", default=None, help="search name (default: <space>-<timestamp>; --resume: the latest)")
    p.add_argument("--storage-path", default=None, help="Tune storage (default: <run.root>/tune); local dir or URI")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search (finished trials are kept)")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: also re-run the errored trials")
    p.add_argument("--best-config-out", default=None, help="also write the best config YAML here")
    p.add_argument("--trial-cpus", type=float, default=None,
                   help="CPUs reserved by each trial's driver function (its training workers reserve their own)")
    p.add_argument("--check", action="store_true", help="only validate the space against the config, then exit")


def run_command(args) -> int:
    from videomamba.train.config import ConfigError, load_config
    from videomamba.tune.runner import SearchError, base_tree, run_search
    from videomamba.tune.space import SpaceError, load_space

    from videomamba.train.launcher import preflight_tracking
    from videomamba.train.preflight import check_data
    from videomamba.train.tracking import TrackingError

    try:
        cfg = load_config(args.config, args.overrides)
        space = load_space(args.space)
        space.check_base(base_tree(cfg))
        check_data(cfg)  # manifests and classes file exist and parse: before Ray Tune or MLflow
        if not args.check and not args.resume:
            preflight_tracking(cfg)
    except (ConfigError, SpaceError, TrackingError) as err:
        print(err, file=sys.stderr)
        return 2
    if args.check:
        try:
            _check_resources(cfg, space, args)
        except (ConfigError, SearchError) as err:
            print(err, file=sys.stderr)
            return 2
        print(f"{args.space}: {len(space.params)} parameters, valid for {args.config}")
        for name, text in space.describe().items():
            print(f"  {name}: {text}")
        return 0
    try:
        result = run_search(
            cfg, space, num_samples=args.num_samples, max_concurrent=args.max_concurrent, metrics=args.metric,
            modes=args.mode, seed=args.seed, resume=args.resume, retry_failed=args.retry_failed, name=args.name, storage_path=args.storage_path,
            trial_resources={"CPU": args.trial_cpus} if args.trial_cpus else None, best_config_out=args.best_config_out,
        )
    except (SearchError, SpaceError, ConfigError, TrackingError) as err:
        print(err, file=sys.stderr)
        return 2
    from videomamba.tune import report

    print(report.markdown_table(result.trials, [p.name for p in space.params], result.metrics))
    if result.best:
        print(f"best trial {result.best['trial_id']}: "
              + ", ".join(f"{m}={result.best['metrics'][m]:.4g}" for m in result.metrics)
              + f"  params {result.best['overrides']}")
        print(f"best config: {result.best_config_path}   (videomamba train --config {result.best_config_path})")
    print(f"MLflow parent run {result.parent_run_id} at {result.tracking_uri} (videomamba ui); Tune: {result.path}")
    if result.interrupted:
        print(f"the search was interrupted: videomamba tune --config {args.config} --space {args.space} "
              f"--name {result.name} --resume", file=sys.stderr)
        return 130
    return 0 if result.best else 1


def _check_resources(cfg, space, args) -> None:
    """``--check``: one trial must fit the cluster (``RAY_ADDRESS``'s, else the local Ray that
    ``videomamba tune`` would start); raises InsufficientResourcesError with the numbers."""
    import os

    from videomamba.tune.runner import check_resources, local_capacity, make_plan

    plan = make_plan(space, num_samples=args.num_samples, max_concurrent=args.max_concurrent, metrics=args.metric,
                     modes=args.mode, seed=args.seed)
    driver = {"CPU": args.trial_cpus} if args.trial_cpus else None
    if os.environ.get("RAY_ADDRESS"):
        import ray

        from videomamba.cluster.connect import init_ray

        init_ray()
        try:
            check_resources(cfg, plan, driver)
        finally:
            ray.shutdown()
    else:
        check_resources(cfg, plan, driver, capacity=local_capacity(cfg, plan))
