"""The import graph of the package: no circle among the imports a module runs when it is
imported (issue 27, item 6, a first guard). Imports inside functions and under
``TYPE_CHECKING`` are not counted here: they still close one circle through the core
(contracts, plugins, grid, runner, worker, executors and the public modules that hooks name),
which is the work left in that item."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_at_load(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports at module level (a try block's too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    nodes = []
    for node in ast.parse(path.read_text()).body:
        nodes += node.body if isinstance(node, ast.Try) else [node]
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level \
                else node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
                elif target in modules:
                    found.add(target)
    return found - {name, "sslbench"}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back_at_load():
    paths = sorted((REPO / "sslbench").rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported_at_load(p, modules) for p in paths}
    assert len(graph) > 40 and graph["sslbench._core.runner"], "the graph was not read"
    assert not circles(graph)


def test_a_circle_is_found():
    """Positive control: the check sees a circle where there is one."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
