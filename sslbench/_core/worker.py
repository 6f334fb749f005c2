"""What a :class:`~sslbench.executor.UnitJob` does when called: run one unit, return its
:class:`~sslbench.executor.UnitOutcome`.

The same function runs in every process an executor uses. In a fresh process (a Ray task,
a Slurm job, a pool worker) it rebuilds the sweep from the job's configuration (once per
configuration: a reused worker keeps one sweep and its prepared data), checks that it
computes the same cell hashes as the driver, and runs the unit; its warnings and time go
back in the outcome. In the driver's own process (the local executor, an executor running
jobs in threads) it uses the driver's sweep, which :func:`serving` lends it, so the data set
prepared for one unit is not prepared again for the next and progress shows as it happens.
Either way the unit runs through :meth:`Sweep.run_here`, so records never depend on the
executor.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import SSLBenchError
from ..executor import UnitJob, UnitOutcome
from .config import SweepConfig
from .distributed import init_from_environment
from .plugins import PluginHost
from .progress import Reporter
from .records import read_record
from .runner import Sweep

__all__ = ["run_unit_job", "serving"]


class _CollectingReporter(Reporter):
    """A worker's reporter: its warnings go back to the driver (which shows each once)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class _Served:
    """A sweep this process runs units of, with what it prepared and a lock: one unit at a
    time per sweep (an executor calling jobs from several threads gets them in turn)."""

    def __init__(self, sweep: Sweep, driver: bool) -> None:
        self.sweep, self.driver = sweep, driver
        self.pid = os.getpid()     # a forked child inherits this: it is not the driver
        self.prepared: dict = {}
        self.lock = threading.Lock()


_SERVED: dict[str, _Served] = {}
_SERVED_LOCK = threading.Lock()


def _key(config: dict[str, Any], cwd: str) -> str:
    return json.dumps([config, cwd], sort_keys=True, default=str)


@contextlib.contextmanager
def serving(sweep: Sweep, config: dict[str, Any], cwd: str) -> Iterator[None]:
    """Within the block, jobs of ``config`` called in this process run on ``sweep`` (the
    driver's): its prepared data, its reporter, its time account."""
    key = _key(config, cwd)
    with _SERVED_LOCK:
        _SERVED[key] = _Served(sweep, driver=True)
    try:
        yield
    finally:
        with _SERVED_LOCK:
            _SERVED.pop(key, None)


def _served(job: UnitJob) -> _Served:
    key = _key(job.config, job.cwd)
    with _SERVED_LOCK:
        if key in _SERVED and _SERVED[key].pid == os.getpid():
            return _SERVED[key]
        for other in [k for k, s in _SERVED.items() if s.pid != os.getpid()]:
            del _SERVED[other]   # a forked worker's copy of its parent's sweeps
        os.chdir(job.cwd)        # relative paths of the configuration are the driver's
        config = SweepConfig(**job.config)
        sweep = Sweep(config, PluginHost.from_environment(config.plugins), _CollectingReporter())
        for other in [k for k, s in _SERVED.items() if not s.driver]:
            del _SERVED[other]   # a reused worker keeps one sweep's data, not all
        _SERVED[key] = _Served(sweep, driver=False)
        return _SERVED[key]


def run_unit_job(job: UnitJob) -> UnitOutcome:
    """Run ``job``'s unit in this process and say how it went. Raises
    :class:`SSLBenchError` when this process would compute other cells than the driver
    (another sslbench, other plugins)."""
    if job.threads:
        import torch
        torch.set_num_threads(int(job.threads))   # what the engine granted
    init_from_environment(str(job.config.get("device", "auto")))   # a job of N processes
    served = _served(job)
    sweep = served.sweep
    mine = {c.id: c.config_hash for c in sweep.cells}
    for cell in job.unit.cells:
        if mine.get(cell.id) != cell.config_hash:
            raise SSLBenchError(
                f"this worker computes another configuration for cell {cell.id} than the "
                "driver: install the same sslbench and plugins on the driver and the workers")
    with served.lock:
        collecting = isinstance(sweep.reporter, _CollectingReporter)
        if collecting:
            sweep.reporter.warnings.clear()
        ran = sweep.run_here([job.unit], served.prepared)
        # a cell not run here: finished meanwhile by another process, or its unit held
        cells = {c.id: ran.records[c.id].status if c.id in ran.records
                 else getattr(read_record(sweep.out, c.id), "status", "skipped")
                 for c in job.unit.cells}
        warnings = list(sweep.reporter.warnings) if collecting else []
    return UnitOutcome(cells=cells, warnings=warnings, time=ran.time,
                       progress_shown=served.driver)
