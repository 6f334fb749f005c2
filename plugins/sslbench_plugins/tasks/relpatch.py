"""Relative patch location (Doersch, Gupta & Efros, ICCV 2015): where does this patch sit
relative to that one?

Sampling follows the authors' code (``deepcontext/train.py``): a grid of patches of side
``patch`` separated by ``gap`` is laid over the image from a random origin (anywhere within one
grid period), every patch is shifted by a random jitter of up to ``jitter``, and every two
adjacent grid cells (8-neighbourhood) make a training pair in both orders: the label is where
the second patch sits relative to the first (8 classes). So neither patch's position in the
image is fixed, and the first patch is as often at the border as in the middle. As in the
authors' network (``BatchReindex``), every patch of the grid goes through the shared backbone
once and the pairs are formed from the features: a 3x3 grid gives 40 training pairs from 9
forward passes. ``grids_per_image`` grids, each with its own origin and jitter, are drawn from
every image of a batch (the authors' loader draws 4, ``num_grids``; the default here is 1:
at 32 px, 4 grids cost four times the compute and did not change what the network learns,
docs/tasks.md). A head fed with the two features concatenated predicts the label.

Sizes are shares of the image side. Doersch used 96 px patches, 48 px gaps and 7 px of jitter
on images rescaled to 150,000-450,000 pixels (387-671 px a side, 548 on average), so the
defaults are 96/548, 48/548 and 7/548 of the side, rounded to whole pixels (at 32 px: 6 px
patches, 3 px gaps, and 1 px of jitter, the least that leaves jittered patches apart).

Preprocessing of each patch, as the authors' ``prep_image``:

* ``pixelate``: with probability 1/3 the patch is downsampled to between 10/96 and 95/96 of
  its side (uniform in area) and upsampled back, "to build robustness to pixelation";
* ``color_drop``: one random colour channel is kept (minus its mean) and the two others are
  replaced by uniform noise of +-0.5 grey levels (of 255), against chromatic aberration;
* ``normalise``: the patch is divided by its root-mean-square, "so that gradients are a less
  useful cue" (with ``color_drop`` off, each channel's mean is subtracted first).

``grid="centred"`` is the pre-0.4 layout (a 3x3 grid centred in the image, the first patch
always its centre): the neighbour's position in the image then gives the answer, which the
shortcut control measures. It is kept for that comparison, not for use.

Shortcut control: a fresh network is trained on the same pairs with the first patch hidden
(``neighbour_only``): whatever it reaches above chance comes from where the neighbour sits in
the image, not from its relation to the other patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.augment import constant, crop_patches, resize_to
from sslbench.errors import SSLBenchError
from sslbench.task import PretextTask, PreviewRow, ShortcutControl, TaskStep

# (dy, dx) of the second patch relative to the first; label = index in this list
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
NAMES = ["up-left", "up", "up-right", "left", "right", "down-left", "down", "down-right"]
DOERSCH_SIDE = 548          # mean side of Doersch's rescaled training images (300,000 pixels)
GRIDS = ("random", "centred")


def patch_geometry(size: int, patch: float, gap: float, jitter: float) -> tuple[int, int, int]:
    """(patch side, gap, jitter) in pixels for an image of ``size`` px: the shares rounded,
    jitter at least 1 px where the gap allows and at most what keeps jittered patches apart."""
    p, g = max(1, round(patch * size)), max(0, round(gap * size))
    j = max(round(jitter * size), 1 if jitter > 0 else 0)
    return p, g, min(j, max(0, (g - 1) // 2))


class RelativePatch(PretextTask):
    name = "relpatch"
    description = "predict where a patch sits relative to an adjacent one (Doersch et al. 2015)"
    defaults = {"patch": 96 / DOERSCH_SIDE, "gap": 48 / DOERSCH_SIDE,
                "jitter": 7 / DOERSCH_SIDE, "grid": "random", "pixelate": 1 / 3,
                "color_drop": True, "normalise": True, "grids_per_image": 1, "hidden": 512,
                "neighbour_only": False}
    ranges = {"patch": Range(gt=0, lt=1), "gap": Range(ge=0, lt=1), "jitter": Range(ge=0, lt=1),
              "pixelate": Range(ge=0, le=1), "grids_per_image": Range(ge=1), "hidden": Range(ge=1)}
    references = [
        {"paper": "Kolesnikov et al. 2019 (CVPR)", "dataset": "imagenet",
         "backbone": "the paper's best architecture for the task", "protocol": "linear",
         "labels": 1281167, "accuracy": 51.4, "source": "Table 2 (top-1, ours)"},
    ]

    def __init__(self, **options):
        super().__init__(**options)
        if int(self.options["grids_per_image"]) < 1:
            raise SSLBenchError("relpatch.grids_per_image must be at least 1")
        if self.options["grid"] not in GRIDS:
            raise SSLBenchError(f"relpatch.grid must be one of {', '.join(GRIDS)}; "
                                f"got {self.options['grid']!r}")

    def geometry(self, size: int) -> tuple[int, int, int]:
        o = self.options
        return patch_geometry(size, float(o["patch"]), float(o["gap"]), float(o["jitter"]))

    def validate(self, resolution: int) -> None:
        p, g, j = self.geometry(resolution)
        need = (3 * p + 2 * g + 2 * j) if self.options["grid"] == "centred" else 3 * p + 2 * g - 1
        if p < 2 or resolution < need:
            raise SSLBenchError(
                f"relpatch at {resolution} px: {p} px patches with {g} px gaps do not fit a "
                f"3x3 grid; use a larger --resolution or smaller relpatch.patch/gap")

    def build_head(self, backbone: nn.Module) -> nn.Module:
        d, h = backbone.feature_dim, int(self.options["hidden"])
        k = 1 if self.options["neighbour_only"] else 2
        return nn.Sequential(nn.Flatten(), nn.Linear(k * d, h), nn.ReLU(inplace=True),
                             nn.Linear(h, len(NEIGHBOURS)))

    def layout(self, n: int, size: int, device, generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(top (N, G*G), left (N, G*G), valid (N, K), label (K,)): the corners of a G x G
        grid of patches per image, and which of the K candidate ordered pairs
        (:func:`pair_table`) lie inside the image's grid, with their labels."""
        p, g, j = self.geometry(size)
        period = p + g
        first, second, label, cells = pair_table(size, p, g, self.options["grid"] == "centred",
                                                 device)
        idx = torch.arange(cells * cells, device=device)
        cy, cx = idx // cells, idx % cells
        if self.options["grid"] == "centred":
            origin = torch.full((n, 2), (size - (3 * p + 2 * g)) // 2, device=device)
            valid = torch.ones(n, len(first), dtype=torch.bool, device=device)
        else:
            origin = torch.randint(0, period, (n, 2), device=device, generator=generator)
            count = (size + g - origin) // period            # cells per side, per image
            inside = (cy[None] < count[:, :1]) & (cx[None] < count[:, 1:])   # (N, G*G)
            valid = inside[:, first] & inside[:, second]
        top = origin[:, :1] + cy[None] * period
        left = origin[:, 1:] + cx[None] * period
        jitter = lambda: torch.randint(-j, j + 1, top.shape, device=device,  # noqa: E731
                                       generator=generator)
        top = (top + jitter()).clamp(0, size - p)
        left = (left + jitter()).clamp(0, size - p)
        return top, left, valid, label

    def make_grid(self, images: torch.Tensor, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(patches (N, G*G, C, p, p) as cut, valid (N, K), label (K,), top, left)."""
        n, _, h, w = images.shape
        top, left, valid, label = self.layout(n, min(h, w), images.device, generator)
        p = self.geometry(min(h, w))[0]
        return crop_patches(images, top, left, p), valid, label, top, left

    def preprocess(self, pairs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Pixelation, colour dropping and RMS normalisation (Doersch's ``prep_image``), in
        standardised units (mean 0, RMS 1 per patch when ``normalise``)."""
        o = self.options
        if float(o["pixelate"]) > 0:
            pairs = pixelate(pairs, float(o["pixelate"]), generator)
        if o["color_drop"]:
            pairs = drop_colours(pairs, generator)
        elif o["normalise"]:
            pairs = pairs - pairs.mean(dim=(-2, -1), keepdim=True)
        if o["normalise"]:
            rms = pairs.square().mean(dim=(-3, -2, -1), keepdim=True).sqrt().clamp_min(1e-6)
            pairs = pairs / rms
        return pairs

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        grids = int(self.options["grids_per_image"])
        if grids > 1:
            images = images.repeat(grids, 1, 1, 1)       # each copy draws its own grid
        patches, valid, label, _, _ = self.make_grid(images, generator)
        size = images.shape[-1]
        first, second, _, _ = pair_table(size, *self.geometry(size)[:2],
                                         self.options["grid"] == "centred", images.device)
        patches = self.preprocess(patches, generator)
        if self.options["normalise"] or self.options["color_drop"]:
            # the patches are already standardised: let the backbone's own normalisation
            # hand them over unchanged
            patches = (patches * backbone.input_std.view(3, 1, 1)
                       + backbone.input_mean.view(3, 1, 1))
        n, cells = patches.shape[:2]
        patches = resize_to(patches, max(patches.shape[-1], backbone.min_input_size))
        feats = backbone(patches.flatten(0, 1).contiguous(memory_format=torch.channels_last))
        feats = feats.view(n, cells, -1)
        pairs = (feats[:, second, None] if self.options["neighbour_only"]
                 else torch.stack([feats[:, first], feats[:, second]], 2))   # (N, K, 1|2, D)
        logits = head(pairs[valid])
        targets = label.expand(n, -1)[valid]
        return TaskStep(F.cross_entropy(logits.float(), targets), logits, targets)

    def control(self) -> ShortcutControl:
        return ShortcutControl(
            "neighbour only", "a fresh network trained on the same pairs with the first patch "
            "hidden: what it learns comes from where the neighbour sits in the image",
            RelativePatch(**{**self.options, "neighbour_only": True}), retrain=True)

    def preview(self, images, generator):
        patches, valid, label, _, _ = self.make_grid(images, generator)
        size = images.shape[-1]
        first, second, _, _ = pair_table(size, *self.geometry(size)[:2],
                                         self.options["grid"] == "centred", images.device)
        rows = []
        for n in range(len(images)):
            k = int(torch.multinomial(valid[n].float(), 1, generator=generator))
            rows.append(PreviewRow(
                [images[n], patches[n, first[k]], patches[n, second[k]]],
                ["image", "first", f"second: {NAMES[int(label[k])]} of the first "
                 f"(class {int(label[k])})"]))
        return rows


def pair_table(size: int, p: int, g: int, centred: bool, device
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(first (K,), second (K,), label (K,), G): the candidate ordered pairs of adjacent
    cells of a G x G grid (cells numbered row by row), the second cell at offset
    ``NEIGHBOURS[label]`` from the first. The centred layout pairs the centre with its 8
    neighbours only."""
    if centred:
        cells, firsts = 3, [(1, 1)]
    else:
        cells = (size + g) // (p + g)
        firsts = [(y, x) for y in range(cells) for x in range(cells)]
    rows = [(y * cells + x, (y + dy) * cells + (x + dx), k)
            for y, x in firsts for k, (dy, dx) in enumerate(NEIGHBOURS)
            if 0 <= y + dy < cells and 0 <= x + dx < cells]
    table = constant(tuple(v for r in rows for v in r), device, torch.long).view(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2], cells


def pixelate(patches: torch.Tensor, probability: float,
             generator: torch.Generator) -> torch.Tensor:
    """With ``probability`` per patch, downsample to a side drawn uniformly in area between
    10/96 and 95/96 of the patch's (at least 1 px) and upsample back (bilinear), as Doersch's
    ``prep_image``. One resize per distinct side, never one per patch."""
    *lead, c, p, _ = patches.shape
    flat = patches.reshape(-1, c, p, p)
    hit = torch.rand(len(flat), device=flat.device, generator=generator) < probability
    lo, hi = p * 10 / 96, p * 95 / 96
    area = torch.rand(len(flat), device=flat.device, generator=generator) * (hi ** 2 - lo ** 2)
    side = (area + lo ** 2).sqrt().floor().long().clamp(1, p)
    side = torch.where(hit, side, torch.full_like(side, p))
    out = flat.clone()
    for s in side.unique().tolist():
        if s == p:
            continue
        which = side == s
        small = F.interpolate(flat[which], size=(s, s), mode="area")
        out[which] = F.interpolate(small, size=(p, p), mode="bilinear", align_corners=False)
    return out.reshape(patches.shape)


def drop_colours(patches: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep one random channel of each patch, minus its mean; replace the other two by
    uniform noise of +-0.5 grey levels, as Doersch's ``prep_image`` (values in [0, 1] here,
    so the noise is +-0.5/255)."""
    shape = patches.shape[:-3]                                             # (N, K)
    keep = torch.randint(0, 3, shape, device=patches.device, generator=generator)
    kept = patches - patches.mean(dim=(-2, -1), keepdim=True)
    noise = (torch.rand(patches.shape, device=patches.device, generator=generator) - 0.5) / 255
    channel = torch.arange(3, device=patches.device).view(*([1] * len(shape)), 3, 1, 1)
    return torch.where(channel == keep[..., None, None, None], kept, noise)


def oracle_accuracy(task: RelativePatch, size: int, images: int = 20_000,
                    seed: int = 0) -> float:
    """How well the label can be guessed from the second patch's position alone (its
    top-left corner), estimated from the pairs of ``images`` grids: the best any network
    could do with the absolute-position cue if a patch's content revealed where it was cut."""
    g = torch.Generator().manual_seed(seed)
    top, left, valid, label = task.layout(images, size, torch.device("cpu"), g)
    _, second, _, _ = pair_table(size, *task.geometry(size)[:2],
                                 task.options["grid"] == "centred", torch.device("cpu"))
    where = (top[:, second] * size + left[:, second])[valid]
    key = where * len(NEIGHBOURS) + label.expand_as(valid)[valid]
    counts = torch.bincount(key, minlength=size * size * len(NEIGHBOURS)).view(-1, len(NEIGHBOURS))
    return float(counts.max(1).values.sum()) / int(valid.sum())


@sslbench.hookimpl
def sslbench_tasks():
    return [RelativePatch]

