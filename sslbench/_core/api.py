"""The Python API: one function runs a sweep and returns its leaderboard."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .config import build_config, load_toml
from ..leaderboard import Leaderboard
from .plugins import PluginHost
from .progress import Reporter
from .runner import Sweep


def run_sweep(config_file: str | None = None, *, reporter: Reporter | None = None,
              **options: Any) -> pd.DataFrame:
    """Run (or resume) a sweep and return the leaderboard as a DataFrame.

    ``options`` are :class:`sslbench._core.config.SweepConfig` fields, for example::

        run_sweep(datasets=["digits"], tasks=["rotation"], fractions=[0.1, 1.0],
                  settings={"pretrain_epochs": 5}, out="results/try")

    The frame is the long summary (one row per task, protocol and fraction, with mean, std
    and n over seeds); ``Leaderboard(records).display()`` gives the printed table.
    """
    config = build_config(load_toml(config_file) if config_file else None, **options)
    host = PluginHost.from_environment(config.plugins)
    sweep = Sweep(config, host, reporter)
    records = sweep.run()
    return Leaderboard(records).summary()
