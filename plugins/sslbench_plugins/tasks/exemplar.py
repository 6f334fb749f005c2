"""Exemplar CNN (Dosovitskiy et al., NIPS 2014; TPAMI 2016): every image is a class.

``num_exemplars`` images (default 1,000, or the whole pool if smaller; the paper used up to
32,000 STL-10 patches) are drawn from the unlabeled pool with the run's seed; each is a
surrogate class of its own, and the network learns to classify heavily transformed views of
them. Each batch holds ``views`` independent views of every image drawn. The transformations
are those the paper lists, each drawn independently per view, all batched on the device:

* translation by up to 0.2 of the image side, vertically and horizontally;
* scaling by a factor in [0.7, 1.4];
* rotation by up to 20 degrees;
* contrast 1: multiply the projection of each pixel onto the principal components of all
  pixels by a factor in [0.5, 2] per component (same for all pixels of a view);
* contrast 2: raise saturation and value (HSV) to a power in [0.25, 4], multiply them by a
  factor in [0.7, 1.4] and add a value in [-0.1, 0.1];
* colour: add a value in [-0.1, 0.1] to the hue.

An epoch holds as many views as the pool has images (``fill_epoch``): the surrogate images
are repeated, so that the task gets the same image budget per epoch as the others whatever
``num_exemplars`` is. The pretext accuracy reported for a checkpoint is measured on fresh views
of every surrogate image (its classes are its training images: there are no held-out ones).

Departures (docs/tasks.md says what each costs): whole images at the run's resolution stand
in for the paper's 32 px patches sampled from regions of large gradient in 96 px STL-10
images; views are generated on the fly at every step instead of a fixed set of sampled
patches per class; geometric transforms sample outside the image with reflection (the paper
cropped from larger images); the default of 1,000 surrogate classes is at the low end of what
the paper tries (it varies the number of classes and uses up to 32,000), because with all
3,000 images of the flowers pool a small network learns next to nothing in 15 epochs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.task import PretextTask, PreviewRow, TaskStep


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] to HSV in [0, 1]."""
    r, g, b = x.unbind(1)
    mx, _ = x.max(1)
    mn, _ = x.min(1)
    delta = mx - mn
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(mx == r, ((g - b) / safe) % 6,
                    torch.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    s = torch.where(mx > 0, delta / torch.where(mx > 0, mx, torch.ones_like(mx)),
                    torch.zeros_like(mx))
    return torch.stack([h % 1.0, s, mx], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) HSV in [0, 1] to RGB in [0, 1]."""
    h, s, v = x.unbind(1)
    k = lambda n: (n + h * 6) % 6  # noqa: E731
    f = lambda n: v - v * s * torch.clamp(torch.minimum(k(n), 4 - k(n)), 0, 1)  # noqa: E731
    return torch.stack([f(5), f(3), f(1)], 1)


def uniform(n: int, low: float, high: float, device, generator, *shape) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, *shape, device=device, generator=generator)


class Exemplar(PretextTask):
    name = "exemplar"
    description = "classify transformed views of N surrogate images, one class each (Dosovitskiy et al. 2014)"
    defaults = {"num_exemplars": 1000, "fill_epoch": True, "views": 2, "translate": 0.2,
                "scale": [0.7, 1.4],
                "rotate": 20.0, "pc_factor": [0.5, 2.0], "sv_power": [0.25, 4.0],
                "sv_factor": [0.7, 1.4], "sv_add": [-0.1, 0.1], "hue_add": [-0.1, 0.1]}
    ranges = {"num_exemplars": Range(ge=1), "views": Range(ge=1), "translate": Range(ge=0, le=1),
              "scale": Range(gt=0), "rotate": Range(ge=0, le=180), "pc_factor": Range(gt=0),
              "sv_power": Range(gt=0), "sv_factor": Range(gt=0), "sv_add": Range(ge=-1, le=1),
              "hue_add": Range(ge=-1, le=1)}
    uses_index = True
    references = [
        {"paper": "Dosovitskiy et al. 2014 (NIPS), Exemplar-CNN", "dataset": "stl10",
         "backbone": "64c5-128c5-256c5-512f", "protocol": "linear SVM on pooled features",
         "labels": 1000, "accuracy": 72.8, "source": "Table 1 (STL-10, 1,000 labels a fold)"},
        {"paper": "Kolesnikov et al. 2019 (CVPR)", "dataset": "imagenet",
         "backbone": "the paper's best architecture for the task", "protocol": "linear",
         "labels": 1281167, "accuracy": 46.0, "source": "Table 2 (top-1, ours)"},
    ]

    def prepare(self, images, generator):
        n = min(int(self.options["num_exemplars"]), len(images))
        pick = torch.randperm(len(images), device=images.device, generator=generator)[:n]
        chosen = images[pick.sort().values]
        # principal components of all pixels of the surrogate images (for "contrast 1")
        pixels = chosen.float().div(255).permute(0, 2, 3, 1).reshape(-1, 3)
        pixels = pixels[:: max(1, len(pixels) // 1_000_000)]
        self.pixel_mean = pixels.mean(0)
        cov = torch.cov((pixels - self.pixel_mean).T)
        _, self.components = torch.linalg.eigh(cov)          # columns: principal directions
        self.num_classes = n
        if self.options["fill_epoch"] and len(images) > n:
            repeats = -(-len(images) // n)
            chosen = chosen.repeat(repeats, 1, 1, 1)[:len(images)]
        return chosen

    def evaluation_images(self, heldout, prepared):
        """Fresh views of each surrogate image once (positions 0..N-1 of ``prepared``)."""
        return prepared.subset(torch.arange(self.num_classes, device=prepared.index_device)), True

    def build_head(self, backbone: nn.Module) -> nn.Module:
        return nn.Linear(backbone.feature_dim, self.num_classes)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One independent random view of each image of the float batch ``x``."""
        n, dev, o = len(x), x.device, self.options
        # geometry: one affine warp per view (translation, scale, rotation)
        angle = uniform(n, -o["rotate"], o["rotate"], dev, generator) * math.pi / 180
        scale = uniform(n, *o["scale"], dev, generator)
        shift = uniform(n, -o["translate"], o["translate"], dev, generator, 2) * 2  # [-1,1] units
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)
        # contrast 1: scale the projections on the principal components
        mean = self.pixel_mean.to(dev).view(1, 3, 1, 1)
        comps = self.components.to(dev)
        proj = torch.einsum("nchw,cd->ndhw", x - mean, comps)
        proj = proj * uniform(n, *o["pc_factor"], dev, generator, 3, 1, 1)
        x = torch.einsum("ndhw,cd->nchw", proj, comps) + mean
        # contrast 2 and colour, in HSV
        hsv = rgb_to_hsv(x.clamp(0, 1))
        lo, hi = (math.log(v) for v in o["sv_power"])
        power = torch.exp(uniform(n, lo, hi, dev, generator, 2, 1, 1))     # log-uniform
        sv = hsv[:, 1:].clamp_min(0) ** power * uniform(n, *o["sv_factor"], dev, generator, 2, 1, 1)
        sv = sv + uniform(n, *o["sv_add"], dev, generator, 2, 1, 1)
        hue = (hsv[:, :1] + uniform(n, *o["hue_add"], dev, generator, 1, 1, 1)) % 1.0
        return hsv_to_rgb(torch.cat([hue, sv.clamp(0, 1)], 1)).contiguous(
            memory_format=torch.channels_last)

    def make_views(self, images, index, generator):
        """(views (V*N, C, H, W), labels (V*N,)): V independent views per image."""
        v = int(self.options["views"])
        x = images.repeat(v, 1, 1, 1)
        return self.transform(x, generator), index.repeat(v)

    def pretext_loss(self, backbone, head, images, generator, index=None) -> TaskStep:
        if index is None:
            raise ValueError("exemplar needs the surrogate class (index) of each image")
        views, labels = self.make_views(images, index % self.num_classes, generator)
        logits = head(backbone(views))
        return TaskStep(F.cross_entropy(logits.float(), labels), logits, labels)

    def preview(self, images, generator):
        n, v = len(images), 5
        views = torch.cat([self.transform(images, generator) for _ in range(v)])
        return [PreviewRow([images[i]] + [views[k * n + i] for k in range(v)],
                           [f"exemplar {i}"] + [f"view → class {i}"] * v) for i in range(n)]


@sslbench.hookimpl
def sslbench_tasks():
    return [Exemplar]
