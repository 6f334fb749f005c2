"""Pretraining: a task's pretext loss minimised on the unlabeled pool
(:func:`pretrain`), and a trained checkpoint's pretext accuracy on images it never saw
(:func:`evaluate_pretext`). Machinery of the runner and of ``sslbench show --check``; a
plugin shapes it through :meth:`~sslbench.task.PretextTask.schedule` and
:meth:`~sslbench.task.PretextTask.after_step`."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from ..augment import to_float
from ..images import Images, as_images
from ..task import PretextTask
from ..training import (autocast, check_finite, effective_schedule, epoch_batches,
                        global_sum, make_optimizer, maybe_compile, shard, sync_buffers,
                        step_drops, sync_gradients, to_device, warmup_cosine)
from .progress import Reporter
from .resume import ResumeFile, random_states, set_random_states
from .seeding import make_generator


def pretrain(task: PretextTask, backbone: nn.Module, images: Images | torch.Tensor,
             settings: dict[str, Any], device: torch.device, dtype: torch.dtype | None,
             seed: int, reporter: Reporter, label: str, compile: bool = False,
             resume: ResumeFile | None = None) -> dict[str, Any]:
    """Train ``backbone`` (on ``device``) and the task's head with the pretext loss on the
    unlabeled uint8 ``images`` (held on ``device`` or streamed). Returns the per-epoch
    history and throughput. With ``resume``, continue from its snapshot if there is one, and
    write one at the end of an epoch whenever it is due (:mod:`sslbench._core.resume`)."""
    gen = make_generator(seed, f"pretrain:{task.name}", device)
    # a task may return a tensor from prepare (exemplar: the subset it took)
    images = as_images(task.prepare(as_images(images), gen))
    order = images.order_generator(gen)
    head = to_device(task.build_head(backbone), device)
    net = maybe_compile(backbone, compile)
    plan = effective_schedule(task, settings)
    epochs = plan["epochs"]
    batch_size = min(plan["batch_size"], len(images))
    steps_per_epoch = max(1, len(images) // batch_size)
    total = epochs * steps_per_epoch
    optimizer = make_optimizer([m for m in (backbone, head) if m is not None], plan["lr"],
                               plan["weight_decay"], device, plan["optimizer"])
    warmup = (min(total // 10, 5 * steps_per_epoch) if plan["warmup_epochs"] is None
              else min(total, plan["warmup_epochs"] * steps_per_epoch))
    if plan["lr_drops"]:      # a step schedule (RotNet's), no warm-up
        warmup = 0
        schedule = step_drops(optimizer, total, plan["lr_drops"])
    else:
        schedule = warmup_cosine(optimizer, total, warmup)
    step = 0
    extra = {}
    backbone.train()
    head.train()
    history: list[dict[str, float]] = []
    world = int(global_sum(torch.ones((), device=device)).item())   # processes training it
    started = time.perf_counter()
    seen = 0
    first_epoch, before = 1, 0.0
    snapshot = resume.load() if resume is not None else None
    if snapshot is not None:
        backbone.load_state_dict(snapshot["backbone"])
        head.load_state_dict(snapshot["head"])
        optimizer.load_state_dict(snapshot["optimizer"])
        schedule.load_state_dict(snapshot["schedule"])
        set_random_states(snapshot["random"], gen, order)
        step, history, seen = snapshot["step"], snapshot["history"], snapshot["seen"]
        first_epoch, before = snapshot["epoch"] + 1, snapshot["seconds"]
        reporter.log(f"{label}: resuming after epoch {snapshot['epoch']} of {epochs} "
                     f"from {resume.path}")
    # training inputs: what the backbone sees per step (a rotation step shows it four
    # copies of each source image, a jigsaw step nine tiles); counted at the input of the
    # module the task is given (outside a compiled graph), no sync
    inputs = [0]
    counter = net.register_forward_pre_hook(
        lambda module, args: inputs.__setitem__(0, inputs[0] + len(args[0])) if args else None)
    with reporter.training(label, epochs) as progress:
        for epoch in range(first_epoch, epochs + 1):
            t0 = time.perf_counter()
            inputs[0] = 0
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            count = torch.zeros((), device=device)
            n_images = 0
            n_steps = 0
            # each process takes its share of the global batch (all of it in one process)
            for idx, batch in images.batches(shard(epoch_batches(len(images), batch_size,
                                                                 order, images.index_device))):
                x = to_float(batch)
                if task.uses_index:
                    extra["index"] = idx
                with autocast(device, dtype):
                    out = task.pretext_loss(net, head, x, gen, **extra)
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                sync_gradients([backbone, head])
                optimizer.step()
                schedule.step()
                step += 1
                with torch.no_grad():
                    task.after_step(backbone, head, step, total)
                loss_sum += out.loss.detach().float()
                if out.logits is not None:
                    correct += (out.logits.argmax(1) == out.targets).sum()
                    count += out.targets.numel()
                n_images += len(idx)
                n_steps += 1
            # the global batch's sums (this process's in one process); one sync per epoch
            sums = global_sum(torch.stack([loss_sum, correct, count,
                                           torch.tensor(float(n_images), device=device)]))
            loss_sum, correct, count = sums[0], sums[1], sums[2]
            n_images = int(sums[3].item())
            mean_loss = loss_sum.item() / (max(1, n_steps) * world)
            sync_buffers([backbone, head])
            check_finite(mean_loss, f"pretext loss of {task.name} in epoch {epoch}")
            dt = time.perf_counter() - t0
            seen += n_images
            row = {"epoch": epoch, "loss": mean_loss, "images_per_s": n_images / dt}
            if inputs[0]:            # a task that calls the network only through other methods
                row["inputs_per_s"] = inputs[0] * world / dt
            if count.item() > 0:
                row["pretext_accuracy"] = correct.item() / count.item()
            history.append(row)
            progress.epoch_done(epoch, mean_loss, n_images / dt,
                                inputs_per_s=row.get("inputs_per_s"),
                                **({"acc": row["pretext_accuracy"]}
                                   if "pretext_accuracy" in row else {}))
            if resume is not None and epoch < epochs and resume.due():
                resume.save({"epoch": epoch, "step": step, "history": history, "seen": seen,
                             "seconds": before + time.perf_counter() - started,
                             "backbone": backbone.state_dict(), "head": head.state_dict(),
                             "optimizer": optimizer.state_dict(),
                             "schedule": schedule.state_dict(),
                             "random": random_states(gen, order)})
    counter.remove()
    elapsed = before + time.perf_counter() - started
    return {"history": history, "seconds": elapsed, "images_per_s": seen / max(elapsed, 1e-9),
            "n_images": len(images), "head": head, "prepared": images,
            "schedule": {**plan, "steps": total, "warmup_steps": warmup},
            "resumed_after_epoch": first_epoch - 1 if snapshot is not None else None}


NEAR_CHANCE = 0.1   # a held-out loss removing less than this share of the targets' entropy is "near chance"


def _add_counts(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` for target counts of different lengths: a task whose targets are positions
    in the batch (BYOL's: which image's other view matches) has
    as many target classes as its batch has images, so the last, shorter batch has fewer."""
    if len(a) < len(b):
        a, b = b, a
    a = a.clone()
    a[:len(b)] += b
    return a


@torch.no_grad()
def evaluate_pretext(task: PretextTask, backbone: nn.Module, head: nn.Module | None,
                     images: Images, uses_index: bool, device: torch.device,
                     dtype: torch.dtype | None, seed: int,
                     batch_size: int = 256) -> dict[str, Any] | None:
    """Pretext accuracy of a trained backbone and head on ``images`` (eval mode, one pass,
    inputs drawn from a generator of their own): ``accuracy``, ``chance`` (the share of the
    most frequent target: what a network that ignores its input reaches), ``loss`` (mean
    cross-entropy), ``entropy`` (of the targets: the loss of a network that ignores its input
    but knows how often each target comes), ``n`` (targets) and ``near_chance``: the loss
    is within :data:`NEAR_CHANCE` of that entropy, i.e. the network extracted less than 10% of
    the information the task asks for. (Accuracy alone misleads with many classes: 0.7% on
    3,107 surrogate classes is 22 times chance and still a network that learned nothing.)
    ``None`` for a task whose steps have no logits, or no images."""
    if len(images) == 0:
        return None
    gen = make_generator(seed, f"pretext-eval:{task.name}", device)
    modules = [m for m in (backbone, head) if m is not None]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    counts: torch.Tensor | None = None
    order = torch.arange(len(images), device=images.index_device).split(batch_size)
    try:
        for idx, batch in images.batches(order):
            extra = {"index": idx} if uses_index else {}
            with autocast(device, dtype):
                out = task.pretext_loss(backbone, head, to_float(batch), gen, **extra)
            if out.logits is None:
                return None
            correct += (out.logits.argmax(1) == out.targets).sum()
            loss_sum += out.loss.float() * out.targets.numel()
            found = torch.bincount(out.targets.reshape(-1), minlength=out.logits.shape[1])
            counts = found if counts is None else _add_counts(counts, found)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    n = int(counts.sum())
    freq = counts.double() / n
    entropy = float(-(freq[freq > 0] * freq[freq > 0].log()).sum())
    loss = float(loss_sum) / n
    return {"accuracy": float(correct) / n, "chance": float(counts.max()) / n, "loss": loss,
            "entropy": entropy, "n": n,
            "near_chance": loss > (1 - NEAR_CHANCE) * entropy}
