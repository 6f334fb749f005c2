"""BYOL (Grill et al., "Bootstrap your own latent", NeurIPS 2020) as an sslbench pretext task.

An online network (backbone, projector, predictor) learns to predict, from one augmented view
of an image, the projection a *target* network makes of another view. The target is not
trained by gradient: after every optimiser step its weights move towards the online
network's, ``target = tau * target + (1 - tau) * online``, with tau rising from 0.996 to 1 on
a cosine over training. That update is :meth:`BYOL.after_step`, the hook sslbench calls after
each pretraining step; BYOL's recipe (LARS, learning rate 0.2 x batch / 256, weight decay
1.5e-6, warm-up) is its :meth:`BYOL.schedule`.

Faithful to the paper and ``byol/`` of google-deepmind/deepmind-research: the projector and
predictor are Linear-BN-ReLU-Linear MLPs (4096 hidden, 256 out); the loss is
``2 - 2 cos(prediction, target projection)`` in both directions (view 1 -> view 2 and back),
with the target's outputs detached; the target network starts as a copy of the online one
and runs in training mode (batch statistics), as in the authors' code; the views are those
of ``views.py``. What differs, because sslbench pretrains small networks briefly on a CPU: the
number of epochs is the sweep's (the paper trains 300 or 1,000), the batch is the sweep's
(the paper: 4,096), and the warm-up is sslbench's default, a tenth of training and at most
five epochs (the paper: 10 epochs of 300 or 1,000).

Pretext accuracy, for sslbench's held-out check: within each batch, whether an image's
online prediction of view 1 is closer (cosine) to its own view 2's target projection than
to any other image's; chance is one over the batch size.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.task import PretextTask, PretrainSchedule, PreviewRow, TaskStep

from .views import view


def mlp(dim_in: int, hidden: int, out: int) -> nn.Sequential:
    """BYOL's projector and predictor: Linear, BatchNorm, ReLU, Linear."""
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.BatchNorm1d(hidden),
                         nn.ReLU(inplace=True), nn.Linear(hidden, out))


class BYOLHead(nn.Module):
    """Everything BYOL adds to the backbone: the online projector and predictor, and the
    target network (a backbone and a projector) that only :func:`ema_update` changes."""

    def __init__(self, backbone: nn.Module, hidden: int, out: int) -> None:
        super().__init__()
        self.projector = mlp(backbone.feature_dim, hidden, out)
        self.predictor = mlp(out, hidden, out)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)

    def target_parameters(self):
        yield from self.target_backbone.parameters()
        yield from self.target_projector.parameters()

    def target(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.target_projector(self.target_backbone(x))


def target_decay(step: int, total_steps: int, base: float) -> float:
    """tau at ``step``: ``1 - (1 - base) * (cos(pi * step / total) + 1) / 2`` (the authors'
    ``target_ema`` schedule): ``base`` at the start, 1 at the end."""
    progress = min(step, total_steps) / max(1, total_steps)
    return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target = tau * target + (1 - tau) * online``, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(tau).add_(o.detach(), alpha=1 - tau)


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos``: the squared distance of the two after L2 normalisation."""
    return 2 - 2 * F.cosine_similarity(prediction, target, dim=-1)


class BYOL(PretextTask):
    name = "byol"
    description = "BYOL: predict a momentum teacher's projection of another view (example plugin)"
    defaults = {"hidden": 4096, "out": 256, "base_ema": 0.996, "base_lr": 0.2,
                "weight_decay": 1.5e-6}
    ranges = {"hidden": Range(ge=1), "out": Range(ge=1), "base_ema": Range(ge=0, le=1),
              "base_lr": Range(gt=0), "weight_decay": Range(ge=0)}

    def schedule(self) -> PretrainSchedule:
        """LARS at 0.2 x batch / 256 with weight decay 1.5e-6 (the paper's); the epochs, the
        batch and the warm-up are the sweep's."""
        return PretrainSchedule(optimizer="lars", lr_per_256=self.options["base_lr"],
                                weight_decay=self.options["weight_decay"])

    def build_head(self, backbone: nn.Module) -> BYOLHead:
        return BYOLHead(backbone, self.options["hidden"], self.options["out"])

    def pretext_loss(self, backbone: nn.Module, head: BYOLHead, images: torch.Tensor,
                     generator: torch.Generator) -> TaskStep:
        v1, v2 = view(images, generator, 0), view(images, generator, 1)
        both = torch.cat([v1, v2])
        online = head.predictor(head.projector(backbone(both)))
        target = head.target(both)
        n = len(images)
        p1, p2 = online[:n], online[n:]
        z1, z2 = target[:n], target[n:]
        loss = (regression_loss(p1, z2) + regression_loss(p2, z1)).mean()
        # which image's other view is closest: the held-out "pretext accuracy"
        logits = F.normalize(p1.detach().float(), dim=1) @ F.normalize(z2.float(), dim=1).T
        return TaskStep(loss, logits, torch.arange(n, device=images.device))

    def after_step(self, backbone: nn.Module, head: BYOLHead, step: int,
                   total_steps: int) -> None:
        tau = target_decay(step, total_steps, self.options["base_ema"])
        ema_update(head.target_backbone, backbone, tau)
        ema_update(head.target_projector, head.projector, tau)

    def preview(self, images: torch.Tensor, generator: torch.Generator) -> list[PreviewRow]:
        v1, v2 = view(images, generator, 0), view(images, generator, 1)
        return [PreviewRow([images[i], v1[i], v2[i]], ["image", "view 1", "view 2"])
                for i in range(len(images))]


@sslbench.hookimpl
def sslbench_tasks():
    return [BYOL]
