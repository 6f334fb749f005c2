"""Shared training machinery: device and precision, optimiser and schedule, epoch batching
on the device, the pretraining loop, and batched prediction.

The hot loop keeps everything on the device: batches are index tensors into a uint8 image
tensor that already lives there (or, for a streamed data set, uint8 batches that DataLoader
workers decoded ahead and that arrive without blocking; :mod:`sslbench.images`), tasks build
their inputs from whole batches, and the loss is accumulated on the device and read once per
epoch (the only host-device synchronisation).

A training protocol that may run for long resumes after a kill or a preemption with
:class:`ResumeFile` (``EvalContext.resume``), :func:`random_states` and
:func:`set_random_states`; ``finetune`` is the worked example.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .augment import to_float
from .errors import NonFiniteLoss, SSLBenchError
from .images import Images, chunks
from .task import PretextTask
# resumable training (a protocol's snapshots: EvalContext.resume); defined with the machinery
from ._core.resume import ResumeFile, random_states, set_random_states

__all__ = [
    'resolve_device', 'autocast_dtype_for', 'autocast', 'to_device', 'maybe_compile',
    'OPTIMIZERS', 'make_optimizer', 'LARS', 'warmup_cosine', 'step_drops', 'epoch_batches',
    'check_finite', 'effective_schedule', 'predict', 'random_batches', 'step_batches',
    'accuracy', 'shard', 'sync_gradients', 'sync_buffers', 'global_sum',
    'ResumeFile', 'random_states', 'set_random_states', 'checks_since_best'
]


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA where present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SSLBenchError("--device cuda was asked for, but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise SSLBenchError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def autocast_dtype_for(device: torch.device) -> torch.dtype | None:
    """bf16 mixed precision on CUDA; full fp32 on the CPU."""
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(module: nn.Module, device: torch.device) -> nn.Module:
    """Move a module to the device in channels_last layout: 1.01-1.48x the NCHW rate of a
    rotation step on this project's 2-core CPU (benchmarks/RESULTS.md), and the layout that
    cuDNN's bf16 convolution kernels want on CUDA."""
    return module.to(device=device, memory_format=torch.channels_last)


def maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile`` the module for training when asked (``--compile``). The compiled
    wrapper shares parameters and forwards attribute access to the module, whose state dict
    is what gets saved."""
    return torch.compile(module) if enabled else module


OPTIMIZERS = ("sgd", "adamw", "lars")


def make_optimizer(modules: list[nn.Module], lr: float, weight_decay: float,
                   device: torch.device, kind: str = "sgd") -> torch.optim.Optimizer:
    """The optimiser ``kind`` over the trainable parameters of ``modules``; no weight decay on
    biases and normalisation weights (one-dimensional parameters).

    * ``sgd``: Nesterov momentum 0.9, the fused kernel on CUDA;
    * ``adamw``: AdamW (betas 0.9, 0.999), fused on CUDA;
    * ``lars``: :class:`LARS`, for methods whose papers train with it (BYOL, SimCLR).
    """
    decay, no_decay = [], []
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True}]
    fused: dict[str, Any] = {"fused": True} if device.type == "cuda" else {}
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, **fused)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **fused)
    if kind == "lars":
        return LARS(groups, lr=lr)
    raise SSLBenchError(f"unknown optimizer {kind!r}; optimizers: {', '.join(OPTIMIZERS)}")


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017) as BYOL's and SimCLR's
    code apply it: for each parameter tensor, weight decay is added to the gradient, which is
    then scaled by ``trust * ||w|| / ||g + wd * w||`` (1 where either norm is zero) before
    heavy-ball momentum. Groups with ``lars_exclude`` (biases, normalisation weights) get
    plain momentum SGD without decay, as in both papers."""

    def __init__(self, params, lr: float, momentum: float = 0.9, trust: float = 1e-3,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "trust": trust,
                                  "weight_decay": weight_decay, "lars_exclude": False})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not group["lars_exclude"]:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    ratio = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["trust"] * w_norm / g_norm,
                                        torch.ones_like(w_norm))
                    g = g.mul(ratio)
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = g.clone()
                else:
                    state["momentum"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum"], alpha=-group["lr"])
        return loss


def step_drops(optimizer: torch.optim.Optimizer, total_steps: int,
               drops: list[float]) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate times 0.2 after each share of the steps in ``drops``, no warm-up:
    RotNet's look-up table (0.1, 0.02, 0.004, 0.0008 after 60, 120, 160 of 200 epochs) is
    ``[0.3, 0.6, 0.8]``."""
    edges = [round(d * total_steps) for d in drops]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.2 ** sum(step >= e for e in edges))


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int,
                  warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero over ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator,
                  device: torch.device, drop_last: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors of one shuffled epoch, drawn on the device. With ``drop_last`` a short
    final batch is dropped (keeps BatchNorm statistics sane), unless it is the only one."""
    order = torch.randperm(n, generator=generator, device=device)
    full = n // batch_size
    for i in range(full):
        yield order[i * batch_size:(i + 1) * batch_size]
    if n % batch_size and (not drop_last or full == 0):
        yield order[full * batch_size:]


def check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise NonFiniteLoss(f"{what} became {value}")


def effective_schedule(task: PretextTask, settings: dict[str, Any]) -> dict[str, Any]:
    """The pretraining schedule that runs: the task's :meth:`~PretextTask.schedule` where it
    says something, the sweep's settings elsewhere. A bad value is one line naming the task."""
    own = task.schedule()
    plan = {"epochs": own.epochs if own.epochs is not None else settings["pretrain_epochs"],
            "lr": own.lr if own.lr is not None else settings["pretrain_lr"],
            "batch_size": (own.batch_size if own.batch_size is not None
                           else settings["pretrain_batch_size"]),
            "weight_decay": (own.weight_decay if own.weight_decay is not None
                             else settings["weight_decay"]),
            "optimizer": own.optimizer, "warmup_epochs": own.warmup_epochs,
            "lr_drops": [float(d) for d in settings.get("pretrain_lr_drops") or []]}
    if own.lr_per_256 is not None:
        if own.lr is not None:
            raise SSLBenchError(f"task {task.name!r}: its schedule gives both lr and "
                                "lr_per_256; give one")
        plan["lr"] = own.lr_per_256 * plan["batch_size"] / 256
    if plan["optimizer"] not in OPTIMIZERS:
        raise SSLBenchError(f"task {task.name!r} asks for optimizer {plan['optimizer']!r}; "
                            f"optimizers: {', '.join(OPTIMIZERS)}")
    for key in ("epochs", "batch_size"):
        if not isinstance(plan[key], int) or plan[key] < 1:
            raise SSLBenchError(f"task {task.name!r}: its schedule's {key} must be a positive "
                                f"integer (got {plan[key]!r})")
    return {**plan, "epochs": int(plan["epochs"]), "batch_size": int(plan["batch_size"]),
            "lr": float(plan["lr"]), "weight_decay": float(plan["weight_decay"])}


@torch.no_grad()
def predict(model: Callable[[torch.Tensor], torch.Tensor], images: Images | torch.Tensor,
            device: torch.device, dtype: torch.dtype | None,
            batch_size: int = 512) -> torch.Tensor:
    """Class predictions for uint8 ``images`` (on ``device``, or streamed), in batches."""
    out = []
    for x in chunks(images, batch_size):
        with autocast(device, dtype):
            out.append(model(to_float(x)).argmax(1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=device)


def random_batches(n: int, batch_size: int, generator: torch.Generator,
                   device: torch.device) -> Iterator[torch.Tensor]:
    """Endless index batches drawn with replacement (unlabeled images for consistency
    losses); each is drawn when asked for."""
    while True:
        yield torch.randint(n, (batch_size,), device=device, generator=generator)


def step_batches(n: int, batch_size: int, steps: int, generator: torch.Generator,
                 device: torch.device) -> Iterator[torch.Tensor]:
    """``steps`` index batches, reshuffling at each pass over the ``n`` items."""
    batch_size = min(batch_size, n)
    done = 0
    while done < steps:
        for idx in epoch_batches(n, batch_size, generator, device):
            yield idx
            done += 1
            if done == steps:
                return


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predicted == labels).float().mean()) if len(labels) else float("nan")


def checks_since_best(scores: list[float]) -> int:
    """How many validation checks have passed since the best one (the first to reach the
    highest score; a later tie is no improvement): 0 when the last check is the best.

    Early stopping with a patience of P checks stops once this reaches P. It is a function of
    the curve alone, so a resumed run (whose snapshot holds the curve) and every process of a
    data-parallel run (which all see the same validation accuracy) stop at the same step."""
    if not scores:
        return 0
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return len(scores) - 1 - best


# --------------------------------------------------------------------------- data parallel
# One unit on several processes (``torchrun --nproc-per-node N -m sslbench run ...``): every
# process holds the same model and draws the same global batch of indices with the same
# generator; each trains on its share, and gradients are averaged before each step, so the
# model stays identical everywhere and the global batch size is the one asked for, whatever
# the number of processes. Without torch.distributed initialised, all of these do nothing.

def _world() -> tuple[int, int]:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(index_batches: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    """This process's share of each global index batch (all of it in a single process).
    Shares differ in size by at most one image when the batch does not divide evenly."""
    rank, size = _world()
    for idx in index_batches:
        yield idx if size == 1 else idx.tensor_split(size)[rank]


def sync_gradients(modules: list[nn.Module | None]) -> None:
    """Average the gradients of ``modules`` over the processes (call between ``backward``
    and the optimiser step): one all-reduce over all of them, flattened together."""
    rank, size = _world()
    if size == 1:
        return
    import torch.distributed as dist
    grads = [p.grad for m in modules if m is not None for p in m.parameters()
             if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def sync_buffers(modules: list[nn.Module | None]) -> None:
    """Give every process the first process's buffers (batch-norm running statistics, which
    each process accumulated on its own share)."""
    rank, size = _world()
    if size == 1:
        return
    import torch.distributed as dist
    for m in modules:
        if m is None:
            continue
        for buffer in m.buffers():
            dist.broadcast(buffer, src=0)


def global_sum(value: torch.Tensor) -> torch.Tensor:
    """``value`` summed over the processes (itself in a single process)."""
    rank, size = _world()
    if size == 1:
        return value
    import torch.distributed as dist
    value = value.clone()
    dist.all_reduce(value)
    return value
