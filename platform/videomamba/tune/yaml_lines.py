"""YAML whose mappings and sequences remember their line numbers, so that errors in a search-space
file can name ``file:line`` (:func:`load_with_lines`, :func:`line_at`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


class LineDict(dict):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    line: int = 0
    item_lines: list

    def line_of(self, index: Any) -> int:
        return self.item_lines[index] if isinstance(index, int) and 0 <= index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings and sequences carry line numbers."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {out.key_lines[key]})", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.item_lines = node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def line_at(tree: Any, loc: Sequence[Any]) -> int:
    """The line of the deepest node of ``tree`` reached by following ``loc`` (pydantic error
    locations: components that are not keys, e.g. a union tag, are skipped)."""
    line, node = getattr(tree, "line", 1), tree
    for part in loc:
        if isinstance(node, (LineDict, LineList)) and (
            (isinstance(node, LineDict) and part in node) or (isinstance(node, LineList) and isinstance(part, int))
        ):
            line = node.line_of(part)
            try:
                node = node[part]
            except (KeyError, IndexError):
                break
    return line


def load_with_lines(text: str) -> Any:
    """``yaml.safe_load`` whose mappings are :class:`LineDict` and sequences :class:`LineList`.
    Raises ``yaml.YAMLError`` (duplicate keys included)."""
    return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
