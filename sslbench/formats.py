"""Report formats: what a plugin offers through
:func:`~sslbench.hookspecs.sslbench_report_formats`.

Kept apart from :mod:`sslbench.leaderboard` (pandas, scipy) so that loading plugins, which
builds these objects, does not import what only rendering needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .leaderboard import Leaderboard

__all__ = ["ReportFormat"]


@dataclass
class ReportFormat:
    """A way to render a leaderboard: ``sslbench report --format NAME`` calls
    ``render(leaderboard)`` and writes the text it returns."""

    name: str
    render: Callable[["Leaderboard"], str]
    description: str = ""
    plots: bool = False   # ``sslbench report -o`` writes the plots (PNG, SVG) beside the file
