"""A unit as a Slurm job that survives preemption and its time limit (imported only by the
slurm executor: it needs submitit).

submitit calls :meth:`checkpoint` when Slurm signals the job before killing it (preemption,
the time limit near); returning the same call requeues the job as it was. The unit then
starts again in its new allocation, skips its finished cells (their records exist), and
its pretraining continues from its last snapshot (:mod:`sslbench._core.resume`). The unit's
claim is taken over by the requeued job: a claim made under the same Slurm job id is its
own (:mod:`sslbench._core.claims`).

With ``--gpus-per-job N`` (N > 1) a job has N tasks, one per GPU; submitit's
``TorchDistributedEnvironment`` gives them torchrun's variables and they train the unit data
parallel, as under torchrun (never run: no GPU here).
"""

from __future__ import annotations

from typing import Any

import submitit

from .executors import run_unit_job
from .grid import Unit


class RequeueableUnit(submitit.helpers.Checkpointable):
    """``run_unit_job`` with submitit's checkpoint-and-requeue."""

    def __call__(self, config: dict[str, Any], unit: Unit, cwd: str) -> dict[str, Any]:
        if int(config.get("gpus_per_job") or 0) > 1:
            # one Slurm task per GPU: they join one process group and train the unit data
            # parallel (sslbench._core.distributed); the first writes
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            from .distributed import init_from_environment
            init_from_environment(str(config.get("device", "auto")))
        return run_unit_job(config, unit, cwd)
