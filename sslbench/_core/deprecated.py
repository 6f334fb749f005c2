"""Modules that were public in sslbench 0.4 and moved into the private ``sslbench._core`` in
0.5: ``import sslbench.plugins`` (or ``runner``, ``records``, ...) still works for this
release, with a :class:`DeprecationWarning` naming where the module went and what public API
to use instead, and stops working in 0.6. A third party's test written against 0.4 then
fails with a warning it can read, one release before it fails for good.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old public module -> (its private home, the public API to use instead)
MOVED = {name: (f"sslbench._core.{name}", hint) for name, hint in {
    "api": "sslbench.run_sweep and sslbench.load_results",
    "atomic": "nothing: it is machinery",
    "checkpoints": "sslbench.load_backbone (sslbench export)",
    "checks": "`sslbench show TASK --check`",
    "cli": "the `sslbench` command",
    "config": "sslbench.options and sslbench.preset",
    "door": "sslbench.testing.check_plugin",
    "features": "sslbench.protocol.Split.features",
    "fractions": "nothing: it is machinery",
    "grid": "the records' fields",
    "hookdoc": "sslbench.hookspecs",
    "hygiene": "the records' data.hygiene",
    "identity": "the records' plugins",
    "placement": "sslbench.images",
    "plugins": "sslbench.hookimpl and the sslbench entry points (sslbench.testing to check)",
    "preview": "`sslbench show TASK`",
    "progress": "sslbench.protocol.EvalContext.reporter",
    "records": "sslbench.load_results",
    "runner": "sslbench.run_sweep",
    "scaffold": "`sslbench new-plugin`",
    "seeding": "sslbench.training",
    "settingsdoc": "docs/settings.md",
    "stats": "sslbench.leaderboard",
}.items()}
# renamed in 0.5 as well: the 0.4 name finds the module under its new one
MOVED["door"] = ("sslbench._core.contracts", MOVED["door"][1])
MOVED["fractions"] = ("sslbench._core.budgets", MOVED["fractions"][1])
REMOVED_IN = "0.6"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``sslbench.X`` for a moved X and hands back the module under its new name."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.partition(".")
        if prefix != "sslbench" or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        home, hint = MOVED[spec.name.partition(".")[2]]
        warnings.warn(f"{spec.name} is private since sslbench 0.5 (now {home}) and goes in "
                      f"{REMOVED_IN}; use {hint}", DeprecationWarning, stacklevel=3)
        module = importlib.import_module(home)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        """The module ran when it was imported under its new name."""


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
