"""A sweep run from start to end, as the command line and the Python API both run it.

    run(sweep, executor) ──> sweep_start hook ──> the unfinished units ──> one UnitJob each
        ──> executor.start(), submit(jobs) ──> each Finished collected as it comes
            (warnings shown once, time into the account, a lost unit's cells failed)
        ──> the time account written ──> sweep_finish hook ──> the grid's records

Where a job runs is the executor's business (:mod:`sslbench.executor`); what it does there
is :func:`sslbench._core.worker.run_unit_job`, which the job names rather than imports (a
pickled job carries a reference to it). This module is the top of the core's layers: it
imports the runner, the worker and the executors, and nothing imports it but the CLI and
the API.
"""

from __future__ import annotations

import os
import time

from ..executor import Executor, UnitJob
from ..record import Record
from .executors import make_executor
from .runner import Sweep
from .worker import run_unit_job, serving

__all__ = ["run"]


def run(sweep: Sweep, executor: Executor | None = None) -> list[Record]:
    """Run every unit of ``sweep`` whose cells are not finished; return the grid's records.

    ``executor``: the one the command line made (it starts its engine early); ``None``
    makes, checks and closes the configuration's (the Python API)."""
    sweep.notify("sslbench_sweep_start", config=sweep.config, cells=sweep.cells, out=sweep.out)
    started = time.time()
    sweep.reporter.sweep_started(len(sweep.cells))
    for cell in sweep.cells:
        if cell.done:
            sweep.reporter.cell_done(f"{cell.id} (cached)")
    units = sweep.unfinished_units()
    if units:
        own = executor is None
        if own:
            executor = make_executor(sweep.given, sweep.host)
            executor.check(sweep.out)
        try:
            _hand_out(sweep, units, executor, started)
        finally:
            if own:
                executor.close()
    records = sweep.records()
    sweep.notify("sslbench_sweep_finish", config=sweep.config, records=records, out=sweep.out)
    return records


def _hand_out(sweep: Sweep, units: list, executor: Executor, started: float) -> None:
    """The units to the executor as jobs; each end collected as it comes; the time account
    written as they come and at the end."""
    sweep.open_account(executor, started)
    config, cwd = sweep.given.to_dict(), os.getcwd()
    jobs = [UnitJob(config, unit, cwd, run=run_unit_job) for unit in units]
    with serving(sweep, config, cwd):     # jobs called in this process use this sweep
        executor.start()
        executor.submit(jobs, sweep.reporter)
        for done in executor.finished():
            sweep.collect(done)
    sweep.write_time_account(complete=True)
