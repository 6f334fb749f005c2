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

__all__ = ["ReportFormat", "ROLES"]

# What the core asks a format for, by role rather than by name (it names no plugin):
ROLES = {
    "terminal": "printed by `sslbench run` at its end and by `sslbench report` without --format",
    "page": "HTML: the leaderboard page of `sslbench publish` (and a notebook's display)",
    "data": "CSV: the table of numbers `sslbench publish` puts beside each page",
}


@dataclass
class ReportFormat:
    """A way to render a leaderboard: ``sslbench report --format NAME`` calls
    ``render(leaderboard)`` and writes the text it returns."""

    name: str
    render: Callable[["Leaderboard"], str]
    description: str = ""
    plots: bool = False   # ``sslbench report -o`` writes the plots (PNG, SVG) beside the file
    roles: tuple[str, ...] = ()   # what the core uses it for (:data:`ROLES`); one format a role
