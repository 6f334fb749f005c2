"""The public API: what a plugin may import is the top of the package, each module with an
``__all__`` that resolves; the machinery lives in ``sslbench._core``. The built-in plugins and
the example packages are written against the public API alone, as a third party's would be."""

from __future__ import annotations

import ast
import importlib

from conftest import REPO

PUBLIC = ["task", "backbone", "protocol", "data", "images", "augment", "randaugment",
          "training", "options", "formats", "leaderboard", "testing", "errors", "hookspecs",
          "tracking", "preset", "progress", "sweep", "executor", "record"]


def sslbench_imports(path):
    """Every ``sslbench...`` module a file imports, with the names it takes from it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "sslbench"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "sslbench":
            found += [(node.module, a.name) for a in node.names]
    return found


def plugin_sources():
    roots = [REPO / "plugins"] + [p for p in (REPO / "examples").iterdir() if p.is_dir()]
    return [p for root in roots for p in root.rglob("*.py")
            if not {"build", "tests"} & set(p.parts) and "egg-info" not in str(p)]


def test_builtin_plugins_and_examples_import_only_the_public_api():
    offenders = []
    for path in plugin_sources():
        for module, name in sslbench_imports(path):
            parts = module.split(".")
            if len(parts) == 1:
                ok = name in (None, "hookimpl", "SSLBenchError", "__version__")
            else:
                ok = len(parts) == 2 and parts[1] in PUBLIC and (
                    name is None or name in importlib.import_module(module).__all__)
            if not ok:
                offenders.append(f"{path.relative_to(REPO)}: {module} {name or ''}")
    assert len(plugin_sources()) > 15 and not offenders, offenders


def test_every_public_module_declares_what_it_exports():
    for name in PUBLIC:
        module = importlib.import_module(f"sslbench.{name}")
        assert module.__all__, name
        for exported in module.__all__:
            assert hasattr(module, exported), f"sslbench.{name}.{exported}"


def test_the_machinery_is_private():
    top = {p.stem for p in (REPO / "sslbench").glob("*.py")} - {"__init__", "__main__"}
    assert top == set(PUBLIC)
    assert (REPO / "sslbench" / "_core" / "runner.py").is_file()


def _string_constants(path):
    """The string literals of a file that are not docstrings, with their line numbers."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


# the augmentation library's policy "uda" is the UDA authors' RandAugment variant, a name of
# their code rather than of the built-in task
NOT_A_PLUGIN = {("randaugment.py", "uda")}


def test_the_core_names_no_builtin_contribution():
    """No task, backbone, data set, protocol, report format or preset of the built-in
    plugins is named in the core's code: defaults come from presets, report formats are
    asked for by role, records carry what reports need."""
    from sslbench._core.contracts import KINDS
    from sslbench._core.plugins import PluginHost
    host = PluginHost.from_environment()
    builtin = {p.name for p in host.plugins if p.distribution == "sslbench"}
    names = {name for kind in KINDS for name, c in host.registry(kind).items()
             if c.plugin in builtin}
    assert {"rotation", "finetune", "smallcnn", "digits", "table", "quick"} <= names
    offenders = [f"{path.relative_to(REPO)}:{line}: {value!r}"
                 for path in sorted((REPO / "sslbench").rglob("*.py"))
                 for line, value in _string_constants(path)
                 if value in names and (path.name, value) not in NOT_A_PLUGIN]
    assert not offenders, offenders


def test_no_public_contract_names_a_private_type():
    """Every type in the hooks' signatures and in the fields of the public dataclasses that
    plugins receive resolves among the public modules' exports (pytest's rule: its package
    re-exports every type a plugin receives)."""
    import dataclasses
    import inspect
    import typing
    from pathlib import Path

    import torch
    public = {name: obj for module in PUBLIC
              for name in importlib.import_module(f"sslbench.{module}").__all__
              for obj in [getattr(importlib.import_module(f"sslbench.{module}"), name)]}
    import collections.abc
    import numpy as np
    from torch import nn
    names = {**public, "Path": Path, "Any": typing.Any, "torch": torch, "nn": nn, "np": np,
             "Callable": collections.abc.Callable, "Sequence": collections.abc.Sequence,
             "Iterator": collections.abc.Iterator, "Iterable": collections.abc.Iterable,
             "ClassVar": typing.ClassVar}
    hookspecs = importlib.import_module("sslbench.hookspecs")
    for name in hookspecs.__all__:
        fn = getattr(hookspecs, name)
        if name.startswith("sslbench_"):
            typing.get_type_hints(fn, globalns=names, localns={})      # NameError if private
    unresolved = []
    for name, obj in public.items():
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
            try:       # public names only: a field typed with a private class fails here
                typing.get_type_hints(obj, globalns=names, localns={})
            except NameError as exc:
                unresolved.append(f"{obj.__module__}.{name}: {exc}")
    assert not unresolved, unresolved
    from sslbench.protocol import EvalContext
    assert typing.get_type_hints(EvalContext, globalns=names)["reporter"] is public["Reporter"]
