"""Import structure of the ``videomamba`` package: no import cycles between its own modules, and
every module imports in a fresh interpreter whichever module comes first.

What counts as an import of module A by module B (the edges of the graph the cycle check walks):

- every ``import`` / ``from ... import`` of a ``videomamba`` module in B, read with ``ast`` (never
  executed), **at module level and inside functions alike**: an import moved into a function body
  to dodge a circle still ties the two modules together; the layering (``ops`` -> ``modules`` ->
  ``models`` ... -> ``commands`` -> ``cli``) is what this protects, and a function-local import is
  kept only to keep a heavy optional dependency (Ray, MLflow, Triton, decord) off a cheap path;
- a package's lazy re-export table (``_LAZY`` / ``_EXPORTS``: a dict of names to its modules, read
  by its module ``__getattr__``): the package imports those modules on first attribute access.

Not counted: imports under ``if TYPE_CHECKING:`` (never run), and the implicit import of a
module's parent packages (Python initialises those first, so a package ``__init__`` that
re-exports its own submodules is not a cycle; an explicit ``from videomamba.ops import x`` in a
submodule of ``ops`` does count).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[1] / "platform"
PACKAGE = "videomamba"
LAZY_TABLES = {"_LAZY", "_EXPORTS"}


def package_modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package (packages by their ``__init__``)."""
    out = {}
    for path in sorted((PLATFORM / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(PLATFORM).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The package module that ``name`` (a module or a name inside one) resolves to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """``{imported package module: first line}`` for one module (see the module docstring)."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        target = _owner(target, modules) if target else None
        if target and target != module:
            found.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        add(alias.name, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = here[: len(here) - child.level + 1]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source.split(".")[0] == PACKAGE:
                    for alias in child.names:  # a submodule (from . import x) or a name in ``source``
                        sub = f"{source}.{alias.name}"
                        add(sub if sub in modules else source, child.lineno)
            elif (isinstance(child, ast.Assign) and isinstance(child.value, ast.Dict)
                  and any(isinstance(t, ast.Name) and t.id in LAZY_TABLES for t in child.targets)):
                for value in child.value.values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        name = value.value if value.value.startswith(f"{PACKAGE}.") else f"{module}.{value.value}"
                        add(name, child.lineno)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def import_graph() -> dict[str, dict[str, int]]:
    modules = package_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def tangles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan): each module of one
    reaches every other through imports, i.e. sits on a cycle with it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strong(v: str) -> None:  # the package has ~100 modules: recursion depth is no concern
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(components, key=lambda c: (len(c), sorted(c)))


def _shortest_cycle(graph: dict[str, dict[str, int]], component: set[str]) -> list[str]:
    """The shortest ``[a, ..., a]`` inside ``component`` (breadth-first from each member)."""
    best: list[str] = []
    for start in sorted(component):
        parents: dict[str, str | None] = {start: None}
        frontier, closing = [start], None
        while frontier and closing is None:
            closing = next((v for v in frontier if start in graph[v]), None)
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w in component and w not in parents:
                        parents[w] = v
                        nxt.append(w)
            frontier = nxt
        if closing is None:
            continue
        path = [start]
        while closing is not None:
            path.insert(1, closing)
            closing = parents[closing]
        path = path[1:] + [start]  # start, ..., the module that imports start, start
        if not best or len(path) < len(best):
            best = path
    return best


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The shortest cycle (``[a, b, ..., a]``) through each of :func:`tangles`."""
    return [_shortest_cycle(graph, c) for c in tangles(graph)]


def describe(component: set[str], graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> str:
    cycle = _shortest_cycle(graph, component)
    steps = [f"{len(component)} modules on cycles: {', '.join(sorted(component))}; e.g."]
    for a, b in zip(cycle, cycle[1:]):
        where = modules[a].relative_to(PLATFORM)
        steps.append(f"{a} -> {b} ({where}:{graph[a][b]})")
    return "  " + "\n  ".join(steps)


def test_no_import_cycles():
    graph = import_graph()
    modules = package_modules()
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk found the package
    found = tangles(graph)
    assert not found, (
        f"import cycles between videomamba modules in {len(found)} group(s) (function-local imports "
        "count; see this test's docstring):\n" + "\n\n".join(describe(c, graph, modules) for c in found))


def test_cycle_check_sees_function_local_and_lazy_imports(tmp_path, monkeypatch):
    """The checker itself: a cycle made only of a function-local import and a lazy export table
    is found; a TYPE_CHECKING import and a child's implicit parent import are not edges."""
    root = tmp_path / PACKAGE
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text('_LAZY = {"thing": "videomamba.low"}\n')
    (root / "low.py").write_text("def f():\n    from videomamba.high import g\n")
    (root / "high.py").write_text("import videomamba\n")
    (root / "sub" / "__init__.py").write_text("from .leaf import x\n")
    (root / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from videomamba.high import g\nx = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "PLATFORM", tmp_path)
    graph = import_graph()
    assert graph["videomamba.sub.leaf"] == {} and graph["videomamba.sub"] == {"videomamba.sub.leaf": 1}
    assert find_cycles(graph) == [["videomamba", "videomamba.low", "videomamba.high", "videomamba"]]


# each module first: one interpreter, the package's modules dropped from sys.modules before each
# (third-party imports stay loaded, which keeps this fast); then all of them in file order and in
# reverse order without clearing. A failure names the module and the order.
_IMPORT_ALL = r"""
import importlib, json, sys, traceback
names = json.loads(sys.argv[1])
failures = []

def clear():
    for name in [m for m in sys.modules if m == "videomamba" or m.startswith("videomamba.")]:
        del sys.modules[name]

def attempt(name, order):
    try:
        importlib.import_module(name)
    except BaseException as err:  # noqa: BLE001 - every failure is reported
        failures.append({"module": name, "order": order,
                         "error": "".join(traceback.format_exception_only(type(err), err)).strip()})

for name in names:
    clear()
    attempt(name, "first")
for order, sequence in (("file order", names), ("reverse file order", names[::-1])):
    clear()
    for name in sequence:
        attempt(name, order)
print(json.dumps(failures))
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = sorted(package_modules())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLATFORM), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _IMPORT_ALL, json.dumps(names)], capture_output=True,
                          text=True, env=env, timeout=600, cwd=PLATFORM.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "modules that do not import:\n" + "\n".join(
        f"  {f['module']} ({f['order']}): {f['error']}" for f in failures)


def test_cli_start_up_imports_no_heavy_dependency():
    """``videomamba --help`` builds every sub-command's parser: it must not import torch, Ray,
    MLflow, Triton or decord (function-local imports keep them off this path)."""
    script = (
        "import sys, videomamba.cli as cli\n"
        "cli.build_parser()\n"
        "print(' '.join(m for m in ('torch', 'ray', 'mlflow', 'triton', 'decord', 'pandas') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLATFORM), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [], f"building the CLI parser imported {proc.stdout.strip()}"
