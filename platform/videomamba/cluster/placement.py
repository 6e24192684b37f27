"""Node roles by custom resource: decode nodes advertise ``decode_node: 1``, training nodes
``train_node: 1`` (cluster.yaml). Work asks for a tiny amount (:func:`node_marker`) to be placed on
that kind of node without limiting its concurrency; CPUs and GPUs remain the real limits.

Config wiring: ``data.decode_resources: {decode_node: 0.001}`` and
``scaling.resources_per_worker: {train_node: 0.001}``. The helpers below check where work ran,
from Ray's state API (needs the dashboard).
"""

from __future__ import annotations

from collections.abc import Iterable

DECODE_RESOURCE = "decode_node"
TRAIN_RESOURCE = "train_node"
MARKER_AMOUNT = 0.001  # Ray resolves fractional resources to 1e-4


def node_marker(resource: str, amount: float = MARKER_AMOUNT) -> dict[str, float]:
    """``{resource: amount}``: a request that pins work to nodes advertising ``resource``."""
    return {resource: amount}


def nodes_with_resource(resource: str, address: str | None = None) -> set[str]:
    """Ids of the alive nodes that advertise ``resource``."""
    from ray.util.state import list_nodes

    nodes = list_nodes(address=address, filters=[("state", "=", "ALIVE")], detail=True, raise_on_missing_output=False)
    return {n.node_id for n in nodes if (n.resources_total or {}).get(resource, 0) > 0}


def task_nodes(name_contains: str, address: str | None = None, limit: int = 10_000) -> dict[str, set[str]]:
    """``{task name: node ids}`` of the tasks whose name contains ``name_contains`` (all attempts)."""
    from ray.util.state import list_tasks

    out: dict[str, set[str]] = {}
    for t in list_tasks(address=address, limit=limit, detail=True, raise_on_missing_output=False):
        if name_contains in (t.name or "") and t.node_id:
            out.setdefault(t.name, set()).add(t.node_id)
    return out


def actors(class_contains: str, address: str | None = None, limit: int = 10_000) -> dict[str, str]:
    """``{actor id: node id}`` of the actors (alive or dead) whose class name contains ``class_contains``."""
    from ray.util.state import list_actors

    return {
        a.actor_id: a.node_id
        for a in list_actors(address=address, limit=limit, detail=True, raise_on_missing_output=False)
        if class_contains in (a.class_name or "") and a.node_id
    }


def actor_nodes(class_contains: str, address: str | None = None, limit: int = 10_000) -> set[str]:
    """Node ids of the actors (alive or dead) whose class name contains ``class_contains``."""
    return set(actors(class_contains, address=address, limit=limit).values())


def outside(node_ids: Iterable[str], allowed: Iterable[str]) -> set[str]:
    """The ids in ``node_ids`` that are not in ``allowed``."""
    return set(node_ids) - set(allowed)
