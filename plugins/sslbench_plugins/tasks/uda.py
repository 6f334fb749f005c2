"""Unsupervised Data Augmentation (Xie et al., NeurIPS 2020; arXiv 1904.12848): consistency
training.

UDA has no pretraining stage. While the model fine-tunes on the labeled subset, each step
draws ``ratio`` times as many unlabeled training images and adds

    weight * mean_i [ mask_i * KL( sharpen(p(y | x_i)) || p(y | x_i') ) ]

where x_i is a weakly augmented view (flip and crop) and x_i' a strongly augmented one
(RandAugment, then Cutout of half the side, then flip and crop), the clean prediction is a
fixed target (no gradient) sharpened with ``temperature``, and ``mask_i`` keeps the images
whose clean prediction's top probability exceeds ``threshold`` (on the unsharpened
probabilities). The mean runs over the whole unlabeled batch. Training-signal annealing
(``tsa``: linear, log, exp or none) removes from the supervised loss the labeled examples the
model already predicts with probability above eta_t = alpha_t (1 - 1/K) + 1/K, with
alpha_t = t/T, 1 - exp(-5 t/T) or exp(5 (t/T - 1)).

As in the authors' code (``image/main.py``), the labeled batch and both unlabeled views go
through the network in one forward pass, so batch normalisation sees one batch; the views are
made as in their ``image/data.py`` (flip, then a reflect-padded crop, on both views) and
``preprocess.py`` (the strong view: the augmentation policy, then Cutout of 16 px at 32 px).

Settings come as named ``recipe`` s, each option overridable on its own:

* ``usb`` (default): USB's ``config/classic_cv/uda/uda_cifar10_4000_0.yaml`` (ratio 7,
  temperature 0.4, threshold 0.8, no TSA, weight 1);
* ``uda-gpu``: the authors' ``image/scripts/run_cifar10_gpu.sh`` with ``main.py``'s defaults
  (ratio 5, no TSA, no sharpening, no confidence mask);
* ``uda-tpu``: their ``run_cifar10_tpu_32_core.sh`` (ratio 30, linear TSA, no sharpening,
  no mask).

The RandAugment variant is the authors' (``randaugment="uda"``, :mod:`sslbench.randaugment`);
``"cubuk"`` is Cubuk et al.'s. The mask rate (the share of unlabeled images that passed the
threshold) is averaged over each fine-tuning evaluation period and kept in the record's curve.

Its leaderboard row has fine-tuning numbers only. ``--tasks rotation+uda`` pretrains with
rotation and then fine-tunes with UDA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import sslbench
from sslbench.options import Range
from sslbench.augment import standard_augment
from sslbench.errors import SSLBenchError
from sslbench.randaugment import POLICIES, cutout, rand_augment
from sslbench.task import ConsistencyBatch, ConsistencyContext, PretextTask, PreviewRow

TSA = ("linear", "log", "exp", "none")
RECIPES = {
    "usb": {"ratio": 7, "temperature": 0.4, "threshold": 0.8, "tsa": "none", "weight": 1.0},
    "uda-gpu": {"ratio": 5, "temperature": 1.0, "threshold": 0.0, "tsa": "none", "weight": 1.0},
    "uda-tpu": {"ratio": 30, "temperature": 1.0, "threshold": 0.0, "tsa": "linear",
                "weight": 1.0},
}


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
    """(loss, mask): masked KL(sharpened clean || strong), averaged over the whole batch;
    the mask keeps images whose unsharpened top probability is above ``threshold``."""
    clean_logits = clean_logits.detach().float()
    target = sharpen(clean_logits, temperature)
    mask = (F.softmax(clean_logits, -1).amax(-1) > threshold).float()
    log_strong = F.log_softmax(strong_logits.float(), -1)
    kl = (target * (torch.log(target.clamp_min(1e-12)) - log_strong)).sum(-1)
    return (kl * mask).mean(), mask


class UDA(PretextTask):
    name = "uda"
    description = "consistency training on unlabeled images with RandAugment (Xie et al. 2019)"
    defaults = {"recipe": "usb", **RECIPES["usb"], "randaugment": "uda", "randaugment_ops": 2,
                "randaugment_magnitude": 10.0, "cutout": 0.5, "crop": 4 / 32}
    ranges = {"ratio": Range(ge=1), "temperature": Range(gt=0), "threshold": Range(ge=0, le=1),
              "weight": Range(ge=0), "randaugment_ops": Range(ge=0, le=14),
              "randaugment_magnitude": Range(ge=0, le=30), "cutout": Range(ge=0, le=1),
              "crop": Range(ge=0, lt=0.5)}
    pretrains = False
    consistency = True
    references = [
        {"paper": "Xie et al. 2020 (NeurIPS)", "dataset": "cifar10",
         "backbone": "wide_resnet28_2", "protocol": "finetune", "labels": 4000,
         "accuracy": 100 - 4.32, "source": "final version: error 4.32% (RandAugment)"},
        {"paper": "Xie et al. 2019, arXiv:1904.12848v1", "dataset": "cifar10",
         "backbone": "wide_resnet28_2", "protocol": "finetune", "labels": 4000,
         "accuracy": 100 - 5.27, "source": "v1 abstract: error 7.66% -> 5.27% (AutoAugment)"},
        {"paper": "Xie et al. 2019, arXiv:1904.12848v1", "dataset": "svhn",
         "backbone": "wide_resnet28_2", "protocol": "finetune", "labels": 1000,
         "accuracy": 100 - 2.46, "source": "v1 abstract: error 3.53% -> 2.46% (AutoAugment)"},
    ]

    def __init__(self, **options):
        recipe = str(options.get("recipe", self.defaults["recipe"]))
        if recipe not in RECIPES:
            raise SSLBenchError(f"uda.recipe must be one of {', '.join(RECIPES)}; got {recipe!r}")
        # the recipe's values, then whatever the user set explicitly
        super().__init__(**{**RECIPES[recipe], **options})
        if self.options["tsa"] not in TSA:
            raise SSLBenchError(f"uda.tsa must be one of {', '.join(TSA)}; "
                                f"got {self.options['tsa']!r}")
        if self.options["randaugment"] not in POLICIES:
            raise SSLBenchError(f"uda.randaugment must be one of {', '.join(POLICIES)}; "
                                f"got {self.options['randaugment']!r}")
        if float(self.options["temperature"]) <= 0:
            raise SSLBenchError("uda.temperature must be > 0")

    def build_head(self, backbone):
        return None

    def unlabeled_batch_size(self, labeled_batch_size: int, default: int) -> int:
        return int(self.options["ratio"]) * labeled_batch_size

    def supervised_loss(self, logits, labels, ctx: ConsistencyContext):
        if self.options["tsa"] == "none":
            return None
        eta = tsa_threshold(self.options["tsa"], ctx.step, ctx.total_steps, ctx.num_classes)
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
        with torch.no_grad():
            correct_p = F.softmax(logits.float(), -1).gather(1, labels[:, None]).squeeze(1)
            keep = (correct_p <= eta).float()
        return (ce * keep).sum() / keep.sum().clamp_min(1)

    def views(self, images: torch.Tensor, generator: torch.Generator,
              fill: torch.Tensor | float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """(weak, strong) views of a float batch: flip and crop; RandAugment, Cutout (painted
        with ``fill``: UDA paints the data set's mean colour), flip and crop."""
        o = self.options
        pad = int(round(float(o["crop"]) * images.shape[-1]))

        def weak(x: torch.Tensor) -> torch.Tensor:
            return standard_augment(x, generator, pad)

        strong = rand_augment(images, generator, int(o["randaugment_ops"]),
                              float(o["randaugment_magnitude"]), policy=str(o["randaugment"]))
        if float(o["cutout"]) > 0:
            strong = cutout(strong, float(o["cutout"]), generator, fill)
        return weak(images), weak(strong)

    def consistency_batch(self, ctx: ConsistencyContext, images: torch.Tensor) -> ConsistencyBatch:
        n = len(images)
        mean = getattr(ctx.backbone, "input_mean", None)
        clean, strong = self.views(images, ctx.generator,
                                   0.5 if mean is None else mean.reshape(-1))
        o = self.options

        def loss(features: torch.Tensor) -> torch.Tensor:
            logits = ctx.classifier(features)
            value, mask = consistency_loss(logits[:n], logits[n:], float(o["temperature"]),
                                           float(o["threshold"]))
            batch.metrics["mask_rate"] = mask.mean()
            return float(o["weight"]) * value

        batch = ConsistencyBatch(torch.cat([clean, strong]), loss)
        return batch

    def unlabeled_loss(self, ctx: ConsistencyContext, images: torch.Tensor) -> torch.Tensor:
        """The same loss with a forward pass of its own (for callers outside ``finetune``)."""
        batch = self.consistency_batch(ctx, images)
        return batch.loss(ctx.backbone(batch.inputs))

    def preview(self, images, generator):
        views = [self.views(images, generator) for _ in range(3)]
        return [PreviewRow([images[i], views[0][0][i]] + [v[1][i] for v in views],
                           ["image", "weak view: target p(y|x)"] + ["strong view: match it"] * 3)
                for i in range(len(images))]


@sslbench.hookimpl
def sslbench_tasks():
    return [UDA]
