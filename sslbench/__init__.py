"""sslbench: a benchmark suite for self-supervised pretext tasks on images.

Plugins import :data:`hookimpl` to mark their hook implementations (see
:mod:`sslbench.hookspecs`). Notebooks call :func:`run_sweep`, which returns the leaderboard
as a pandas DataFrame.
"""

from __future__ import annotations

import pluggy

__version__ = "0.4.0"

hookimpl = pluggy.HookimplMarker("sslbench")

from .errors import SSLBenchError  # noqa: E402
from .api import run_sweep  # noqa: E402

__all__ = ["hookimpl", "run_sweep", "SSLBenchError", "__version__"]
