"""Hyperparameter search: search-space YAML -> Ray Tune + Optuna over full training runs, with
one MLflow parent run per search and a nested child run per trial. Imports are lazy."""

from __future__ import annotations

from videomamba._lazy import lazy_getattr

_EXPORTS = {
    "SpaceError": "space",
    "SearchSpace": "space",
    "load_space": "space",
    "parse_space": "space",
    "run_search": "runner",
    "SearchResult": "runner",
    "SearchError": "runner",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
