"""Hyperparameter search: search-space YAML -> Ray Tune + Optuna over full training runs, with
one MLflow parent run per search and a nested child run per trial. Imports are lazy."""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"videomamba.tune.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'videomamba.tune' has no attribute {name!r}")
