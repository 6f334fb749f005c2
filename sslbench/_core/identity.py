"""What code produced a result: each contributing plugin's distribution, version and source.

A checkpoint or a cell computed by one version of a task must not be reused after the task
changed. Versions alone do not catch that (an editable install, a ``--plugin`` file, a fix
made without bumping the version), so the identity of a contribution also holds a hash of
the Python source of the package that defines it: editing any ``.py`` file of that package
changes the hash, and with it every cache key and cell hash the contribution enters.

The hash covers the top-level package of the plugin module and of the module that defines
the contributed class or function (they differ when a plugin re-exports code from another
package). sslbench's own core is not hashed here: its version is in every key already.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
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


def _source_files(top: str) -> list[Path]:
    """The ``.py`` files of a top-level module or package (empty if it has no files)."""
    module = sys.modules.get(top)
    if module is not None and getattr(module, "__file__", None):
        origin, locations = module.__file__, getattr(module, "__path__", None)
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return []
        if spec is None:
            return []
        origin, locations = spec.origin, spec.submodule_search_locations
    if locations:
        files: set[Path] = set()
        for location in locations:
            files.update(p for p in Path(location).rglob("*.py") if "__pycache__" not in p.parts)
        return sorted(files)
    return [Path(origin)] if origin and origin.endswith(".py") else []


def _hash_package(top: str) -> str | None:
    files = _source_files(top)
    if not files:
        return None
    root = files[0].parent if len(files) == 1 else Path(*_common_parts(files))
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _common_parts(files: list[Path]) -> tuple[str, ...]:
    parts = files[0].parent.parts
    for path in files[1:]:
        other = path.parent.parts
        n = 0
        while n < min(len(parts), len(other)) and parts[n] == other[n]:
            n += 1
        parts = parts[:n]
    return parts


def source_hash(*modules: str | None) -> str | None:
    """A hash of the source of the top-level packages of ``modules`` (sslbench's core left
    out), or ``None`` when there is none to read (code defined in ``__main__``, say)."""
    tops = sorted({_top_level(m) for m in modules if m} - {CORE})
    hashes = [(t, _hash_package(t)) for t in tops]
    hashes = [(t, h) for t, h in hashes if h]
    if not hashes:
        return None
    if len(hashes) == 1:
        return hashes[0][1]
    return hashlib.sha256(repr(hashes).encode()).hexdigest()[:16]
