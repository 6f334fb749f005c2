"""A unit as a Slurm job that survives preemption and its time limit (imported only by the
slurm executor: it needs submitit).

submitit calls ``checkpoint`` when Slurm signals the job before killing it (preemption, the
time limit near); returning the same call requeues the job as it was. The unit then starts
again in its new allocation, skips its finished cells (their records exist), and its
pretraining continues from its last snapshot. The unit's claim is taken over by the requeued
job: a claim made under the same Slurm job id is its own.

With ``gpus_per_job`` N > 1 a job has N tasks, one per GPU; submitit's
``TorchDistributedEnvironment`` gives them torchrun's variables and they train the unit data
parallel, as under torchrun (never run: no GPU here).
"""

from __future__ import annotations

import submitit

from sslbench.executor import UnitJob, UnitOutcome


class RequeueableUnit(submitit.helpers.Checkpointable):
    """A :class:`~sslbench.executor.UnitJob` call with submitit's checkpoint-and-requeue."""

    def __init__(self, gpus: int = 0) -> None:
        self.gpus = int(gpus)

    def __call__(self, job: UnitJob) -> UnitOutcome:
        if self.gpus > 1:
            # one Slurm task per GPU: torchrun's variables, so that the job joins one
            # process group and trains the unit data parallel (the first task writes)
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return job()
