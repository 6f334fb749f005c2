"""Counting visual primitives (Noroozi, Pirsiavash & Favaro, ICCV 2017).

The network maps an image to a non-negative "count" vector. The counts of the whole image,
downsampled by 2, must equal the sum of the counts of its four quadrant tiles (each at the
same size as the downsampled image), while the counts of another image must differ from that
sum by a margin:

    loss = |phi(D x) - sum_j phi(T_j x)|^2 + max(0, M - |phi(D y) - sum_j phi(T_j x)|^2)

The paper used M = 10 and a 1,000-dimensional count vector (ReLU outputs). Here phi is the
backbone's pooled features followed by the task's head (linear + ReLU); ``y`` is another image
of the same batch (the batch rolled by one). There is no classification, so no logits or
targets are returned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.task import PretextTask, TaskStep


def quadrants(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 4, C, H/2, W/2): the 2x2 tiles of each image."""
    n, c, h, w = images.shape
    h2, w2 = h // 2, w // 2
    x = images[:, :, :2 * h2, :2 * w2].reshape(n, c, 2, h2, 2, w2)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n, 4, c, h2, w2)


class Counting(PretextTask):
    name = "counting"
    description = "counts of the whole image = sum of counts of its tiles (Noroozi et al. 2017)"
    defaults = {"dim": 1000, "margin": 10.0}
    ranges = {"dim": Range(ge=1), "margin": Range(ge=0)}

    def build_head(self, backbone: nn.Module) -> nn.Module:
        return nn.Sequential(nn.Linear(backbone.feature_dim, int(self.options["dim"])), nn.ReLU())

    def counts(self, backbone, head, x: torch.Tensor) -> torch.Tensor:
        size = max(x.shape[-1], backbone.min_input_size)
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return head(backbone(x.contiguous(memory_format=torch.channels_last))).float()

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        n = len(images)
        tiles = quadrants(images)                                       # (N, 4, C, h, w)
        small = F.interpolate(images, size=tiles.shape[-2:], mode="bilinear",
                              antialias=True, align_corners=False)      # D x
        both = torch.cat([small, tiles.flatten(0, 1)])                  # one backbone pass
        phi = self.counts(backbone, head, both)
        whole, parts = phi[:n], phi[n:].view(n, 4, -1).sum(1)
        other = whole.roll(1, dims=0)                                   # D y, another image
        match = (whole - parts).pow(2).sum(1)
        contrast = F.relu(float(self.options["margin"]) - (other - parts).pow(2).sum(1))
        return TaskStep((match + contrast).mean())


@sslbench.hookimpl
def sslbench_tasks():
    return [Counting]
