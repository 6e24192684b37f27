"""Starting or joining Ray, in one place: the command layer and the two drivers (``run_training``,
``run_search``) call :func:`init_ray`; library code never starts Ray on its own."""

from __future__ import annotations

import math
import os


def init_ray(min_cpus: float | None = None, *, num_cpus: int | None = None, **kwargs) -> bool:
    """Join the cluster at ``RAY_ADDRESS``, else start a local Ray without a dashboard, with
    ``num_cpus`` logical CPUs when given, else ``max(os.cpu_count(), ceil(min_cpus))`` (a small
    machine is oversubscribed so that training workers and the data tasks next to them fit). Does
    nothing when this process is already connected. ``kwargs`` go to ``ray.init`` (after the
    console's verbosity settings). Returns whether it connected now."""
    import ray

    from videomamba import console

    if ray.is_initialized():
        return False
    options = {**console.ray_init_kwargs(), **kwargs}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], **options)
        return True
    if num_cpus is None:
        num_cpus = max(os.cpu_count() or 1, int(math.ceil(min_cpus or 0)))
    ray.init(num_cpus=num_cpus, **{"include_dashboard": False, **options})
    return True
