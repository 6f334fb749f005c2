"""One unit on several processes: ``torchrun --nproc-per-node N -m sslbench run ...``.

torchrun starts N copies of the command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set;
:func:`init_from_environment` joins them into one process group (NCCL on CUDA, gloo on the
CPU), and each process takes the GPU of its local rank. Every process then runs the same
sweep: the same units in the same order, the same data, the same initialisation. The
training loops take each process's share of every global batch and average the gradients
(:func:`sslbench.training.shard`, :func:`~sslbench.training.sync_gradients`), so the global
batch size is the one asked for whatever N is. Only the first process writes: records,
checkpoints, features, split files, snapshots and claims (:func:`is_writer`); the others
follow its decisions (:func:`from_first`).

Batch norm computes its statistics on each process's share; ``--set sync_bn=true`` makes
them global with torch's ``SyncBatchNorm``, which has CUDA kernels only.
"""

from __future__ import annotations

import os
from typing import Any


def world_size_from_environment() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_environment(device_name: str) -> None:
    """Join torchrun's process group when the environment says there is one."""
    if world_size_from_environment() <= 1:
        return
    import torch
    import torch.distributed as dist
    if dist.is_initialized():
        return
    cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")


def rank() -> int:
    import torch.distributed as dist
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_writer() -> bool:
    """Whether this process writes files (the only one, or the first of a process group)."""
    if world_size_from_environment() <= 1:
        return True
    return rank() == 0


def from_first(value: Any) -> Any:
    """The first process's ``value``, on every process (``value`` itself in one process)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
