"""Relative patch location (Doersch, Gupta & Efros, ICCV 2015): where did this patch sit?

From a 3x3 grid of patches separated by gaps, take the centre patch and one of its 8
neighbours, each shifted by a random jitter; both go through the shared backbone and a head fed
with the two features predicts which of the 8 positions the neighbour came from. The paper
used 96 px patches, 48 px gaps and up to 7 px of jitter, a layout 3*96 + 2*48 + 2*7 = 398 px
wide; here the three are fractions of the image side in the same proportions (``patch``
96/398, ``gap`` 48/398, ``jitter`` 7/398), so the layout fills the image at any resolution
(rounded to whole pixels; where rounding overflows, the gap shrinks first).

Against the chromatic-aberration shortcut the paper found, colour dropping as in the paper's
code (``color_drop``, on by default): each patch keeps one random colour channel; the other
two are replaced by Gaussian noise with 1/100 of the kept channel's standard deviation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.augment import constant, crop_patches, resize_to
from sslbench.task import PretextTask, PreviewRow, TaskStep

# grid positions (row, col) of the 8 neighbours, label = index in this list
NEIGHBOURS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]


def patch_geometry(size: int, patch: float, gap: float, jitter: float) -> tuple[int, int, int]:
    """(patch side, gap, jitter) in pixels for an image of ``size`` px, shrunk if needed so
    that three patches, two gaps and the jitter on both sides fit."""
    p, g, j = max(1, round(patch * size)), round(gap * size), round(jitter * size)
    while 3 * p + 2 * g + 2 * j > size:
        if g > 0:
            g -= 1
        elif j > 0:
            j -= 1
        else:
            p -= 1
    return p, g, j


class RelativePatch(PretextTask):
    name = "relpatch"
    description = "predict which of 8 neighbours a patch is, relative to the centre (Doersch et al. 2015)"
    defaults = {"patch": 96 / 398, "gap": 48 / 398, "jitter": 7 / 398, "color_drop": True,
                "hidden": 512}

    def build_head(self, backbone: nn.Module) -> nn.Module:
        d, h = backbone.feature_dim, int(self.options["hidden"])
        return nn.Sequential(nn.Flatten(), nn.Linear(2 * d, h), nn.ReLU(inplace=True),
                             nn.Linear(h, len(NEIGHBOURS)))

    def make_pairs(self, images: torch.Tensor, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pairs (N, 2, C, p, p) = centre then neighbour, label (N,), top (N, 2),
        left (N, 2)): the patches' top-left corners in the image."""
        n, _, h, _ = images.shape
        p, g, j = patch_geometry(h, self.options["patch"], self.options["gap"],
                                 self.options["jitter"])
        dev = images.device
        origin = (h - (3 * p + 2 * g)) // 2
        label = torch.randint(0, len(NEIGHBOURS), (n,), device=dev, generator=generator)
        grid = constant(tuple(NEIGHBOURS), dev, torch.long)[label]                    # (N, 2) row, col
        rows = torch.stack([torch.ones_like(label), grid[:, 0]], 1)
        cols = torch.stack([torch.ones_like(label), grid[:, 1]], 1)
        shift = lambda: torch.randint(-j, j + 1, (n, 2), device=dev, generator=generator)  # noqa: E731
        top = origin + rows * (p + g) + shift()
        left = origin + cols * (p + g) + shift()
        return crop_patches(images, top, left, p), label, top, left

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        pairs, label, _, _ = self.make_pairs(images, generator)
        if self.options["color_drop"]:
            pairs = drop_colours(pairs, generator)
        n = len(pairs)
        pairs = resize_to(pairs, max(pairs.shape[-1], backbone.min_input_size))
        feats = backbone(pairs.flatten(0, 1).contiguous(memory_format=torch.channels_last))
        logits = head(feats.view(n, 2, -1))
        return TaskStep(F.cross_entropy(logits.float(), label), logits, label)

    def preview(self, images, generator):
        pairs, label, _, _ = self.make_pairs(images, generator)
        if self.options["color_drop"]:
            pairs = drop_colours(pairs, generator)
        names = ["up-left", "up", "up-right", "left", "right", "down-left", "down", "down-right"]
        return [PreviewRow([images[n], pairs[n, 0], pairs[n, 1]],
                           ["image", "centre", f"neighbour: {names[int(label[n])]} "
                            f"(class {int(label[n])})"]) for n in range(len(images))]


def drop_colours(patches: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep one random channel of each patch; replace the other two by Gaussian noise with
    1/100 of the kept channel's standard deviation (around the kept channel's mean)."""
    shape = patches.shape[:-3]                                            # (N, K)
    keep = torch.randint(0, 3, shape, device=patches.device, generator=generator)
    kept = patches.gather(-3, keep[..., None, None, None].expand(
        *shape, 1, *patches.shape[-2:]))                                   # (N, K, 1, p, p)
    std = kept.flatten(-3).std(-1)[..., None, None, None] / 100
    noise = torch.randn(patches.shape, device=patches.device, generator=generator)
    noisy = kept.flatten(-3).mean(-1)[..., None, None, None] + noise * std
    channel = torch.arange(3, device=patches.device).view(1, 1, 3, 1, 1)
    return torch.where(channel == keep[..., None, None, None], patches, noisy)


@sslbench.hookimpl
def sslbench_tasks():
    return [RelativePatch]
