"""What code produced a result, told apart from what does not change its numbers.

A checkpoint or a cell computed by one version of a task must not be reused after the task
changed; a result must not be thrown away when nothing that computes it changed (a release
that only touched the reports, a fix to another task). So a cell's hash holds the source of
the code its numbers come from, and nothing else of the code:

* **each contribution's code** (:func:`source_hash`): the module that defines the task,
  backbone, protocol or data set, the plugin module that contributes it, and every module of
  the same top-level package that they import, directly or not (read from their source:
  ``import`` statements, in functions too), with the packages' ``__init__`` files on the way.
  Editing rotation changes rotation's cells, not jigsaw's. Versions are not part of it (an
  editable install, a ``--plugin`` file and a fix made without a new version are caught by
  the source; a new version number that changes no code changes no number);
* **sslbench's core** (:func:`core_hash`): the source of every module of the ``sslbench``
  package except those listed in :data:`NOT_IN_NUMBERS`, which only show, store or hand out
  results (the command line, reports, records' files, executors, progress, statistics).
  A new module is in the hash until someone says here, with a reason, that it is not;
* **the libraries that compute** (:data:`NUMERIC_LIBRARIES`): torch and torchvision.

A test (tests/sslbench/_core/test_identity_golden.py) recomputes a committed cell and fails
when its numbers changed while its hash did not: the net under this list.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

CORE = "sslbench"


def defining_module(obj: Any) -> str | None:
    """The module whose code a contribution runs: a class's module, or for a spec object
    (a backbone, data set or report format) the module of its factory function."""
    if isinstance(obj, type):
        return obj.__module__
    for attr in ("create", "load", "render"):
        fn = getattr(obj, attr, None)
        module = getattr(fn, "__module__", None)
        if module:
            return module
    return getattr(type(obj), "__module__", None)


def _top_level(module: str) -> str:
    return module.split(".", 1)[0]


def _module_file(name: str) -> tuple[Path, bool] | None:
    """(the ``.py`` file of module ``name``, whether it is a package), or None."""
    module = sys.modules.get(name)
    if module is not None:
        origin, is_package = getattr(module, "__file__", None), hasattr(module, "__path__")
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        origin, is_package = spec.origin, spec.submodule_search_locations is not None
    if not origin or not str(origin).endswith(".py"):
        return None
    return Path(origin), is_package


def _imported(path: Path, name: str, is_package: bool) -> set[str]:
    """The modules a source file imports (absolute names; ``from a import b`` gives both
    ``a`` and ``a.b``, which may be a submodule), wherever the import statement is."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[:len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _closure(roots: list[str], tops: set[str]) -> dict[str, Path]:
    """Module name -> file of the modules of the packages ``tops`` that ``roots`` run:
    themselves, what they import within ``tops`` (transitively) and the ``__init__`` of
    every package on the way."""
    def ours(name: str) -> bool:
        return _top_level(name) in tops

    files: dict[str, Path] = {}
    todo = [r for r in roots if ours(r)]
    while todo:
        name = todo.pop()
        if name in files:
            continue
        found = _module_file(name)
        if found is None:
            continue
        path, is_package = found
        files[name] = path
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [m for m in _imported(path, name, is_package) | set(parents)
                 if ours(m) and m not in files]
    return files


def _label(name: str, path: Path) -> str:
    """A module's file as the hash names it: its path within its top-level package
    (``mytasks/flipped.py``), or its file name for a module loaded from a
    file (``--plugin my_task.py``, whose module name differs from process to process)."""
    depth = name.count(".") + 1 + (path.name == "__init__.py")
    return "/".join(path.parts[-depth:])


def _digest(files: dict[str, Path]) -> str | None:
    if not files:
        return None
    digest = hashlib.sha256()
    for label, path in sorted((_label(n, p), p) for n, p in files.items()):
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def source_hash(*modules: str | None, plugins: set[str] | frozenset[str] = frozenset()
                ) -> str | None:
    """A hash of the source ``modules`` run: their own top-level packages' modules they
    import, and those of the other plugin packages ``plugins`` (top-level names: a
    third-party task may build on a built-in one), sslbench's core left out
    (:func:`core_hash`); ``None`` when there is none to read (code defined in
    ``__main__``, say)."""
    roots = [m for m in modules if m]
    tops = ({_top_level(m) for m in roots} | set(plugins)) - {CORE}
    return _digest(_closure(roots, tops))


# Modules of the sslbench package that do not change a cell's numbers, and why. Everything
# else of the package is in :func:`core_hash`.
NOT_IN_NUMBERS = {
    "sslbench.__main__": "starts the command line",
    "sslbench._core.cli": "the command line: parses flags into a configuration (which is hashed)",
    "sslbench._core.api": "the notebook API: the same configuration, results read back",
    "sslbench._core.against": "checks and copies published records",
    "sslbench._core.adopted": "lists copied records",
    "sslbench._core.dispatch": "hands units to an executor and collects their records",
    "sslbench._core.worker": "runs a unit's job where the executor put it",
    "sslbench._core.executors": "makes the executor",
    "sslbench.executor": "the executor's interface",
    "sslbench._core.claims": "which process runs a unit",
    "sslbench._core.estimate": "time estimates before a run",
    "sslbench._core.plan": "describes a grid (--dry-run)",
    "sslbench._core.preview": "sslbench show: pictures of a task's inputs",
    "sslbench._core.export": "exports a checkpoint",
    "sslbench._core.publish": "writes a site from records",
    "sslbench._core.stats": "statistics over finished records",
    "sslbench.leaderboard": "tables from finished records",
    "sslbench.formats": "report formats",
    "sslbench.tracking": "experiment trackers: copies of the numbers",
    "sslbench._core.progress": "progress bars and log lines",
    "sslbench.progress": "the progress interface",
    "sslbench._core.time_accounts": "where the time went",
    "sslbench._core.timing": "measures time",
    "sslbench._core.records": "reads and writes record files",
    "sslbench._core.record_checks": "checks record files",
    "sslbench.record": "the record's type",
    "sslbench._core.atomic": "writes files whole",
    "sslbench._core.hookdoc": "generates the hook reference",
    "sslbench._core.settingsdoc": "generates the settings reference",
    "sslbench._core.scaffold": "sslbench new-plugin",
    "sslbench._core.deprecated": "old names of public types",
    "sslbench.testing": "a plugin author's conformance checks",
    "sslbench._core.contracts": "checks of plugin contributions (a failing one stops the run)",
    "sslbench.errors": "error messages",
    "sslbench._core.identity": "this module: computes the hash",
}
NUMERIC_LIBRARIES = ("torch", "torchvision")


@lru_cache(maxsize=1)
def core_hash() -> str:
    """A hash of the source of sslbench's core that computes numbers: every ``.py`` file of
    the package but :data:`NOT_IN_NUMBERS` (names relative to the package)."""
    package = _module_file(CORE)
    assert package is not None, "sslbench is importable"
    root = package[0].parent
    files = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in NOT_IN_NUMBERS:
            files[name] = path
    digest = _digest(files)
    assert digest is not None
    return digest


@lru_cache(maxsize=1)
def numeric_identity() -> dict[str, Any]:
    """What of sslbench and its libraries a cell's hash holds: the core's source hash and
    the versions of the libraries that compute. Asked for every cell of a grid, read once
    (a version lookup scans the installed distributions); callers must not change it."""
    from importlib.metadata import PackageNotFoundError, version
    out: dict[str, Any] = {"core": core_hash()}
    for lib in NUMERIC_LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def without_versions(code: Any) -> Any:
    """Code identities as a hash holds them: a contribution's ``version`` left out where its
    ``source`` is known (the source says what runs; a version only where there is no
    source to read)."""
    if isinstance(code, list):
        return [without_versions(c) for c in code]
    if isinstance(code, dict):
        if code.get("source"):
            return {k: v for k, v in code.items() if k != "version"}
        return {k: without_versions(v) for k, v in code.items()}
    return code
