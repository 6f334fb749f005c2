"""The import graph of the package has no circle: neither among the imports a module runs
when it is imported, nor counting the imports inside functions as well (a function-level
import that closes a circle only hides it until the function runs). Imports under
``TYPE_CHECKING`` (for annotations only, never run) are not counted."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_nodes(tree: ast.AST, in_functions: bool) -> list[ast.AST]:
    """The import statements of a module: at module level (a try block's too) and, with
    ``in_functions``, anywhere; never under ``if TYPE_CHECKING:``."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if in_functions or isinstance(node, ast.ClassDef):
                found += _import_nodes(node, in_functions)
        elif isinstance(node, ast.Try) or in_functions:
            found += _import_nodes(node, in_functions)
    return found


def imported(path: Path, modules: set[str], in_functions: bool = False) -> set[str]:
    """The package's modules that ``path`` imports: at load, or (``in_functions``) at all."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text()), in_functions):
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


def graph(in_functions: bool) -> dict[str, set[str]]:
    paths = sorted((REPO / "sslbench").rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported(p, modules, in_functions) for p in paths}


def test_no_module_imports_itself_back_at_load():
    at_load = graph(in_functions=False)
    assert len(at_load) > 40 and at_load["sslbench._core.runner"], "the graph was not read"
    assert not circles(at_load)


def test_no_circle_even_through_imports_inside_functions():
    everything = graph(in_functions=True)
    at_load = graph(in_functions=False)
    # the function-level imports are read: the CLI imports the runner only when a sweep runs
    assert "sslbench._core.runner" in everything["sslbench._core.cli"] - at_load["sslbench._core.cli"]
    assert not circles(everything)


def test_a_circle_is_found():
    """Positive control: the check sees a circle where there is one."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
