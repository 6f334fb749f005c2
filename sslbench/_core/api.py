"""The Python API for notebooks: run a sweep, or read a finished one, as :class:`Results`:
shown as the leaderboard table in Jupyter, converted to a pandas DataFrame with
:meth:`Results.to_frame`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import SSLBenchError
from .config import build_config, load_toml
from ..leaderboard import Leaderboard
from .plugins import PluginHost
from .progress import Reporter
from ..record import Record
from .records import load_results_dirs
from . import dispatch
from .runner import Sweep


class Results:
    """The records of one or more sweeps and their leaderboard.

    In Jupyter it shows as the leaderboard (the ``html`` report: every table with its
    statistics, the plots, where each number comes from); ``repr`` is the terminal table;
    :meth:`to_frame` is the long summary (one row per task, protocol and fraction, with
    mean, std and n over seeds); ``records`` are the records themselves
    (:class:`~sslbench.record.Record`) and ``leaderboard``
    the :class:`~sslbench.leaderboard.Leaderboard` behind all of these."""

    def __init__(self, records: list[Record], host: PluginHost) -> None:
        self.records = records
        self.leaderboard = Leaderboard(records, installed=host.find)
        self._host = host

    def to_frame(self) -> pd.DataFrame:
        return self.leaderboard.summary()

    def render(self, fmt: str) -> str:
        """The leaderboard in a report format (table, markdown, html, latex, csv, ...)."""
        return self._host.report_format(fmt).render(self.leaderboard)

    def _repr_html_(self) -> str:
        return self._host.format_for("page").render(self.leaderboard)

    def __repr__(self) -> str:
        return self._host.format_for("terminal").render(self.leaderboard)

    def __len__(self) -> int:
        return len(self.records)


def run_sweep(config_file: str | None = None, *, reporter: Reporter | None = None,
              **options: Any) -> Results:
    """Run (or resume) a sweep and return its :class:`Results`.

    ``options`` are :class:`sslbench._core.config.SweepConfig` fields, for example::

        run_sweep(datasets=["digits"], tasks=["rotation"], fractions=[0.1, 1.0],  # or labels_per_class=[20, 100]
                  settings={"pretrain_epochs": 5}, out="results/try")
    """
    config = build_config(load_toml(config_file) if config_file else None, **options)
    host = PluginHost.from_environment(config.plugins)
    sweep = Sweep(config, host, reporter)
    return Results(dispatch.run(sweep), host)


def load_results(*directories: str | Path, plugins: list[str] | None = None) -> Results:
    """The :class:`Results` of finished sweeps' folders (their ``--out``), merged as
    ``sslbench report DIR...`` merges them."""
    if not directories:
        raise SSLBenchError("load_results needs at least one results folder")
    return Results(load_results_dirs(list(directories)),
                   PluginHost.from_environment(plugins or []))
