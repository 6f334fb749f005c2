"""Where a sweep's units of work run: in this process, on a Ray cluster, or as Slurm jobs.

sslbench schedules nothing itself. The grid is cut into units (:class:`~sslbench._core.grid.Unit`:
one pretraining and the cells that use it); an executor hands each unit to an engine and
learns when it ends:

* ``local`` runs them here, one after another (the default), or with ``--jobs N`` in N
  worker processes of this machine side by side, each running :func:`run_unit_job` as a Ray
  worker does, with ``--cpus-per-job`` torch threads (default: the cores shared out);
* ``ray`` makes each unit a Ray task with the resources asked for (``--cpus-per-job``,
  ``--gpus-per-job``), on the cluster at ``--ray-address`` / ``$RAY_ADDRESS`` or on a local
  one it starts;
* ``slurm`` submits the units as one Slurm job array through submitit, logs under
  ``OUT/slurm/``; without ``--wait`` it returns once they are submitted.

A worker (a Ray task, a Slurm job) runs :func:`run_unit_job`: it rebuilds the sweep from its
configuration and the shared paths (``--out``, ``--cache-dir``, the data), checks that it
computes the same cell hashes as the driver (the same sslbench and plugins), and runs its
unit exactly as the local executor would, so records do not depend on the executor. A unit
the engine loses (a killed worker, a job over its time limit, a node gone) has its unfinished
cells recorded as failed with the engine's error; rerunning the sweep retries exactly those.
Records are atomic files, checkpoints are claimed before they are trained
(:mod:`sslbench._core.claims`), so workers never write half a file or train one checkpoint
twice.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SSLBenchError
from .config import SweepConfig
from .progress import Reporter

if TYPE_CHECKING:                 # (importing the grid imports torch: not before it is needed)
    from .grid import Unit
    from .runner import Sweep

__all__ = ["executor_for", "run_unit_job", "LocalExecutor", "RayExecutor", "SlurmExecutor"]


# ---------------------------------------------------------------------------- the worker side
class _CollectingReporter(Reporter):
    """A worker's reporter: its warnings go back to the driver (which shows each once)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


_SWEEPS: dict[str, tuple["Sweep", dict]] = {}   # one per configuration in a reused worker


def run_unit_job(config: dict[str, Any], unit: Unit, cwd: str) -> dict[str, Any]:
    """Run one unit in a worker process; what the driver learns back.

    ``config`` is the sweep's :meth:`SweepConfig.to_dict`, ``cwd`` the driver's working
    directory (relative paths in the configuration are relative to it). Returns
    ``{"cells": {cell id: status}, "warnings": [...]}``. Raises :class:`SSLBenchError` when
    this worker would compute different cells than the driver (other code or plugins)."""
    os.chdir(cwd)
    if config.get("cpus_per_job"):
        # what the engine granted: the same threads as a local run with as many cores
        import torch
        torch.set_num_threads(int(config["cpus_per_job"]))
    key = json.dumps(config, sort_keys=True, default=str)
    if key not in _SWEEPS:
        from .plugins import PluginHost
        from .runner import Sweep
        cfg = SweepConfig(**config)
        sweep = Sweep(cfg, PluginHost.from_environment(cfg.plugins), _CollectingReporter())
        _SWEEPS.clear()                 # a reused worker keeps one sweep's data, not all
        _SWEEPS[key] = (sweep, {})
    sweep, prepared = _SWEEPS[key]
    sweep.reporter.warnings.clear()
    sweep.time_units, sweep.time_cells = {}, {}        # this unit's, for the driver
    mine = {c.id: c.config_hash for c in sweep.cells}
    for cell in unit.cells:
        if mine.get(cell.id) != cell.config_hash:
            raise SSLBenchError(
                f"this worker computes another configuration for cell {cell.id} than the "
                "driver: install the same sslbench and plugins on the driver and the workers")
    sweep.run_here([unit], prepared)
    from .records import read_record
    cells = {}
    for cell in unit.cells:
        record = read_record(sweep.out, cell.id) or {}
        cells[cell.id] = record.get("status", "skipped")
    return {"cells": cells, "warnings": list(sweep.reporter.warnings),
            "time": {"units": sweep.time_units, "cells": sweep.time_cells}}


# ---------------------------------------------------------------------------- the driver side
class LocalExecutor:
    """Each unit in this process, in grid order; with ``jobs`` > 1, in that many worker
    processes (spawned, so that no torch state is shared), handed out in grid order. The
    workers claim units, write records and send their time and warnings back exactly as Ray
    workers do, so a run's records do not depend on ``jobs``; a worker that dies fails the
    cells of its unit that have no record, and a rerun retries them."""

    name = "local"

    def __init__(self, config: SweepConfig) -> None:
        self.config = config

    def check(self, out: Path) -> None:
        """Nothing to check: the local executor needs no engine."""

    def start(self) -> None:
        """Nothing to start."""

    def run(self, sweep: "Sweep", units: list[Unit]) -> None:
        if self.config.jobs <= 1 or len(units) <= 1:
            sweep.run_here(units)
        else:
            self._in_workers(sweep, units)

    def threads_per_job(self) -> int:
        """``--cpus-per-job``, else the cores shared out between the jobs (at least one)."""
        return self.config.cpus_per_job or max(1, (os.cpu_count() or 1) // self.config.jobs)

    def _in_workers(self, sweep: "Sweep", units: list[Unit]) -> None:
        import concurrent.futures as futures
        import multiprocessing
        config = {**self.config.to_dict(), "cpus_per_job": self.threads_per_job(), "jobs": 1}
        since = time.time()
        context = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(self.config.jobs, mp_context=context) as pool:
            pending = {pool.submit(run_unit_job, config, unit, os.getcwd()): unit
                       for unit in units}
            for future in futures.as_completed(pending):
                unit = pending[future]
                try:
                    outcome, error = future.result(), None
                except SSLBenchError as exc:       # another configuration in the worker
                    for other in pending:
                        other.cancel()
                    raise SSLBenchError(f"unit {unit.id}: {exc}") from None
                except futures.process.BrokenProcessPool as exc:
                    outcome, error = None, f"a worker process died: {_one_line(exc)}"
                except Exception as exc:  # noqa: BLE001 - the unit's cells fail, not the run
                    outcome, error = None, f"worker failed: {_one_line(exc)}"
                _EngineExecutor.unit_finished(sweep, unit, outcome, error, since)

    def close(self) -> None:
        """Nothing to stop."""


class _EngineExecutor:
    """What the Ray and Slurm executors share: the job's arguments, and the driver's handling
    of a finished or lost unit."""

    name = ""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config

    def start(self) -> None:
        """Begin what takes time before the first unit can be sent (called by the CLI while
        it builds the sweep); nothing by default."""

    def close(self) -> None:
        """Wait for whatever :meth:`run` left stopping in the background; nothing by default."""

    def job_args(self, unit: Unit) -> tuple[dict[str, Any], Unit, str]:
        return self.config.to_dict(), unit, os.getcwd()

    @staticmethod
    def unit_finished(sweep: "Sweep", unit: Unit, outcome: dict[str, Any] | None,
                      error: str | None, since: float) -> None:
        """Show a unit's end on the driver: its workers' warnings, its cells; a lost unit's
        cells without a record since ``since`` (when it was sent) are recorded as failed
        with the engine's error."""
        shown = set(sweep.fail_unit(unit, error, since)) if error is not None else set()
        spent = (outcome or {}).get("time", {})
        sweep.time_units.update(spent.get("units", {}))
        sweep.time_cells.update(spent.get("cells", {}))
        for message in (outcome or {}).get("warnings", []):
            sweep._warn_once(message)
        for cell in unit.cells:
            if cell.id not in shown:          # a failed one was shown when it was recorded
                sweep.reporter.cell_done(cell.id)
        sweep.write_time_account(complete=False)


def _missing_extra(engine: str, extra: str) -> SSLBenchError:
    return SSLBenchError(f"--executor {engine} needs {engine} installed: "
                         f"pip install 'sslbench[{extra}]'")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Ray retries an unreachable cluster address for a minute or more; a TCP connection
    to it says at once whether anything listens there."""
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SSLBenchError(f"--ray-address {address!r} is not HOST:PORT (or ray://HOST:PORT)")
    import socket
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SSLBenchError(f"cannot reach the Ray cluster at {address}: "
                            f"{exc.strerror or exc}") from None


class RayExecutor(_EngineExecutor):
    """Each unit a Ray task (``max_retries=0``: a lost unit is reported, and a rerun retries
    it). Connects to ``--ray-address`` or ``$RAY_ADDRESS``, else starts a local Ray on this
    machine and stops it at the end.

    Starting a local Ray takes seconds (about 5 here) and so does stopping it (about 1.5):
    :meth:`start` connects in a thread of its own while the driver builds its sweep, and
    :meth:`run` hands the stopping back to that thread while the driver prints the
    leaderboard (:meth:`close` waits for it). The thread that starts a local Ray must live
    until it is stopped: Ray's processes are started to die with the thread that forked
    them (``PR_SET_PDEATHSIG``)."""

    name = "ray"

    def __init__(self, config: SweepConfig) -> None:
        super().__init__(config)
        self._owner: threading.Thread | None = None
        self._ready = threading.Event()      # connected, or failed to
        self._stop = threading.Event()       # the driver is done with Ray
        self._error: BaseException | None = None

    def check(self, out: Path) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise _missing_extra("ray", "ray") from None

    def start(self) -> None:
        if self._owner is not None:
            return
        self.check(Path("."))
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            # what ray.init does when called on the main thread: a SIGTERM exits through
            # sys.exit, so that a Ray this driver started is stopped on the way out
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        self._owner = threading.Thread(target=self._own_ray, name="sslbench-ray", daemon=True)
        self._owner.start()

    def _own_ray(self) -> None:
        """Connect (or start a local Ray), wait until the driver is done, then stop it."""
        try:
            started = self._connect()
        except BaseException as exc:  # noqa: BLE001 - raised on the driver's thread by run()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._stop.wait()
        if started:
            import ray
            ray.shutdown()

    def _connect(self) -> bool:
        """Connect to (or start) Ray; whether this driver started it."""
        import ray
        if ray.is_initialized():
            return False
        address = self.config.ray_address or os.environ.get("RAY_ADDRESS") or None
        _check_reachable(address)
        # Ray logs notices while starting (a new local cluster's token authentication, that
        # it set no SIGTERM handler off the main thread: start() did); the driver's output
        # is the sweep's: errors still raise
        ray_log = logging.getLogger("ray")
        level = ray_log.level
        ray_log.setLevel(logging.ERROR)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            hint = ("; if it uses Ray's token authentication (clusters started with "
                    "`ray start` do from Ray 2.59 on), set RAY_AUTH_MODE=token for this "
                    "command, with the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token"
                    if address and not os.environ.get("RAY_AUTH_MODE") else "")
            raise SSLBenchError(f"cannot reach the Ray cluster at {address}: "
                                f"{_one_line(exc)}{hint}") from None
        finally:
            ray_log.setLevel(level)
        return address is None

    def run(self, sweep: "Sweep", units: list[Unit]) -> None:
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        try:
            self._send_and_wait(sweep, units)
        except BaseException:
            # the traceback still holds Ray objects of this thread: stop Ray only after them
            self.close()
            raise
        # Ray exits the process if one of its objects is released while it stops, so every
        # Ray object of this thread must be gone first: those of _send_and_wait's frame went
        # with it, those kept in reference cycles (a lost worker's exception and the frames
        # of its traceback) go with a collection. Then the owner thread may stop a local Ray
        # while the driver prints.
        gc.collect()
        self._stop.set()

    def _send_and_wait(self, sweep: "Sweep", units: list[Unit]) -> None:
        import ray
        resources = {"num_cpus": self.config.cpus_per_job or 1,
                     "num_gpus": self.config.gpus_per_job}
        available = ray.cluster_resources()
        for kind, key in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            if resources[kind] > available.get(key, 0):
                raise SSLBenchError(
                    f"each unit asks for {resources[kind]} {key}, but the Ray cluster has "
                    f"{available.get(key, 0):g}")
        task = ray.remote(max_retries=0, **resources)(run_unit_job)
        since = time.time()
        pending = {task.remote(*self.job_args(unit)): unit for unit in units}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(done[0])
            try:
                outcome, error = ray.get(done[0]), None
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, SSLBenchError):
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    raise SSLBenchError(f"unit {unit.id}: {cause}") from None
                outcome, error = None, f"ray task failed: {_one_line(cause)}"
            except ray.exceptions.RayError as exc:   # a worker or node lost
                outcome, error = None, f"ray: {_one_line(exc)}"
            self.unit_finished(sweep, unit, outcome, error, since)

    def close(self) -> None:
        if self._owner is not None:
            self._stop.set()
            self._owner.join()
            self._owner = None


def _private_folder(folder: Path) -> None:
    """submitit passes jobs and their results as pickles through its folder, and reading a
    pickle runs code: the folder is made private to this user (0700), and one that another
    user owns or may write to is refused, in one line."""
    import stat
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        raise SSLBenchError(f"cannot write {str(folder)!r}: {exc.strerror or exc}") from None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SSLBenchError(f"{str(folder)!r} holds submitit's pickles, so it must be yours "
                            "and writable by you alone (chmod 700), or use another --out")


class SlurmExecutor(_EngineExecutor):
    """The units as one Slurm job array, through submitit. Without ``--wait`` the command
    returns once they are submitted; the job ids are kept in ``OUT/slurm/jobs.json``, so a
    later ``sslbench run`` of the same sweep records the units Slurm lost as failed (with
    Slurm's reason), leaves running ones alone and submits what is left."""

    name = "slurm"

    def __init__(self, config: SweepConfig) -> None:
        super().__init__(config)
        self.submitted: list[str] = []

    def folder(self, sweep_out: Path) -> Path:
        return Path(sweep_out) / "slurm"

    def check_installed(self) -> None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise _missing_extra("submitit", "slurm") from None

    def check(self, out: Path) -> None:
        self.check_installed()
        self._make(self.folder(out))     # the user's parameters, checked by submitit

    def _make(self, folder: Path):
        """A submitit executor with the user's parameters; what submitit rejects is one
        line, before anything is submitted."""
        import submitit
        _private_folder(folder)
        cfg = self.config
        try:
            executor = submitit.AutoExecutor(folder=str(folder / "%j"),
                                             cluster=cfg.slurm_cluster)
        except (RuntimeError, ValueError) as exc:
            raise SSLBenchError(f"--executor slurm: {_one_line(exc)}") from None
        params: dict[str, Any] = {"timeout_min": cfg.timeout_min, "name": "sslbench",
                                  "gpus_per_node": cfg.gpus_per_job or None,
                                  # one task per GPU: a unit trains data parallel on them
                                  "tasks_per_node": max(1, cfg.gpus_per_job), "nodes": 1}
        if cfg.cpus_per_job:
            params["cpus_per_task"] = cfg.cpus_per_job
        if cfg.slurm_partition:
            params["slurm_partition"] = cfg.slurm_partition
        generic = set(submitit.AutoExecutor._valid_parameters())
        for key, value in cfg.slurm_options.items():
            params[key if key in generic or key.startswith("slurm_") else f"slurm_{key}"] = value
        try:
            executor.update_parameters(**params)
        except (NameError, ValueError, TypeError, AssertionError) as exc:
            raise SSLBenchError(f"--slurm-opt: submitit rejects the parameters: "
                                f"{_one_line(exc)}") from None
        return executor

    # -------------------------------------------------------------- jobs of earlier drivers
    def _manifest(self, out: Path) -> Path:
        return self.folder(out) / "jobs.json"

    def _earlier_jobs(self, sweep: "Sweep", units: list[Unit]) -> dict[str, tuple[dict, Any]]:
        """Settle the jobs an earlier ``sslbench run`` submitted: a lost one's unfinished
        cells are recorded as failed with Slurm's reason. Returns the manifest entries and
        jobs of units still queued or running (they are not submitted again)."""
        import submitit
        try:
            earlier = json.loads(self._manifest(sweep.out).read_text())
        except (OSError, ValueError):
            return {}
        by_id = {u.id: u for u in units}
        busy = {}
        jobs = earlier.get("jobs") if isinstance(earlier, dict) else None
        for unit_id, entry in (jobs if isinstance(jobs, dict) else {}).items():
            if unit_id not in by_id or not isinstance(entry, dict):
                continue
            job_class = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob,
                         "debug": submitit.DebugJob}[self.config.slurm_cluster]
            job = job_class(folder=str(self.folder(sweep.out) / "%j"),
                            job_id=str(entry.get("job")))
            if not job.done():
                busy[unit_id] = (entry, job)
                if not self.config.wait:
                    sweep._warn_once(f"unit {unit_id} is still {job.state.lower()} as Slurm "
                                     f"job {job.job_id}; not submitted again")
                continue
            try:
                job.result()
            except Exception as exc:  # noqa: BLE001 - the engine's reason, recorded
                sweep.fail_unit(by_id[unit_id], f"slurm job {job.job_id} ({job.state}): "
                                                f"{_one_line(exc)}",
                                float(entry.get("submitted", 0)))
        return busy

    def run(self, sweep: "Sweep", units: list[Unit]) -> None:
        from .atomic import atomic_write_json
        folder = self.folder(sweep.out)
        executor = self._make(folder)
        busy = self._earlier_jobs(sweep, units)
        by_id = {u.id: u for u in units}
        new = [u for u in units if u.id not in busy]
        jobs: list = []
        since = time.time()
        if new:
            try:
                from .slurm_job import RequeueableUnit
                jobs = executor.map_array(RequeueableUnit(), *zip(*map(self.job_args, new)))
            except Exception as exc:  # noqa: BLE001 - sbatch refused: one line, nothing ran
                raise SSLBenchError(f"--executor slurm: submission failed: {_one_line(exc)}") \
                    from None
            self.submitted = [j.job_id for j in jobs]
            sweep.reporter.log(f"submitted {len(jobs)} units as Slurm jobs "
                               f"{jobs[0].job_id.split('_')[0]}; logs in {folder}/")
        atomic_write_json(self._manifest(sweep.out), {"jobs": {
            **{uid: entry for uid, (entry, _) in busy.items()},
            **{u.id: {"job": j.job_id, "submitted": since} for u, j in zip(new, jobs)}}})
        if self.config.wait:
            earlier = [(by_id[uid], job, float(entry.get("submitted", 0)))
                       for uid, (entry, job) in busy.items()]
            self.wait(sweep, earlier + [(u, j, since) for u, j in zip(new, jobs)])
            atomic_write_json(self._manifest(sweep.out), {"jobs": {}})   # all settled

    def wait(self, sweep: "Sweep", jobs: list[tuple[Unit, Any, float]]) -> None:
        """Until every job has ended: each unit's end shown as it comes (unit, job, and
        when it was submitted)."""
        pending = list(jobs)
        while pending:
            for item in [p for p in pending if p[1].done()]:
                pending.remove(item)
                unit, job, since = item
                try:
                    outcome, error = job.result(), None
                except Exception as exc:  # noqa: BLE001 - the engine's reason, recorded
                    outcome, error = None, f"slurm job {job.job_id} ({job.state}): " \
                                           f"{_one_line(exc)}"
                self.unit_finished(sweep, unit, outcome, error, since)
            if pending:
                time.sleep(1.0)


_EXECUTORS: dict[str, Callable[[SweepConfig], Any]] = {
    "local": LocalExecutor, "ray": RayExecutor, "slurm": SlurmExecutor}


def executor_for(config: SweepConfig, out: Path | None = None):
    """The executor a configuration names, its engine checked (installed; with ``out``, its
    options too) before anything runs: a problem is one line. Without ``out`` the caller
    calls ``check(out)`` once it knows the results folder."""
    executor = _EXECUTORS[config.executor](config)
    if out is None:
        if config.executor == "ray":
            executor.check(Path("."))       # installed
        elif config.executor == "slurm":
            executor.check_installed()
    else:
        executor.check(Path(out))
    return executor
