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
    local = {"include_dashboard": False, "runtime_env": {"worker_process_setup_hook": WITHOUT_STATE_API_HOOK}}
    ray.init(num_cpus=num_cpus, **{**local, **options})
    return True


#: ``worker_process_setup_hook`` of the local Ray (no dashboard, hence no state API)
WITHOUT_STATE_API_HOOK = "videomamba.cluster.connect.quiet_state_api_pollers"


def quiet_state_api_pollers() -> None:
    """In each worker of a local Ray started without a dashboard: Ray Train's placement-group
    cleaner asks the state API (served by the dashboard) whether the controller lives, once a
    second, and logs a warning each time it cannot (Ray 2.60: ~300 lines in a 5-minute demo).
    Without a state API it cannot act anyway; the runs release their own placement groups."""
    import logging

    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)
