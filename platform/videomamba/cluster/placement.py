"""Node roles by custom resource: decode nodes advertise ``decode_node: 1``, training nodes
``train_node: 1`` (cluster.yaml). Work asks for a tiny amount (:func:`node_marker`) to be placed on
that kind of node without limiting its concurrency; CPUs and GPUs remain the real limits.

Config wiring: ``data.decode_resources: {decode_node: 0.001}`` and
``scaling.resources_per_worker: {train_node: 0.001}``.
"""

from __future__ import annotations

DECODE_RESOURCE = "decode_node"
TRAIN_RESOURCE = "train_node"
MARKER_AMOUNT = 0.001  # Ray resolves fractional resources to 1e-4


def node_marker(resource: str, amount: float = MARKER_AMOUNT) -> dict[str, float]:
    """``{resource: amount}``: a request that pins work to nodes advertising ``resource``."""
    return {resource: amount}
