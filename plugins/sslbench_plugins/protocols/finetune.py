"""``finetune``: the whole network, initialised from the checkpoint, trained on the labeled
subset with the standard small-image augmentation (random crop with padding, horizontal flip),
applied on the device to whole batches.

The schedule is a fixed number of steps (``finetune_steps``) whatever the label fraction, so
that 1% of the labels is not also 100 times less training. The model is checked on validation
``finetune_evals`` times; the checkpoint with the best validation accuracy is the one that
predicts on test. Consistency tasks of the row (``rotation+uda``) add their loss on a batch of
unlabeled images at every step.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.augment import standard_augment, to_float
from sslbench.protocol import EvalContext, EvaluationProtocol, ProtocolResult, Split
from sslbench.task import ConsistencyContext
from sslbench.training import (accuracy, autocast, check_finite, make_optimizer, maybe_compile,
                               predict, random_batches, step_batches, to_device, warmup_cosine)


class Classifier(nn.Module):
    """Backbone + linear layer: the model that fine-tuning trains."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x))


class FineTune(EvaluationProtocol):
    name = "finetune"
    description = "train the whole network on the labeled subset (crop+flip), model chosen on val"
    trains_backbone = True

    @staticmethod
    def supervised_loss(logits, labels, tasks, contexts) -> torch.Tensor:
        """Cross-entropy, unless a consistency task redefines it (UDA's annealing)."""
        for task, cctx in zip(tasks, contexts):
            loss = task.supervised_loss(logits, labels, cctx)
            if loss is not None:
                return loss
        return F.cross_entropy(logits.float(), labels)

    def evaluate(self, ctx: EvalContext) -> ProtocolResult:
        s = ctx.settings
        device, dtype = ctx.device, ctx.autocast_dtype
        model = to_device(Classifier(ctx.backbone, ctx.num_classes), device)
        net = maybe_compile(model, ctx.compile)
        heads = [to_device(h, device) if (h := t.build_head(model.backbone)) is not None else None
                 for t in ctx.consistency_tasks]
        trainable = [model] + [h for h in heads if h is not None]
        steps = int(s["finetune_steps"])
        optimizer = make_optimizer(trainable, s["finetune_lr"], s["weight_decay"], device)
        schedule = warmup_cosine(optimizer, steps, max(1, steps // 20))
        gen = ctx.generator("finetune")
        eval_every = max(1, steps // int(s["finetune_evals"]))
        images, labels = ctx.labeled.images, ctx.labeled.labels
        batch_size = min(int(s["finetune_batch_size"]), len(labels))
        batches = images.batches(step_batches(len(labels), batch_size, steps,
                                              images.order_generator(gen), images.index_device))
        # one endless stream of unlabeled batches per consistency task
        unlabeled = ctx.unlabeled
        streams = [unlabeled.batches(random_batches(
                       len(unlabeled), task.unlabeled_batch_size(batch_size, s["unlabeled_batch_size"]),
                       unlabeled.order_generator(gen), unlabeled.index_device))
                   for task in ctx.consistency_tasks]
        best = {"val_accuracy": -1.0, "step": 0, "state": None}
        curve = []
        loss_sum = torch.zeros((), device=device)
        started = time.perf_counter()
        with ctx.reporter.training(f"finetune {len(labels)} labels", s["finetune_evals"]) as bar:
            model.train()
            for h in heads:
                if h is not None:
                    h.train()
            for step, (idx, batch) in enumerate(batches, start=1):
                x = standard_augment(batch, gen)
                with autocast(device, dtype):
                    logits = net(x)
                    contexts = [ConsistencyContext(model.backbone, head, model.fc, step, steps,
                                                   ctx.num_classes, gen) for head in heads]
                    loss = self.supervised_loss(logits, labels[idx], ctx.consistency_tasks,
                                                contexts)
                    for task, cctx, stream in zip(ctx.consistency_tasks, contexts, streams):
                        _, u = next(stream)
                        loss = loss + task.unlabeled_loss(cctx, to_float(u))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.detach().float()
                if step % eval_every == 0 or step == steps:
                    mean_loss = loss_sum.item() / eval_every           # one sync per period
                    check_finite(mean_loss, f"fine-tuning loss at step {step}")
                    loss_sum.zero_()
                    model.eval()
                    val_acc = accuracy(predict(model, ctx.val.images, device, dtype),
                                       ctx.val.labels)
                    model.train()
                    curve.append({"step": step, "loss": mean_loss, "val_accuracy": val_acc})
                    if val_acc > best["val_accuracy"]:
                        best = {"val_accuracy": val_acc, "step": step,
                                "state": copy.deepcopy(model.state_dict())}
                    elapsed = time.perf_counter() - started
                    bar.epoch_done(len(curve), mean_loss,
                                   step * len(idx) / max(elapsed, 1e-9), val=val_acc)
        model.load_state_dict(best["state"])
        model.eval()

        def predict_split(split: Split) -> torch.Tensor:
            return predict(model, split.images, device, dtype)

        return ProtocolResult(predict_split, best["val_accuracy"],
                              {"chosen_step": best["step"], "steps": steps, "curve": curve,
                               "seconds": time.perf_counter() - started})


@sslbench.hookimpl
def sslbench_protocols():
    return [FineTune]
