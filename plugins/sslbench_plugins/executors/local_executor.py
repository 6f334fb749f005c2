"""``--executor local``: the units on this machine, in grid order.

With ``jobs = 1`` (the default) every unit runs in this process, one after another, sharing
the data set it loaded. With ``jobs = N`` they run in N worker processes side by side
(spawned, so that no torch state is shared), each with ``cpus_per_job`` torch threads
(default: the cores shared out). A worker claims its unit, writes records and sends its time
and warnings back exactly as a Ray worker does, so a run's records do not depend on
``jobs``. A worker that dies (killed, out of memory) breaks its pool, which stops the other
workers too: the units that were running fail their cells that have no record (a rerun
retries them), and a fresh pool runs the units that had not started. Units are handed out
no faster than workers free up, so a broken pool loses at most ``jobs`` units. A worker
whose driver is gone (killed, even with SIGKILL) exits within a second rather than running
on unwatched: its unit's claim then goes stale and a rerun takes it over.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Sequence

import sslbench
from sslbench import SSLBenchError
from sslbench.executor import Executor, Finished, UnitJob, cores, one_line, run_in_turn
from sslbench.options import Range


def _exit_with(driver: int) -> None:
    """In each worker process: exit as soon as the driver ``driver`` is no longer its
    parent (a killed driver's workers are adopted by init; nothing would collect their
    work, and they would hold their cores and their units' claims)."""
    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, name="sslbench-driver-watch", daemon=True).start()


class LocalExecutor(Executor):
    name = "local"
    description = ("units on this machine: in this process, or in `jobs` worker processes "
                   "side by side")
    defaults = {"jobs": 1, "cpus_per_job": 0}
    ranges = {"jobs": Range(ge=1), "cpus_per_job": Range(ge=0)}
    former_flags = {"jobs": "jobs", "cpus_per_job": "cpus_per_job"}
    default = True

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._jobs: list[UnitJob] = []

    @property
    def in_process(self) -> bool:
        return self.options["jobs"] <= 1

    def threads_per_job(self) -> int:
        """``cpus_per_job``, else the cores shared out between the jobs (at least one)."""
        return self.options["cpus_per_job"] or max(1, cores() // self.options["jobs"])

    def submit(self, jobs: Sequence[UnitJob], reporter) -> None:
        self._jobs = list(jobs)

    def finished(self) -> Iterator[Finished]:
        if self.in_process or len(self._jobs) <= 1:
            yield from run_in_turn(self._jobs)
            return
        waiting = [job.with_threads(self.threads_per_job()) for job in self._jobs]
        while waiting:
            yield from self._pool(waiting)

    def _pool(self, waiting: list[UnitJob]) -> Iterator[Finished]:
        """Run jobs from ``waiting`` (taking them off it) in one pool of worker processes,
        no more at a time than there are workers, so that every job handed to the pool is
        running. A worker that dies (killed, out of memory) breaks the pool: the jobs in it
        are lost (their cells without a record fail with the reason, and a rerun retries
        them), and the caller starts a fresh pool for the jobs that had not started."""
        context = multiprocessing.get_context("spawn")
        workers = self.options["jobs"]
        with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with,
                                         initargs=(os.getpid(),)) as pool:
            running: dict[futures.Future, tuple[UnitJob, float]] = {}
            while waiting or running:
                while waiting and len(running) < workers:
                    job = waiting.pop(0)
                    running[pool.submit(job)] = (job, time.time())
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                broken = False
                for future in done:
                    job, since = running.pop(future)
                    try:
                        outcome, error = future.result(), None
                    except SSLBenchError as exc:       # another configuration in the worker
                        for other in running:
                            other.cancel()
                        raise SSLBenchError(f"unit {job.unit.id}: {exc}") from None
                    except futures.process.BrokenProcessPool as exc:
                        outcome, error = None, f"a worker process died: {one_line(exc)}"
                        broken = True
                    except Exception as exc:  # noqa: BLE001 - its cells fail, not the run
                        outcome, error = None, f"worker failed: {one_line(exc)}"
                    yield Finished(job.unit, outcome, error, since)
                if broken:                    # the others in the pool were stopped with it
                    for job, since in running.values():
                        yield Finished(job.unit, None, "a worker process died: the pool "
                                       "stopped its other workers", since)
                    return


@sslbench.hookimpl
def sslbench_executors():
    return [LocalExecutor]
