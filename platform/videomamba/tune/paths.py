"""Dotted training-config paths of a search space (``optim.lr``, ``objective.mask.ratio``,
``model.overrides.depth``) checked against the config schema without a base config.

The schema forbids unknown keys everywhere (``extra="forbid"``, ``model.overrides`` typed from the
model's signature), so a path is valid when each key is a field of the model reached so far
(of any member, for a union such as ``objective``) or lies below a free-form mapping.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from videomamba.train.config import MOVED_KEYS, did_you_mean, models_in


def get_dotted(tree: dict, path: str, default: Any = None) -> Any:
    """``tree["a"]["b"]`` for ``path == "a.b"`` (``default`` when absent)."""
    node: Any = tree
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def schema_path_error(path: str, root: type[BaseModel] | None = None) -> str | None:
    """None if dotted ``path`` names a field of the training config schema (``TrainConfig``), else
    why not (naming the nearest valid key, or the new key of an old spelling)."""
    if root is None:
        from videomamba.train.config import TrainConfig as root  # noqa: N813
    parts = path.split(".")
    if not all(p.isidentifier() for p in parts):
        return f"{path!r} is not a dotted path of identifiers"
    if path in MOVED_KEYS:
        return f"{path!r} is now {MOVED_KEYS[path]!r}"
    models: list[type[BaseModel]] = [root]
    for i, key in enumerate(parts):
        here = ".".join(parts[:i]) or "<config>"
        fields = [m.model_fields[key] for m in models if key in m.model_fields]
        if not fields:
            valid = list(dict.fromkeys(k for m in models for k in m.model_fields))
            if len(models) > 1:
                return f"{'.'.join(parts[: i + 1])!r} is not a field of any variant of {here}"
            return f"unknown key {'.'.join(parts[: i + 1])!r}{did_you_mean(key, valid)}"
        models = [m for f in fields for m in models_in(f.annotation)]
        if not models and i + 1 < len(parts):
            if any(_free_form(f.annotation) for f in fields):
                return None
            kind = getattr(fields[0].annotation, "__name__", fields[0].annotation)
            return f"{'.'.join(parts[: i + 1])} is a value ({kind}), it has no key {parts[i + 1]!r}"
    return None


def _free_form(annotation: Any) -> bool:
    """A mapping (``dict[str, float]``, ``dict[str, Any]``) or ``Any``: keys are not in the schema."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_free_form(a) for a in typing.get_args(annotation))
    return origin is dict or annotation is dict
