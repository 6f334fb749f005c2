"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): predict the rotation applied to an image.

Every image of a batch is fed at 0, 90, 180 and 270 degrees in the same batch (the paper found
feeding all four rotations together better than sampling one), and a linear head on the
backbone's pooled features predicts which of the four it sees. Before rotating, each image is
randomly cropped and flipped as in the authors' CIFAR code (``dataloader.py``:
``RandomCrop(32, padding=4)`` with black padding, then ``RandomHorizontalFlip``); ``crop`` is
the padding as a share of the side (4/32). The rotations are ``rot90`` on the whole batch
tensor, on the device.

Shortcut control: the trained network is shown held-out images made rotation-symmetric (the
mean of their four rotations), whose four rotated copies are identical; it must be at chance
(25%), or the label leaks through something other than the image content.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.augment import random_crop, random_flip
from sslbench.task import ConsistencyBatch, PretextTask, PreviewRow, ShortcutControl, TaskStep


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, H) -> (4N, C, H, H) holding the batch rotated by 0, 90, 180 and 270 degrees
    (counter-clockwise), and the targets 0, 1, 2, 3 (k quarter turns) for each copy."""
    if images.shape[-1] != images.shape[-2]:
        raise ValueError("rotation needs square images")
    n = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=images.device).repeat_interleave(n)
    return rotated.contiguous(memory_format=torch.channels_last), targets


def symmetrise(images: torch.Tensor) -> torch.Tensor:
    """The mean of an image's four rotations: invariant under rotation by 90 degrees."""
    return sum(torch.rot90(images, k, dims=(2, 3)) for k in range(4)) / 4


class Rotation(PretextTask):
    name = "rotation"
    description = "RotNet: predict the rotation (0/90/180/270°) of each image (Gidaris et al. 2018)"
    defaults = {"crop": 4 / 32, "flip": True, "symmetrise": False}
    ranges = {"crop": Range(ge=0, lt=0.5)}        # of the side, padded and cropped back
    pretrains = True
    consistency = True   # usable as an auxiliary loss while fine-tuning (S4L-style)
    references = [
        {"paper": "Gidaris et al. 2018 (ICLR), RotNet", "dataset": "cifar10",
         "backbone": "NIN, 4 conv blocks", "protocol": "non-linear classifier on block 2",
         "labels": 50000, "accuracy": 89.06, "source": "Table 1 (RotNet with 4 conv. blocks, "
                                                        "ConvB2)"},
        {"paper": "Kolesnikov et al. 2019 (CVPR)", "dataset": "imagenet",
         "backbone": "the paper's best architecture for the task", "protocol": "linear",
         "labels": 1281167, "accuracy": 55.4, "source": "Table 2 (top-1, ours)"},
    ]

    def build_head(self, backbone: nn.Module) -> nn.Module:
        return nn.Linear(backbone.feature_dim, 4)

    def inputs(self, images: torch.Tensor, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The four rotated copies of the (cropped, flipped) batch and their targets."""
        if self.options["symmetrise"]:
            images = symmetrise(images)
        pad = int(round(float(self.options["crop"]) * images.shape[-1]))
        if pad > 0:
            images = random_crop(images, pad, generator, mode="constant")
        if self.options["flip"]:
            images = random_flip(images, generator)
        return rotate_batch(images)

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        inputs, targets = self.inputs(images, generator)
        logits = head(backbone(inputs))
        return TaskStep(F.cross_entropy(logits.float(), targets), logits, targets)

    def consistency_batch(self, ctx, images):
        inputs, targets = self.inputs(images, ctx.generator)
        return ConsistencyBatch(inputs, lambda features: F.cross_entropy(
            ctx.head(features).float(), targets))

    def control(self) -> ShortcutControl:
        variant = Rotation(**{**self.options, "symmetrise": True, "crop": 0.0, "flip": False})
        return ShortcutControl(
            "symmetric input", "the trained network on rotation-symmetric held-out images "
            "(their four rotations are identical)", variant, retrain=False)

    def preview(self, images, generator):
        rotated, targets = self.inputs(images, generator)
        n = len(images)
        return [PreviewRow([rotated[k * n + i] for k in range(4)],
                           [f"{90 * k}° → class {k}" for k in range(4)]) for i in range(n)]


@sslbench.hookimpl
def sslbench_tasks():
    return [Rotation]
