"""Running on a Ray cluster: job submission through the Jobs API (``submit``), node roles
(``placement``) and the one place that starts or joins Ray (``connect.init_ray``). Names are
imported lazily: ``import videomamba.cluster`` does not import Ray."""

from __future__ import annotations

from videomamba._lazy import lazy_getattr

_EXPORTS = {
    "submit": "submit",
    "JobOutcome": "submit",
    "build_runtime_env": "submit",
    "to_entrypoint": "submit",
    "resolve_address": "submit",
    "init_ray": "connect",
    "DECODE_RESOURCE": "placement",
    "TRAIN_RESOURCE": "placement",
    "node_marker": "placement",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
