"""``finetune``: the whole network, initialised from the checkpoint, trained on the labeled
subset with the standard small-image augmentation (random crop with padding, horizontal flip),
applied on the device to whole batches.

A long run resumes (:attr:`~sslbench.protocol.EvalContext.resume`): at a validation check,
once ``checkpoint_every_min`` has passed, it saves the model, the consistency heads, the
optimiser, the schedule, the best model so far, the curve and the augmentation generator; a
rerun (or Slurm's requeue) of the cell restores them and replays the batch order, drawn from
generators of its own, up to that step, and ends with the weights of an uninterrupted run.

The budget scales with the labeled set (:func:`budget`): ``epochs`` passes over the cell's
labeled training images, at least ``min_steps`` steps, so that 100% of the labels is trained
to convergence as 10% is (a fixed step count, ``steps``, remains available). The model is
checked on the cell's validation images ``evals`` times; the checkpoint with the best validation
accuracy is the one that predicts on test. With ``patience`` P > 0 the run stops early once P
checks in a row have not beaten the best one (:func:`~sslbench.training.checks_since_best`);
the record says at which step it stopped (``last_step``) and whether the budget's end was
reached (``budget_reached``). The default, 8 of 20 checks (16 of 40 in the standard preset,
the same share), changed no chosen checkpoint in 9 paired flowers runs and 4 of 180 in the
published curves, by at most 3 validation images; because the cosine schedule keeps
improving the model until late in the budget, it saves only a few percent of the steps
there (benchmarks/RESULTS.md, "Early stopping"). It is a guard against budgets far longer
than needed, not a speed-up of converged ones. The record says whether the run looks converged
(:func:`convergence`): a run whose best check is at the very end and better than every
earlier check by more than the validation set's noise is flagged, and every report marks it.

Consistency tasks of the row (``rotation+uda``) add their loss on a batch of unlabeled images
at every step; a task that provides :meth:`~sslbench.task.PretextTask.consistency_batch` has
its inputs concatenated with the labeled batch in one forward pass (batch normalisation then
sees one batch, as in UDA's code).
"""

from __future__ import annotations

import copy
import math
import time
from itertools import islice

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.augment import standard_augment, to_float
from sslbench.protocol import EvalContext, EvaluationProtocol, ProtocolResult, Split, Work
from sslbench.task import ConsistencyContext
from sslbench.training import (accuracy, autocast, check_finite, global_sum, make_optimizer,
                               maybe_compile, predict, random_batches, random_states,
                               set_random_states, shard, step_batches, sync_buffers,
                               sync_gradients, to_device, warmup_cosine, checks_since_best)


class Classifier(nn.Module):
    """Backbone + linear layer: the model that fine-tuning trains."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x))


def budget(options: dict, n_train: int) -> int:
    """Fine-tuning steps for a cell with ``n_train`` labeled training images: a fixed
    ``steps`` if set, else ``epochs`` passes over them (at least ``min_steps``), so that 100%
    of the labels gets as many epochs as 10% does."""
    if int(options["steps"]) > 0:
        return int(options["steps"])
    batch = max(1, min(int(options["batch_size"]), n_train))
    return max(int(options["min_steps"]), -(-int(options["epochs"]) * n_train // batch))


class FineTune(EvaluationProtocol):
    name = "finetune"
    description = "train the whole network on the labeled subset (crop+flip), model chosen on val"
    trains_backbone = True
    defaults = {
        "epochs": 60,              # passes over the cell's labeled training images...
        "min_steps": 500,          # ...but at least this many steps
        "steps": 0,                # > 0: exactly this many steps instead
        "batch_size": 64,
        "lr": 0.05,                # SGD, Nesterov momentum 0.9, warm-up then cosine
        "weight_decay": 5e-4,
        "evals": 20,               # validation checks (model selection)
        "patience": 8,             # stop after this many checks without a better one (0: never)
        "unlabeled_batch_size": 128,   # unlabeled images per step for consistency tasks
    }
    ranges = {"epochs": Range(ge=0), "min_steps": Range(ge=1), "steps": Range(ge=0),
              "batch_size": Range(ge=1), "lr": Range(gt=0), "weight_decay": Range(ge=0),
              "evals": Range(ge=1), "patience": Range(ge=0), "unlabeled_batch_size": Range(ge=1)}
    presets = {"standard": {"epochs": 100, "min_steps": 2000, "batch_size": 128, "evals": 40,
                            "patience": 16, "unlabeled_batch_size": 448},
               # RotNet's supervised NIN: 200 epochs of 50,000 images drawn from the labeled
               # set, batch 128, lr 0.1, whatever the budget (78,125 steps), no early stop
               "rotnet-cifar10": {"steps": 78125, "batch_size": 128, "lr": 0.1, "evals": 40,
                                  "patience": 0}}
    # sweep settings of sslbench < 0.5 (``--set finetune_epochs=...`` says where they went)
    former_settings = {"finetune_epochs": "epochs", "finetune_min_steps": "min_steps",
                       "finetune_steps": "steps", "finetune_batch_size": "batch_size",
                       "finetune_lr": "lr", "finetune_evals": "evals",
                       "unlabeled_batch_size": "unlabeled_batch_size"}

    def summary(self) -> str:
        o = self.options
        budget = (f"{o['steps']} steps" if o["steps"] else
                  f"{o['epochs']} epochs of the labeled images, at least {o['min_steps']} steps")
        return (f"the whole network trained for {budget} (batch {o['batch_size']}, lr "
                f"{o['lr']:g}), the best of {o['evals']} validation checks kept")

    def check_options(self) -> None:
        o = self.options
        for key in ("epochs", "steps"):
            self.require(key, o[key] >= 0, ">= 0")
        self.require("patience", o["patience"] >= 0, ">= 0 (0: no early stopping)")
        for key in ("min_steps", "batch_size", "evals", "unlabeled_batch_size"):
            self.require(key, o[key] >= 1, ">= 1")
        self.require("lr", o["lr"] > 0, "> 0")
        self.require("weight_decay", o["weight_decay"] >= 0, ">= 0")

    def work(self, n_train: int, n_val: int, n_test: int) -> Work:
        """Its step budget of labeled batches, every validation check, the test split; with
        early stopping a run can end after ``patience + 1`` of its checks, no sooner."""
        o = self.options
        steps = budget(o, n_train)
        evals = min(int(o["evals"]), steps)
        batch = min(int(o["batch_size"]), n_train)
        patience = int(o["patience"])
        earliest = min(1.0, (patience + 1) / evals) if patience and n_val else 1.0
        return Work(train=steps * batch, predict=evals * n_val + n_test, steps=steps,
                    batch=batch, unlabeled_batch=int(o["unlabeled_batch_size"]),
                    earliest=earliest)

    @staticmethod
    def supervised_loss(logits, labels, tasks, contexts) -> torch.Tensor:
        """Cross-entropy, unless a consistency task redefines it (UDA's annealing)."""
        for task, cctx in zip(tasks, contexts):
            loss = task.supervised_loss(logits, labels, cctx)
            if loss is not None:
                return loss
        return F.cross_entropy(logits.float(), labels)

    def evaluate(self, ctx: EvalContext) -> ProtocolResult:
        o = self.options
        device, dtype = ctx.device, ctx.autocast_dtype
        model = to_device(Classifier(ctx.backbone, ctx.num_classes), device)
        net = maybe_compile(model.backbone, ctx.compile)
        heads = [to_device(h, device) if (h := t.build_head(model.backbone)) is not None else None
                 for t in ctx.consistency_tasks]
        trainable = [model] + [h for h in heads if h is not None]
        images, labels = ctx.labeled.images, ctx.labeled.labels
        steps = budget(o, len(labels))
        optimizer = make_optimizer(trainable, o["lr"], o["weight_decay"], device)
        schedule = warmup_cosine(optimizer, steps, max(1, steps // 20))
        gen = ctx.generator("finetune")        # augmentation and consistency views
        evals = min(int(o["evals"]), steps)
        checks = {math.ceil(steps * k / evals) for k in range(1, evals + 1)}
        batch_size = min(int(o["batch_size"]), len(labels))
        unlabeled = ctx.unlabeled
        # the batch order comes from generators of its own, so that a resumed run can replay
        # it from the seed (skipping the steps already taken) whatever gen drew meanwhile
        order = ctx.generator("finetune:order", images.index_device)
        unlabeled_orders = [ctx.generator(f"finetune:unlabeled:{i}", unlabeled.index_device)
                            for i in range(len(ctx.consistency_tasks))]
        best = {"val_accuracy": -1.0, "step": 0, "state": None}
        has_val = len(ctx.val) > 0
        curve: list[dict] = []
        start, seconds_before = 0, 0.0
        last_step, patience = 0, int(o["patience"])
        snapshot = ctx.resume.load() if ctx.resume is not None else None
        if snapshot is not None:
            model.load_state_dict(snapshot["model"])
            for head, state in zip(heads, snapshot["heads"]):
                if head is not None:
                    head.load_state_dict(state)
            optimizer.load_state_dict(snapshot["optimizer"])
            schedule.load_state_dict(snapshot["schedule"])
            set_random_states(snapshot["random"], gen)
            start, curve, best = snapshot["step"], snapshot["curve"], snapshot["best"]
            seconds_before = snapshot["seconds"]
            ctx.reporter.log(f"finetune: resuming after step {start} of {steps} "
                             f"from {ctx.resume.path}")
        # with several processes (torchrun), each takes its share of every global batch
        batches = images.batches(shard(islice(
            step_batches(len(labels), batch_size, steps, order, images.index_device),
            start, None)))
        # one endless stream of unlabeled batches per consistency task
        streams = [unlabeled.batches(shard(islice(random_batches(
                       len(unlabeled), task.unlabeled_batch_size(batch_size, o["unlabeled_batch_size"]),
                       unlabeled_order, unlabeled.index_device), start, None)))
                   for task, unlabeled_order in zip(ctx.consistency_tasks, unlabeled_orders)]
        loss_sum = torch.zeros((), device=device)
        metric_sums: dict[str, torch.Tensor] = {}
        since_check = 0
        started = time.perf_counter()
        with ctx.reporter.training(f"finetune {len(labels)} labels", evals) as bar:
            model.train()
            for h in heads:
                if h is not None:
                    h.train()
            for step, (idx, batch) in enumerate(batches, start=start + 1):
                last_step = step
                x = standard_augment(batch, gen)
                contexts = [ConsistencyContext(model.backbone, head, model.fc, step, steps,
                                               ctx.num_classes, gen) for head in heads]
                joined, separate = [], []
                for task, cctx, stream in zip(ctx.consistency_tasks, contexts, streams):
                    u = to_float(next(stream)[1])
                    extra = task.consistency_batch(cctx, u)
                    (separate.append((task, cctx, u)) if extra is None else joined.append(extra))
                with autocast(device, dtype):
                    inputs = torch.cat([x] + [j.inputs for j in joined]) if joined else x
                    features = net(inputs)
                    logits = model.fc(features[:len(x)])
                    loss = self.supervised_loss(logits, labels[idx], ctx.consistency_tasks,
                                                contexts)
                    offset = len(x)
                    for j in joined:
                        loss = loss + j.loss(features[offset:offset + len(j.inputs)])
                        offset += len(j.inputs)
                    for task, cctx, u in separate:
                        loss = loss + task.unlabeled_loss(cctx, u)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                sync_gradients(trainable)
                optimizer.step()
                schedule.step()
                loss_sum += loss.detach().float()
                for j in joined:
                    for key, value in j.metrics.items():
                        metric_sums[key] = metric_sums.get(key, 0) + value.detach().float()
                since_check += 1
                if step in checks:
                    world_loss = global_sum(torch.stack([loss_sum, torch.ones((), device=device)]))
                    mean_loss = (world_loss[0] / world_loss[1]).item() / since_check   # one sync
                    sync_buffers(trainable)       # every process: the first one's BN statistics
                    check_finite(mean_loss, f"fine-tuning loss at step {step}")
                    val_acc = None
                    if has_val:
                        model.eval()
                        val_acc = accuracy(predict(model, ctx.val.images, device, dtype),
                                           ctx.val.labels)
                        model.train()
                    point = {"step": step, "loss": mean_loss, "val_accuracy": val_acc}
                    point.update({k: float(v) / since_check for k, v in metric_sums.items()})
                    curve.append(point)
                    loss_sum.zero_()
                    metric_sums, since_check = {}, 0
                    if has_val and val_acc > best["val_accuracy"]:
                        best = {"val_accuracy": val_acc, "step": step,
                                "state": copy.deepcopy(model.state_dict())}
                    elapsed = time.perf_counter() - started
                    bar.epoch_done(len(curve), mean_loss,
                                   (step - start) * len(idx) / max(elapsed, 1e-9), val=val_acc)
                    if has_val and patience and checks_since_best(
                            [p["val_accuracy"] for p in curve]) >= patience:
                        break     # early stopping: the best model is kept below, as always
                    if ctx.resume is not None and step < steps and ctx.resume.due():
                        ctx.resume.save({
                            "step": step, "curve": curve, "best": best,
                            "model": model.state_dict(),
                            "heads": [h.state_dict() if h is not None else None for h in heads],
                            "optimizer": optimizer.state_dict(),
                            "schedule": schedule.state_dict(), "random": random_states(gen),
                            "seconds": seconds_before + elapsed})
        last_step = max(last_step, start)   # a snapshot taken at the last step runs no more
        if not has_val:
            # nothing to choose with: the whole budget, and its last step (the rule for
            # budgets too small to hold validation images, docs/evaluation.md)
            best = {"val_accuracy": None, "step": last_step, "state": model.state_dict()}
        model.load_state_dict(best["state"])
        check_finite_weights(model)            # the model whose predictions are recorded
        model.eval()

        def predict_split(split: Split) -> torch.Tensor:
            return predict(model, split.images, device, dtype)

        return ProtocolResult(predict_split, best["val_accuracy"],
                              {"chosen_step": best["step"],
                               "chosen": (f"step {best['step']}" if has_val else
                                          f"step {best['step']} (no validation image: the "
                                          "budget's last step)"),
                               "chosen_on": "validation" if has_val else "preset",
                               "steps": steps, "last_step": last_step,
                               "budget_reached": last_step >= steps,
                               "epochs": last_step * batch_size / len(labels),
                               **(convergence(curve, len(ctx.val), last_step < steps)
                                  if has_val else {"converged": None,
                                                   "chosen_at_last_check": True}),
                               "curve": curve,
                               "resumed_at_step": start or None,
                               "seconds": seconds_before + time.perf_counter() - started})


def convergence(curve: list[dict], n_val: int, stopped_early: bool = False) -> dict:
    """Whether a fine-tuning run looks converged, from its validation curve.

    A run that ``stopped_early`` (its patience ran out) converged by definition: validation
    accuracy had stopped improving.

    ``chosen_at_last_check``: the best check is the last one (recorded as it is).
    ``still_improving``: the best check is among the last ones (the last tenth of the checks,
    at least the last two) and beats every earlier check by more than one binomial standard
    error of the validation set: the curve was still rising when the budget ran out.
    ``converged`` is not ``still_improving``. A last check that is best only within noise is a
    plateau: with a cosine schedule the last checks are nearly the same model, and one of them
    is best by a few images as often as not."""
    accs = [p["val_accuracy"] for p in curve]
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))
    tail = max(2, len(accs) // 10)
    p = accs[best]
    se = math.sqrt(max(p * (1 - p), 1e-12) / max(1, n_val))
    earlier = accs[:len(accs) - tail]
    rising = (not stopped_early and best >= len(accs) - tail and bool(earlier)
              and p - max(earlier) > se)
    return {"converged": not rising, "chosen_at_last_check": best == len(accs) - 1,
            "still_improving": rising}


@sslbench.hookimpl
def sslbench_protocols():
    return [FineTune]


def check_finite_weights(model: torch.nn.Module) -> None:
    """A network with an infinite or NaN weight predicts nothing: fail the cell (its record
    says why) rather than record its chance-level accuracy as a result."""
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise FloatingPointError(f"fine-tuning left non-finite values in {name!r}")
