"""A unit as a Slurm job that survives preemption and its time limit (imported only by the
slurm executor: it needs submitit).

submitit calls :meth:`checkpoint` when Slurm signals the job before killing it (preemption,
the time limit near); returning the same call requeues the job as it was. The unit then
starts again in its new allocation, skips its finished cells (their records exist), and
its pretraining continues from its last snapshot (:mod:`sslbench._core.resume`). The unit's
claim is taken over by the requeued job: a claim made under the same Slurm job id is its
own (:mod:`sslbench._core.claims`).
"""

from __future__ import annotations

from typing import Any

import submitit

from .executors import run_unit_job
from .grid import Unit


class RequeueableUnit(submitit.helpers.Checkpointable):
    """``run_unit_job`` with submitit's checkpoint-and-requeue."""

    def __call__(self, config: dict[str, Any], unit: Unit, cwd: str) -> dict[str, Any]:
        return run_unit_job(config, unit, cwd)
