"""The house rules of the tree, read from the source with `ast`: layers, circles, room sizes.

Layers, from the bottom up: `core` imports only `core`; `schema`, `worker` and `inbound` import
only themselves and `core`; `api` imports `api`, `schema` and `core`; `recruitmail` (the CLI)
sits on top and may import anything. Every import statement counts, including imports inside
functions and under `if TYPE_CHECKING:`: a lazy import running back up is still a dependency.

No two source files import one another, directly or through others (no strongly connected
component of the file import graph holds more than one file), and no source file is over 400
lines: the application packages (`core/migrations` and static assets aside), the tests and the
benchmarks (test data and installed test tools aside).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "schema", "api", "worker", "inbound", "recruitmail")
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "schema": {"schema", "core"},
    "worker": {"worker", "core"},
    "inbound": {"inbound", "core"},
    "api": {"api", "schema", "core"},
    "recruitmail": set(PACKAGES),
}
MAX_LINES = 400

@dataclass
class Tree:
    files: dict[str, Path] = field(default_factory=dict)  # dotted module name -> file
    imports: dict[str, set[str]] = field(default_factory=dict)  # module -> modules it imports


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _source_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT).parts[:2] == ("core", "migrations"):
                continue
            files[_module_name(path)] = path
    return files


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement may load: the module and, for `from m import x`,
    `m.x` too (x may be a submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def _load() -> Tree:
    tree = Tree(files=_source_files())

    def owner(name: str) -> str | None:
        """The file a dotted name lives in: the longest prefix that is a module of the tree."""
        while name and name not in tree.files:
            name = name.rpartition(".")[0]
        return name or None

    for name, path in tree.files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for target in _imported_names(node, package):
                if target.split(".")[0] not in PACKAGES:
                    continue
                found = owner(target)
                if found and found != name:
                    deps.add(found)
        tree.imports[name] = deps
    return tree


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one file (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(graph.get(root, ()))))
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


@pytest.fixture(scope="module")
def tree() -> Tree:
    return _load()


def test_the_checker_sees_every_kind_of_import() -> None:
    """The reader itself: plain, relative, lazy (inside a function) and TYPE_CHECKING imports."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import core.models\n"
        "from . import sibling\n"
        "from ..mail import render\n"
        "if TYPE_CHECKING:\n"
        "    from api.app import build\n"
        "def later():\n"
        "    import worker.jobs\n"
    )
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names.update(_imported_names(node, "core.services"))
    assert {"core.models", "core.services.sibling", "core.mail.render", "api.app.build",
            "worker.jobs"} <= names
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_tree_is_read(tree: Tree) -> None:
    assert {"core.models", "schema", "api.app", "worker.jobs"} <= set(tree.files)
    assert {"schema.candidates", "schema.extensions"} <= tree.imports["schema"]
    assert "core.settings" in tree.imports["api.app"]


def test_no_import_runs_back_up(tree: Tree) -> None:
    upward = sorted(
        f"{name} -> {dep}"
        for name, deps in tree.imports.items()
        for dep in deps
        if dep.split(".")[0] not in ALLOWED[name.split(".")[0]]
    )
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_circle_between_schema_files(tree: Tree) -> None:
    """The GraphQL types that refer to one another (candidates, documents, interviews,
    messages) do so by name, through schema.relay, without importing one another at all."""
    schema = {name: {d for d in deps if d.split(".")[0] == "schema"}
              for name, deps in tree.imports.items() if name.split(".")[0] == "schema"}
    assert _circles(schema) == []
    types = [f"schema.types.{n}" for n in ("candidates", "documents", "interviews", "messages")]
    ring = sorted(f"{a} -> {b}" for a in types for b in schema[a] if b in types)
    assert ring == [], "GraphQL type modules importing one another:\n" + "\n".join(ring)


def test_no_import_circle_between_files(tree: Tree) -> None:
    circles = _circles(tree.imports)
    assert circles == [], "files importing one another:\n" + "\n".join(" <-> ".join(c) for c in circles)


def _tests_and_benchmarks() -> list[Path]:
    """The Python files of tests/ and bench/ (the test data and installed tools aside)."""
    return [path for folder in ("tests", "bench") for path in sorted((ROOT / folder).rglob("*.py"))
            if path.relative_to(ROOT).parts[1] not in {"data", "tools"}]


def test_no_source_file_over_400_lines(tree: Tree) -> None:
    long = sorted(
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in [*tree.files.values(), *_tests_and_benchmarks()]
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    )
    assert long == [], f"source files over {MAX_LINES} lines:\n" + "\n".join(long)
