"""Running on a Ray cluster: job submission through the Jobs API (``submit``) and node roles
(``placement``). Names are imported lazily: ``import videomamba.cluster`` does not import Ray."""

from __future__ import annotations

from videomamba._lazy import lazy_getattr

_EXPORTS = {
    "submit": "submit",
    "JobOutcome": "submit",
    "build_runtime_env": "submit",
    "to_entrypoint": "submit",
    "resolve_address": "submit",
    "DECODE_RESOURCE": "placement",
    "TRAIN_RESOURCE": "placement",
    "node_marker": "placement",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
