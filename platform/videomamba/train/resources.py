"""What a training run asks of the Ray cluster, whether the cluster can give it, and how long to wait.

A run (a ``videomamba train`` or one Tune trial) asks for ``scaling.num_workers`` training workers
of ``{CPU: scaling.cpus_per_worker, GPU: scaling.gpus_per_worker, **scaling.resources_per_worker}``
each (Ray Train reserves them as one placement group), plus the Ray Data decode tasks that feed
them, plus, in a search, the trial's driver function. The data stage needs room for one task of
``{CPU: max(1, data.decode_num_cpus), **data.decode_resources}`` next to the workers, or no clip
ever reaches them: the pipeline's read stage (``ray.data.range`` over the manifest rows) runs
tasks of 1 CPU (Ray Data's default, not configurable there) before the decode tasks.

- :func:`request_for` -> :class:`ResourceRequest`; :func:`cluster_capacity` -> :class:`Capacity`
  (total, free and the largest node, read from the GCS: no dashboard needed).
- :func:`check_fits` raises :class:`InsufficientResourcesError` (a ``ConfigError``) when the
  request can never fit the cluster (more in total than the cluster has, or one worker larger
  than any node), with both sets of numbers. Clusters that start nodes on demand are checked
  against their autoscaler's maximum.
- Placement bound (``scaling.placement_timeout_s``, default :data:`DEFAULT_PLACEMENT_TIMEOUT_S`):
  Ray Train waits for a worker group's placement group in attempts of
  ``RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S`` seconds and, by default, retries forever. A run here
  makes attempts of at most :data:`ATTEMPT_S` seconds, at most as many as fit in the bound
  (``FailureConfig.controller_failure_limit``), then fails with :class:`PlacementTimeoutError`
  naming what it asked for and what the cluster has free. The count covers the whole run
  (restarts after worker failures place a new group too).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from videomamba.train.config import ConfigError

#: default bound on waiting for a worker group's resources (seconds): long enough for an
#: autoscaler to start a GPU node, short enough that a run that can never start says so
DEFAULT_PLACEMENT_TIMEOUT_S = 600.0
#: longest single placement attempt (seconds; Ray Train's own default attempt length)
ATTEMPT_S = 60.0
#: Ray Train's per-attempt worker-group start timeout (read by its controller)
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"
#: CPUs of one read task of the data pipeline (Ray Data's default for ``ray.data.range``)
READ_TASK_CPUS = 1.0
#: resources that are counted, not reserved (never part of a request or of "free")
_UNCOUNTED = ("memory", "object_store_memory")


class InsufficientResourcesError(ConfigError):
    """The run asks for more than the cluster can ever give; raised before anything starts."""


class PlacementTimeoutError(RuntimeError):
    """The run's workers could not be placed within ``scaling.placement_timeout_s``."""


class RunStopped(RuntimeError):
    """The run was ended from outside (its Tune trial was stopped by the search)."""


def _fmt(res: Mapping[str, float]) -> str:
    items = sorted((k, v) for k, v in res.items() if v)
    return "{" + ", ".join(f"{k}: {v:.4g}" for k, v in items) + "}"


def _add(*parts: Mapping[str, float], scale: float = 1.0) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0.0) + v * scale
    return out


@dataclass(frozen=True)
class ResourceRequest:
    """What one run asks for: ``num_workers`` x ``per_worker`` + one ``decode`` task + ``driver``."""

    num_workers: int
    per_worker: dict[str, float]
    decode: dict[str, float] = field(default_factory=dict)
    driver: dict[str, float] = field(default_factory=dict)

    @property
    def workers(self) -> dict[str, float]:
        return _add(self.per_worker, scale=self.num_workers)

    @property
    def run(self) -> dict[str, float]:
        """What the training run itself holds: workers + one decode task."""
        return _add(self.workers, self.decode)

    @property
    def total(self) -> dict[str, float]:
        return _add(self.workers, self.decode, self.driver)

    def describe(self) -> str:
        """``2 workers x {CPU: 1} + decode {CPU: 1} = {CPU: 3}``."""
        text = f"{self.num_workers} training worker{'s' if self.num_workers != 1 else ''} x {_fmt(self.per_worker)}"
        if self.decode:
            text += f" + decode {_fmt(self.decode)}"
        if self.driver:
            text += f" + trial driver {_fmt(self.driver)}"
        return f"{text} = {_fmt(self.total)}"


@dataclass(frozen=True)
class Capacity:
    """A cluster's resources: ``total`` and ``free`` now, the largest ``node`` (per resource), and
    ``maximum`` (the autoscaler's upper bound; equal to ``total`` on a fixed cluster)."""

    total: dict[str, float]
    free: dict[str, float]
    node: dict[str, float]
    maximum: dict[str, float]

    def describe(self) -> str:
        text = f"{_fmt(self.free)} free of {_fmt(self.total)}"
        if self.maximum != self.total:
            text += f" (up to {_fmt(self.maximum)} with autoscaling)"
        return text


def worker_resources(scaling, gpus: float) -> dict[str, float]:
    """One training worker's Ray resources (``gpus``: resolved ``scaling.gpus_per_worker``)."""
    res = {"CPU": float(scaling.cpus_per_worker)}
    if gpus:
        res["GPU"] = float(gpus)
    res.update(scaling.resources_per_worker)
    return res


def request_for(cfg, gpus: float, driver: Mapping[str, float] | None = None) -> ResourceRequest:
    """The request of a run of ``cfg`` (a ``TrainConfig``) whose workers use ``gpus`` GPUs each."""
    decode = {"CPU": max(READ_TASK_CPUS, float(cfg.data.decode_num_cpus)), **cfg.data.decode_resources}
    return ResourceRequest(cfg.scaling.num_workers, worker_resources(cfg.scaling, gpus), decode, dict(driver or {}))


def resolve_gpus(cfg, total: Mapping[str, float]) -> float:
    """``scaling.gpus_per_worker``, its default (one GPU per worker when the cluster has GPUs) resolved."""
    gpus = cfg.scaling.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if total.get("GPU", 0) >= 1 else 0.0
    return float(gpus)


_PG_RESOURCE = re.compile(r"_group_(\d+_)?[0-9a-f]{16,}$")


def counted(res: Mapping[str, float]) -> dict[str, float]:
    """The reservable resources of a Ray resource dict: without memory, node ids and the
    per-placement-group resources Ray adds (``CPU_group_<id>``, ``bundle_group_<i>_<id>``)."""
    return {k: float(v) for k, v in res.items()
            if k not in _UNCOUNTED and not k.startswith("node:") and not _PG_RESOURCE.search(k)}




def cluster_capacity() -> Capacity:
    """The connected cluster's capacity (``ray.init`` first)."""
    import ray

    total = counted(ray.cluster_resources())
    free = counted(ray.available_resources())
    node: dict[str, float] = {}
    for n in ray.nodes():
        if n.get("Alive"):
            for k, v in counted(n.get("Resources", {})).items():
                node[k] = max(node.get(k, 0.0), v)
    maximum = dict(total)
    try:  # clusters that start nodes on demand: the autoscaler's maximum (what Ray Train checks too)
        from ray._private.state import state

        for k, v in counted(state.get_max_resources_from_cluster_config() or {}).items():
            maximum[k] = max(maximum.get(k, 0.0), v)
            node[k] = max(node.get(k, 0.0), v) if k not in node else node[k]
    except Exception:  # noqa: BLE001 - no autoscaler config: a fixed cluster
        pass
    return Capacity(total=total, free=free, node=node, maximum=maximum)


def unfit(request: ResourceRequest, capacity: Capacity, concurrent: int = 1) -> list[str]:
    """Why ``concurrent`` runs of ``request`` can never be placed on ``capacity`` (empty: they can)."""
    problems = []
    need = _add(request.total, scale=concurrent)
    for k, v in sorted(need.items()):
        have = capacity.maximum.get(k, 0.0)
        if v > have + 1e-9:
            what = f"{concurrent} concurrent trials need" if concurrent > 1 else "needs"
            problems.append(f"{k}: {what} {v:.4g}, the cluster has {have:.4g}")
    for label, part in (("one training worker", request.per_worker), ("one decode task", request.decode)):
        for k, v in sorted(part.items()):
            if v > capacity.node.get(k, 0.0) + 1e-9 and capacity.maximum.get(k, 0.0) >= v:
                problems.append(f"{k}: {label} needs {v:.4g}, the largest node has {capacity.node.get(k, 0.0):.4g}")
    return problems


def check_fits(request: ResourceRequest, capacity: Capacity, *, what: str = "the run", concurrent: int = 1,
               hint: str = "") -> None:
    """Raise :class:`InsufficientResourcesError` when ``request`` can never fit ``capacity``."""
    problems = unfit(request, capacity, concurrent)
    if problems:
        lines = "\n  ".join(problems)
        raise InsufficientResourcesError(
            f"{what} cannot fit this cluster: it asks for {request.describe()}; the cluster has "
            f"{_fmt(capacity.maximum)} in all, its largest node {_fmt(capacity.node)}.\n  {lines}\n"
            "Lower scaling.num_workers / scaling.cpus_per_worker / scaling.gpus_per_worker / "
            f"data.decode_num_cpus, or use a larger cluster.{hint}"
        )


# ------------------------------------------------------------------------------------------------
def placement_attempts(timeout_s: float) -> tuple[float, int]:
    """``(attempt seconds, retries)`` so that all attempts together last ``timeout_s``."""
    attempt = min(ATTEMPT_S, float(timeout_s))
    return attempt, max(0, math.ceil(timeout_s / attempt - 1e-9) - 1)


@contextlib.contextmanager
def start_timeout(attempt_s: float) -> Iterator[None]:
    """Set Ray Train's per-attempt worker-group start timeout for the controllers started inside
    (they copy it from this process's environment when they start)."""
    old = os.environ.get(START_TIMEOUT_ENV)
    os.environ[START_TIMEOUT_ENV] = f"{attempt_s:g}"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(START_TIMEOUT_ENV, None)
        else:
            os.environ[START_TIMEOUT_ENV] = old


def is_placement_timeout(err: BaseException) -> bool:
    """Whether ``err`` is Ray Train giving up on placing its worker group."""
    from ray.train.v2._internal.exceptions import WorkerGroupStartupTimeoutError

    failure = getattr(err, "controller_failure", None)
    return isinstance(failure, WorkerGroupStartupTimeoutError) or isinstance(err, WorkerGroupStartupTimeoutError)


def placement_timeout_error(request: ResourceRequest, timeout_s: float, what: str = "the run") -> PlacementTimeoutError:
    """The error for a run whose workers found no room for ``timeout_s`` seconds, with the
    cluster's free resources and what holds the rest (placement groups of other runs)."""
    try:
        capacity = cluster_capacity()
        have = capacity.describe()
        held = held_by_placement_groups()
    except Exception:  # noqa: BLE001 - the message must not fail
        have, held = "unknown (the cluster could not be read)", ""
    return PlacementTimeoutError(
        f"{what} could not place its workers within {timeout_s:g} s (scaling.placement_timeout_s): it asks for "
        f"{ResourceRequest(request.num_workers, request.per_worker).describe()}; the cluster has {have}.{held} "
        "Free resources (stop other runs) or lower scaling.num_workers / scaling.cpus_per_worker."
    )


def held_by_placement_groups() -> str:
    """`` N placement groups hold {CPU: 2}.`` for the placement groups alive now (empty if none)."""
    import ray

    alive = [pg for pg in ray.util.placement_group_table().values() if pg.get("state") in ("CREATED", "PREPARED")]
    if not alive:
        return ""
    held = _add(*[b for pg in alive for b in pg.get("bundles", {}).values()])
    return f" {len(alive)} placement group{'s' if len(alive) != 1 else ''} (training runs) hold {_fmt(counted(held))}."
