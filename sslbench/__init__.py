"""sslbench: a benchmark suite for self-supervised pretext tasks on images.

Plugins import :data:`hookimpl` to mark their hook implementations (see
:mod:`sslbench.hookspecs`). Notebooks call :func:`run_sweep` or :func:`load_results`, whose
results show as the leaderboard in Jupyter and convert to a pandas DataFrame;
:func:`load_backbone` reads a backbone written by ``sslbench export``.
"""

from __future__ import annotations

import pluggy

__version__ = "0.5.0.dev0"

hookimpl = pluggy.HookimplMarker("sslbench")

from .errors import SSLBenchError  # noqa: E402
from ._core import deprecated as _deprecated  # noqa: E402

_deprecated.install()     # sslbench 0.4's public modules, for one more release

__all__ = ["hookimpl", "run_sweep", "load_results", "load_backbone", "SSLBenchError",
           "__version__"]


def __getattr__(name: str):
    """``sslbench.run_sweep`` is imported when first used: ``import sslbench`` (which every
    plugin does) must not import torch, pandas and the runner."""
    if name in ("run_sweep", "load_results"):
        from ._core import api
        return getattr(api, name)
    if name == "load_backbone":      # a backbone written by ``sslbench export``
        from ._core.export import load_backbone
        return load_backbone
    raise AttributeError(f"module 'sslbench' has no attribute {name!r}")
