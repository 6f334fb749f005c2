"""``--executor slurm``: the units as one Slurm job array, through submitit.

Logs go under ``OUT/slurm/``. Without ``wait`` the command returns once the jobs are
submitted; their ids are kept in ``OUT/slurm/jobs.json``, so a later ``sslbench run`` of the
same sweep records the units Slurm lost as failed (with Slurm's reason), leaves running ones
alone and submits what is left. A job survives preemption and its time limit
(:mod:`sslbench_plugins.executors.slurm_job`). ``cluster = "local"`` runs the same jobs as
local processes (submitit's local executor), which is how this is tested.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sslbench
from sslbench import SSLBenchError
from sslbench.executor import Executor, Finished, UnitJob, one_line
from sslbench.options import Range

CLUSTERS = ("slurm", "local", "debug")


def private_folder(folder: Path) -> None:
    """submitit passes jobs and their results as pickles through its folder, and reading a
    pickle runs code: the folder is made private to this user (0700), and one that another
    user owns or may write to is refused, in one line."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        raise SSLBenchError(f"cannot write {str(folder)!r}: {exc.strerror or exc}") from None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SSLBenchError(f"{str(folder)!r} holds submitit's pickles, so it must be yours "
                            "and writable by you alone (chmod 700), or use another --out")


class SlurmExecutor(Executor):
    name = "slurm"
    description = "the units as one Slurm job array, through submitit (logs in OUT/slurm/)"
    defaults = {"partition": "", "cluster": "slurm", "timeout_min": 24 * 60,
                "cpus_per_job": 0, "gpus_per_job": 0, "parameters": {}, "wait": False}
    ranges = {"timeout_min": Range(ge=1), "cpus_per_job": Range(ge=0),
              "gpus_per_job": Range(ge=0)}
    former_flags = {"slurm_partition": "partition", "slurm_cluster": "cluster",
                    "timeout_min": "timeout_min", "cpus_per_job": "cpus_per_job",
                    "gpus_per_job": "gpus_per_job", "slurm_options": "parameters",
                    "wait": "wait"}

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.submitted: list[str] = []
        self._folder: Path | None = None
        self._settled: list[Finished] = []       # lost jobs of an earlier driver
        self._waiting: list[tuple[Any, Any, float]] = []   # (unit, job, submitted)

    def check_options(self) -> None:
        self.require("cluster", self.options["cluster"] in CLUSTERS,
                     f"one of {', '.join(CLUSTERS)}")

    def check(self, out: Path) -> None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise SSLBenchError("--executor slurm needs submitit installed: "
                                "pip install 'sslbench[slurm]'") from None
        self._make(Path(out) / "slurm")     # the user's parameters, checked by submitit

    def _make(self, folder: Path):
        """A submitit executor with the user's parameters; what submitit rejects is one
        line, before anything is submitted."""
        import submitit
        private_folder(folder)
        o = self.options
        try:
            executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=o["cluster"])
        except (RuntimeError, ValueError) as exc:
            raise SSLBenchError(f"--executor slurm: {one_line(exc)}") from None
        params: dict[str, Any] = {"timeout_min": o["timeout_min"], "name": "sslbench",
                                  "gpus_per_node": o["gpus_per_job"] or None,
                                  # one task per GPU: a unit trains data parallel on them
                                  "tasks_per_node": max(1, o["gpus_per_job"]), "nodes": 1}
        if o["cpus_per_job"]:
            params["cpus_per_task"] = o["cpus_per_job"]
        if o["partition"]:
            params["slurm_partition"] = o["partition"]
        generic = set(submitit.AutoExecutor._valid_parameters())
        for key, value in o["parameters"].items():
            params[key if key in generic or key.startswith("slurm_") else f"slurm_{key}"] = value
        try:
            executor.update_parameters(**params)
        except (NameError, ValueError, TypeError, AssertionError) as exc:
            raise SSLBenchError(f"--slurm-opt: submitit rejects the parameters: "
                                f"{one_line(exc)}") from None
        return executor

    # -------------------------------------------------------------- jobs of earlier drivers
    def _manifest(self) -> Path:
        return self._folder / "jobs.json"

    def _write_manifest(self, jobs: dict[str, Any]) -> None:
        tmp = self._manifest().with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"jobs": jobs}, indent=1))
        os.replace(tmp, self._manifest())        # never half a file

    def _earlier_jobs(self, units: dict[str, Any], reporter) -> dict[str, tuple[dict, Any]]:
        """Settle the jobs an earlier ``sslbench run`` submitted: a lost one becomes a
        :class:`Finished` with Slurm's reason. Returns the manifest entries and jobs of units
        still queued or running (they are not submitted again)."""
        import submitit
        try:
            earlier = json.loads(self._manifest().read_text())
        except (OSError, ValueError):
            return {}
        busy = {}
        jobs = earlier.get("jobs") if isinstance(earlier, dict) else None
        job_class = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob,
                     "debug": submitit.DebugJob}[self.options["cluster"]]
        for unit_id, entry in (jobs if isinstance(jobs, dict) else {}).items():
            if unit_id not in units or not isinstance(entry, dict):
                continue
            job = job_class(folder=str(self._folder / "%j"), job_id=str(entry.get("job")))
            if not job.done():
                busy[unit_id] = (entry, job)
                if not self.options["wait"]:
                    reporter.warn(f"unit {unit_id} is still {job.state.lower()} as Slurm "
                                  f"job {job.job_id}; not submitted again")
                continue
            try:
                job.result()
            except Exception as exc:  # noqa: BLE001 - the engine's reason, recorded
                self._settled.append(Finished(
                    units[unit_id], None, f"slurm job {job.job_id} ({job.state}): "
                                          f"{one_line(exc)}", float(entry.get("submitted", 0))))
        return busy

    def submit(self, jobs: Sequence[UnitJob], reporter) -> None:
        from .slurm_job import RequeueableUnit
        if not jobs:
            return
        self._folder = jobs[0].out / "slurm"
        executor = self._make(self._folder)
        units = {job.unit.id: job.unit for job in jobs}
        busy = self._earlier_jobs(units, reporter)
        threads = self.options["cpus_per_job"] or None
        new = [job.with_threads(threads) for job in jobs if job.unit.id not in busy]
        submitted: list = []
        since = time.time()
        if new:
            try:
                submitted = executor.map_array(RequeueableUnit(self.options["gpus_per_job"]),
                                               new)
            except Exception as exc:  # noqa: BLE001 - sbatch refused: one line, nothing ran
                raise SSLBenchError(f"--executor slurm: submission failed: {one_line(exc)}") \
                    from None
            self.submitted = [j.job_id for j in submitted]
            reporter.log(f"submitted {len(submitted)} units as Slurm jobs "
                         f"{submitted[0].job_id.split('_')[0]}; logs in {self._folder}/")
        self._write_manifest({
            **{uid: entry for uid, (entry, _) in busy.items()},
            **{job.unit.id: {"job": j.job_id, "submitted": since}
               for job, j in zip(new, submitted)}})
        self._waiting = [(units[uid], job, float(entry.get("submitted", 0)))
                         for uid, (entry, job) in busy.items()]
        self._waiting += [(job.unit, j, since) for job, j in zip(new, submitted)]

    def finished(self) -> Iterator[Finished]:
        yield from self._settled
        if not self.options["wait"]:
            return
        pending = list(self._waiting)
        while pending:
            for item in [p for p in pending if p[1].done()]:
                pending.remove(item)
                unit, job, since = item
                try:
                    outcome, error = job.result(), None
                except Exception as exc:  # noqa: BLE001 - the engine's reason, recorded
                    outcome, error = None, f"slurm job {job.job_id} ({job.state}): " \
                                           f"{one_line(exc)}"
                yield Finished(unit, outcome, error, since)
            if pending:
                time.sleep(1.0)
        if self._folder is not None:
            self._write_manifest({})                 # all settled

    def still_running(self) -> str | None:
        if not self.submitted or self.options["wait"]:
            return None
        first = self.submitted[0].split("_")[0]
        out = self._folder.parent
        return (f"submitted {len(self.submitted)} units as Slurm jobs {first}_[...]; follow "
                f"them with `squeue -j {first}` and the logs in {self._folder}/; "
                f"`sslbench report {out}` shows what has finished, and running this command "
                "again resumes (it submits only what is neither finished nor running)")


@sslbench.hookimpl
def sslbench_executors():
    return [SlurmExecutor]
