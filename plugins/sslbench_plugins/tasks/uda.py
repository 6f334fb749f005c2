"""Unsupervised Data Augmentation (Xie et al., NeurIPS 2020; arXiv 2019): consistency training.

UDA has no pretraining stage. While the model fine-tunes on the labeled subset, each step
draws ``ratio`` times as many unlabeled training images and adds

    weight * mean_i [ mask_i * KL( sharpen(p(y | x_i)) || p(y | RandAugment(x_i)) ) ]

where the clean prediction is a fixed target (no gradient) sharpened with ``temperature``
(0.4), ``mask_i`` drops images whose clean prediction's top probability is below
``threshold`` (0.8), and RandAugment draws its operations and magnitudes per image.
Training-signal annealing (``tsa``: linear, log, exp or none) removes from the supervised loss
the labeled examples the model already predicts with probability above
eta_t = alpha_t (1 - 1/K) + 1/K, with alpha_t = t/T, 1 - exp(-5 t/T) or exp(5 (t/T - 1)).
Defaults follow the paper's CIFAR-10 settings (ratio 7, weight 1, temperature 0.4, threshold
0.8); TSA defaults to the linear schedule.

Its leaderboard row has fine-tuning numbers only. ``--tasks rotation+uda`` pretrains with
rotation and then fine-tunes with UDA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import sslbench
from sslbench.errors import SSLBenchError
from sslbench.randaugment import rand_augment
from sslbench.task import ConsistencyContext, PretextTask, PreviewRow

TSA = ("linear", "log", "exp", "none")


def tsa_threshold(schedule: str, step: int, total: int, num_classes: int) -> float:
    """eta_t: labeled examples predicted above this probability leave the supervised loss."""
    t = min(1.0, step / max(1, total))
    alpha = {"linear": t, "log": 1 - math.exp(-5 * t), "exp": math.exp(5 * (t - 1)),
             "none": 1.0}[schedule]
    return alpha * (1 - 1 / num_classes) + 1 / num_classes


def sharpen(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.softmax(logits / temperature, dim=-1)


def consistency_loss(clean_logits: torch.Tensor, strong_logits: torch.Tensor,
                     temperature: float, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mask): masked KL(sharpened clean || strong), averaged over the whole batch."""
    clean_logits = clean_logits.detach().float()
    target = sharpen(clean_logits, temperature)
    mask = (F.softmax(clean_logits, -1).amax(-1) >= threshold).float()
    log_strong = F.log_softmax(strong_logits.float(), -1)
    kl = (target * (torch.log(target.clamp_min(1e-12)) - log_strong)).sum(-1)
    return (kl * mask).mean(), mask


class UDA(PretextTask):
    name = "uda"
    description = "consistency training on unlabeled images with RandAugment (Xie et al. 2019)"
    defaults = {"ratio": 7, "weight": 1.0, "temperature": 0.4, "threshold": 0.8,
                "tsa": "linear", "randaugment_ops": 2, "randaugment_magnitude": 10.0}
    pretrains = False
    consistency = True
    references = [
        {"paper": "Xie et al. 2019, arXiv:1904.12848v1", "dataset": "cifar10",
         "backbone": "wide_resnet28_2", "protocol": "finetune", "labels": 4000,
         "accuracy": 100 - 5.27, "source": "abstract: error 7.66% -> 5.27%"},
        {"paper": "Xie et al. 2019, arXiv:1904.12848v1", "dataset": "svhn",
         "backbone": "wide_resnet28_2", "protocol": "finetune", "labels": 1000,
         "accuracy": 100 - 2.46, "source": "abstract: error 3.53% -> 2.46%"},
    ]

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["tsa"] not in TSA:
            raise SSLBenchError(f"uda.tsa must be one of {', '.join(TSA)}; "
                                f"got {self.options['tsa']!r}")

    def build_head(self, backbone):
        return None

    def unlabeled_batch_size(self, labeled_batch_size: int, default: int) -> int:
        return int(self.options["ratio"]) * labeled_batch_size

    def supervised_loss(self, logits, labels, ctx: ConsistencyContext):
        eta = tsa_threshold(self.options["tsa"], ctx.step, ctx.total_steps, ctx.num_classes)
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
        with torch.no_grad():
            correct_p = F.softmax(logits.float(), -1).gather(1, labels[:, None]).squeeze(1)
            keep = (correct_p <= eta).float()
        return (ce * keep).sum() / keep.sum().clamp_min(1)

    def unlabeled_loss(self, ctx: ConsistencyContext, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            clean = ctx.classifier(ctx.backbone(images))
        strong = rand_augment(images, ctx.generator, int(self.options["randaugment_ops"]),
                              float(self.options["randaugment_magnitude"]))
        loss, _ = consistency_loss(clean, ctx.classifier(ctx.backbone(strong)),
                                   float(self.options["temperature"]),
                                   float(self.options["threshold"]))
        return float(self.options["weight"]) * loss

    def preview(self, images, generator):
        ops, mag = int(self.options["randaugment_ops"]), float(self.options["randaugment_magnitude"])
        strong = [rand_augment(images, generator, ops, mag) for _ in range(3)]
        return [PreviewRow([images[i]] + [s[i] for s in strong],
                           ["clean: target p(y|x), sharpened"] + ["RandAugment: match it"] * 3)
                for i in range(len(images))]


@sslbench.hookimpl
def sslbench_tasks():
    return [UDA]
