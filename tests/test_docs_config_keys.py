"""Every training-config key that README.md and docs/*.md mention exists in the config schema
(issue 16: the README documented a `model.backend` key that did not exist)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from videomamba.train.config import flatten
from videomamba.tune.paths import schema_path_error

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SECTIONS = ("model", "data", "objective", "optim", "schedule", "train", "scaling", "eval", "mlflow", "run", "debug")
# a dotted name starting with a config section, not inside a longer name or path (videomamba.train.x, a/b.c)
DOTTED = re.compile(r"(?<![\w./\-])(?:%s)(?:\.[A-Za-z_]\w*)+(?![\w(/])" % "|".join(SECTIONS))
CODE_SPAN = re.compile(r"`([^`\n]+)`")
YAML_BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)
FILE_SUFFIXES = ("pt", "pth", "safetensors", "py", "json", "yaml", "csv", "txt", "png")
#: dotted names in the docs that are not config keys on purpose
NOT_KEYS = {
    "train.batchsize",  # README: an example of the unknown-key error
}
NOT_KEY_PREFIXES = ("mlflow.pyfunc", "mlflow.source", "mlflow.parentRunId", "mlflow.runName")


@cache
def package_names() -> dict[str, set[str]]:
    """Module or package name (``tracking``, ``train``, ``run``) -> the names it defines or holds,
    for every module of the package: ``train.tracking.plot_curves`` or ``run.fill_missing`` in
    the docs are Python objects, not config keys."""
    out: dict[str, set[str]] = {}
    for path in (ROOT / "platform" / "videomamba").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        stem = path.parent.name if path.stem == "__init__" else path.stem
        out.setdefault(stem, set()).update(names)
        out.setdefault(path.parent.name, set()).add(path.stem)
    return out


def is_python_name(key: str) -> bool:
    first, second = key.split(".")[:2]
    return second[:1].isupper() or second in package_names().get(first, set())


def mentioned_keys(text: str) -> set[str]:
    """Config keys in code spans (`model.backend`, `--set train.epochs=3`) and in fenced YAML
    blocks whose top level is config sections."""
    keys = set()
    for span in CODE_SPAN.findall(YAML_BLOCK.sub("", text)):
        for key in DOTTED.findall(span):
            if (key.rsplit(".", 1)[-1] in FILE_SUFFIXES or key in NOT_KEYS or key.startswith(NOT_KEY_PREFIXES)
                    or is_python_name(key)):
                continue
            keys.add(key)
    for block in YAML_BLOCK.findall(text):
        tree = yaml.safe_load(block)
        if isinstance(tree, dict) and tree and set(tree) <= set(SECTIONS):
            keys |= set(flatten(tree))
    return keys


def test_the_extractor_finds_keys_and_skips_what_is_not_one():
    text = ("Use `model.backend: torch`, `--set train.epochs=3` and `model.pt`; "
            "`model.forward_features(video)`, `videomamba.train.config`, `train.tracking.plot_curves`.\n"
            "```yaml\nmodel:\n  scan_order: temporal_first\n  overrides: {depth: 2}\n```\n")
    assert mentioned_keys(text) == {"model.backend", "train.epochs", "model.scan_order", "model.overrides.depth"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_config_key_in_the_docs_exists(doc):
    keys = mentioned_keys(doc.read_text())
    problems = {key: err for key in sorted(keys) if (err := schema_path_error(key))}
    assert not problems, f"{doc.name} mentions config keys the schema does not have: {problems}"
