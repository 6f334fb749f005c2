"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): predict the rotation applied to an image.

Every image of a batch is fed at 0, 90, 180 and 270 degrees in the same batch (the paper found
feeding all four rotations together better than sampling one), and a linear head on the
backbone's pooled features predicts which of the four it sees. The rotations are ``rot90`` on
the whole batch tensor, on the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.augment import random_flip
from sslbench.task import PretextTask, PreviewRow, TaskStep


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, H) -> (4N, C, H, H) holding the batch rotated by 0, 90, 180 and 270 degrees
    (counter-clockwise), and the targets 0, 1, 2, 3 (k quarter turns) for each copy."""
    if images.shape[-1] != images.shape[-2]:
        raise ValueError("rotation needs square images")
    n = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=images.device).repeat_interleave(n)
    return rotated.contiguous(memory_format=torch.channels_last), targets


class Rotation(PretextTask):
    name = "rotation"
    description = "RotNet: predict the rotation (0/90/180/270°) of each image (Gidaris et al. 2018)"
    defaults = {"flip": True}  # random horizontal flip of the source image, as in the paper's code
    pretrains = True
    consistency = True   # usable as an auxiliary loss while fine-tuning (S4L-style)

    def build_head(self, backbone: nn.Module) -> nn.Module:
        return nn.Linear(backbone.feature_dim, 4)

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        if self.options["flip"]:
            images = random_flip(images, generator)
        inputs, targets = rotate_batch(images)
        logits = head(backbone(inputs))
        return TaskStep(F.cross_entropy(logits.float(), targets), logits, targets)

    def preview(self, images, generator):
        rotated, targets = rotate_batch(images)
        n = len(images)
        return [PreviewRow([rotated[k * n + i] for k in range(4)],
                           [f"{90 * k}° → class {k}" for k in range(4)]) for i in range(n)]


@sslbench.hookimpl
def sslbench_tasks():
    return [Rotation]
