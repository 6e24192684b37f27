"""Every package path and module the README and docs/*.md name exists: ``videomamba/...py`` and
``<sub-package>/...py`` file paths (relative to ``platform/videomamba``) and dotted
``videomamba.x.y`` names (a module, or a name defined in one). Read with ``ast``: nothing imported."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "platform" / "videomamba"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SUBPACKAGES = sorted(p.name for p in PACKAGE_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))

_NOT_IN_A_PATH = r"(?<![\w/.<>-])"
FILE = re.compile(_NOT_IN_A_PATH + r"(?:platform/)?((?:videomamba|" + "|".join(SUBPACKAGES) + r")/[\w/]*\w\.py)\b")
DOTTED = re.compile(r"(?<![\w./-])(videomamba(?:\.\w+)+)(?![\w/])(?<!\.py)")


def _module_file(parts: list[str]) -> Path | None:
    """The file (or package directory) of ``videomamba.<parts>``."""
    path = PACKAGE_DIR.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if path.is_dir():
        return path / "__init__.py" if (path / "__init__.py").is_file() else path
    return None


@cache
def _names(module_file: Path) -> frozenset[str]:
    """Top-level names of a module: definitions, assignments, imports, lazy export tables' keys."""
    if module_file.is_dir():
        return frozenset()
    names = set()
    for node in ast.walk(ast.parse(module_file.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            if isinstance(node.value, ast.Dict) and any(getattr(t, "id", "") in ("_LAZY", "_EXPORTS") for t in targets):
                names.update(k.value for k in node.value.keys if isinstance(k, ast.Constant))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def dotted_exists(name: str) -> bool:
    """``videomamba.a.b.c``: the longest prefix that is a module exists and, if something is left,
    its first part is a name defined in that module (the rest are attributes: not checked)."""
    parts = name.split(".")[1:]
    for cut in range(len(parts), -1, -1):
        module_file = _module_file(parts[:cut]) if cut else PACKAGE_DIR / "__init__.py"
        if module_file is not None:
            return cut == len(parts) or parts[cut] in _names(module_file)
    return False


def doc_references() -> list[tuple[str, str, str]]:
    """``(doc:line, kind, reference)`` for every file path and dotted name the docs mention."""
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            where = f"{doc.relative_to(ROOT)}:{number}"
            found += [(where, "file", m.group(1)) for m in FILE.finditer(line)]
            found += [(where, "module", m.group(1)) for m in DOTTED.finditer(line)]
    return found


def test_docs_name_only_existing_package_files_and_modules():
    refs = doc_references()
    assert len(refs) > 30  # the patterns still find the docs' references
    missing = []
    for where, kind, ref in refs:
        if kind == "file":
            rel = ref.removeprefix("videomamba/")
            ok = (PACKAGE_DIR / rel).is_file()
        else:
            ok = dotted_exists(ref)
        if not ok:
            missing.append(f"{where}: {ref}")
    assert not missing, "the docs name package files or modules that do not exist:\n  " + "\n  ".join(missing)


def test_doc_reference_check_catches_stale_names():
    assert dotted_exists("videomamba.inference.evaluate.evaluate_checkpoint")
    assert dotted_exists("videomamba.create_model") and dotted_exists("videomamba.cluster.init_ray")
    assert not dotted_exists("videomamba.train.evaluate") and not dotted_exists("videomamba.train.data_api")
    assert not dotted_exists("videomamba.checkpoints.no_such_helper")
    assert FILE.search("see train/evaluate.py").group(1) == "train/evaluate.py"
    assert FILE.search("platform/videomamba/bench/gpu.py").group(1) == "videomamba/bench/gpu.py"
    assert FILE.search("pipelines/train.py") is None and FILE.search("tests/support/x.py") is None


def architecture_tree() -> tuple[dict[str, int], list[str]]:
    """The package tree of docs/architecture.md: ``({described file or dir (relative to
    platform/videomamba): times it is an entry}, [problems])``. Entries sit at even indents below
    20 columns (``name.py`` or ``dir/``); ``x.py`` names in an entry's description (its line and the
    more deeply indented lines after it) are files of the entry's directory."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```\nplatform/videomamba/\n", 1)[1].split("```", 1)[0]
    entries: dict[str, int] = {}
    problems: list[str] = []
    stack: list[str] = []  # directories of the entries above, by depth
    here = None  # directory the current description refers to (None: outside the package)
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        words = line.split()
        if not words:
            continue
        if indent < 20 and indent % 2 == 0:
            depth = indent // 2 - 1
            if depth < 0:  # pipelines/, configs/, ...: outside the package
                here = None
                continue
            name = words[0].rstrip(",")
            stack = stack[:depth]
            path = "/".join(stack + [name.rstrip("/")])
            entries[path] = entries.get(path, 0) + 1
            if name.endswith("/"):
                stack.append(name.rstrip("/"))
                here = "/".join(stack)
            else:
                here = "/".join(stack)
            rest = words[1:]
        else:
            rest = words
        if here is None:
            continue
        for word in rest:
            for token in re.findall(r"(?<![\w/<>.-])(\w+\.py)\b", word):
                path = f"{here}/{token}" if here else token
                entries.setdefault(path, 0)
    for path in entries:
        if not (PACKAGE_DIR / path).exists():
            problems.append(f"docs/architecture.md names {path}, which is not in platform/videomamba/")
    return entries, problems


def test_architecture_tree_describes_every_module_once():
    entries, problems = architecture_tree()
    modules = sorted(str(p.relative_to(PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*.py")
                     if p.name != "__init__.py" or p.parent == PACKAGE_DIR)
    packages = sorted(str(p.parent.relative_to(PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*/__init__.py"))
    problems += [f"{m}: not in docs/architecture.md's tree" for m in modules + packages if m not in entries]
    problems += [f"{p}: an entry {n} times in docs/architecture.md's tree" for p, n in entries.items() if n > 1]
    assert not problems, "\n".join(problems)
