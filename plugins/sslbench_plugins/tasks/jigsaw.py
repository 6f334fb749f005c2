"""Jigsaw puzzles (Noroozi & Favaro, ECCV 2016): put nine shuffled tiles back in order.

The image is cut into a 3x3 grid of cells; inside each cell a tile is cropped at a random
offset, so that tile edges do not line up and cannot give the answer (the paper crops 64 px
tiles from 75 px cells: ``tile_fraction`` 64/75). The tiles are shuffled by one permutation
drawn from a fixed set; each tile goes through the shared backbone (the paper's "context-free
network"), the nine tile features are concatenated in the shuffled order, and the head
predicts the index of the permutation.

The permutation set is chosen greedily as in the paper's Algorithm 1: start from a random
permutation, then repeatedly add the permutation whose summed (i.e. average) Hamming distance
to those already chosen is largest (``selection="maximin"`` uses the smallest distance
instead). Its size is ``permutations`` (default 100 as in Kolesnikov et al. 2019; the paper used
1,000), deterministic for ``permutation_seed``.

Against shortcuts: each tile is normalised on its own (mean and std over its pixels), and a
share of the tiles (``grayscale`` 0.66, as in Kolesnikov et al.) is turned to grayscale,
against chromatic aberration and colour matching.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.augment import crop_patches, grayscale, resize_to
from sslbench.errors import SSLBenchError
from sslbench.task import PretextTask, PreviewRow, TaskStep

GRID = 3


@functools.lru_cache(maxsize=8)
def all_permutations() -> np.ndarray:
    return np.array(list(itertools.permutations(range(GRID * GRID))), dtype=np.int8)


@functools.lru_cache(maxsize=16)
def permutation_set(size: int, seed: int = 0, selection: str = "mean") -> np.ndarray:
    """(size, 9) permutations chosen greedily for large Hamming distance.

    ``selection="mean"``: each new permutation maximises the sum of its Hamming distances to
    the chosen ones (the paper's Algorithm 1); ``"maximin"``: it maximises the smallest.
    Ties go to the first candidate in a seeded random order, so the set is a function of
    (size, seed, selection).
    """
    if selection not in ("mean", "maximin"):
        raise SSLBenchError(f"jigsaw selection must be 'mean' or 'maximin', got {selection!r}")
    perms = all_permutations()
    if not 2 <= size <= len(perms):
        raise SSLBenchError(f"jigsaw permutations must be in [2, {len(perms)}], got {size}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(perms))
    perms = perms[order]                       # candidates in a seeded order: ties break there
    chosen = [0]
    score = (perms != perms[0]).sum(1).astype(np.int64)
    if selection == "maximin":
        score = score.copy()
    taken = np.zeros(len(perms), dtype=bool)
    taken[0] = True
    for _ in range(size - 1):
        masked = np.where(taken, -1, score)
        j = int(masked.argmax())
        chosen.append(j)
        taken[j] = True
        dist = (perms != perms[j]).sum(1)
        score = score + dist if selection == "mean" else np.minimum(score, dist)
    return perms[chosen].astype(np.int64)


def hamming_stats(perms: np.ndarray) -> tuple[float, int]:
    """(average, minimum) pairwise Hamming distance of a permutation set."""
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    off = d[~np.eye(len(perms), dtype=bool)]
    return float(off.mean()), int(off.min())


def tile_geometry(size: int, tile_fraction: float) -> tuple[int, int]:
    """(cell side, tile side) for a square image of ``size`` px."""
    cell = size // GRID
    tile = max(1, min(cell, int(round(cell * tile_fraction))))
    return cell, tile


class Jigsaw(PretextTask):
    name = "jigsaw"
    description = "solve a 3x3 jigsaw: predict the permutation of shuffled tiles (Noroozi & Favaro 2016)"
    defaults = {"permutations": 100, "permutation_seed": 0, "selection": "mean",
                "tile_fraction": 64 / 75, "grayscale": 0.66, "hidden": 512}

    def __init__(self, **options):
        super().__init__(**options)
        self.perms = torch.from_numpy(permutation_set(
            int(self.options["permutations"]), int(self.options["permutation_seed"]),
            str(self.options["selection"])))
        avg, low = hamming_stats(self.perms.cpu().numpy())
        self.hamming = {"average": avg, "minimum": low}

    def config(self):
        return {**super().config(), "hamming_distance": self.hamming}

    def build_head(self, backbone: nn.Module) -> nn.Module:
        d, h = backbone.feature_dim, int(self.options["hidden"])
        return nn.Sequential(nn.Flatten(), nn.Linear(GRID * GRID * d, h), nn.ReLU(inplace=True),
                             nn.Linear(h, len(self.perms)))

    def make_puzzles(self, images: torch.Tensor, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tiles (N, 9, C, t, t) in shuffled order, permutation index (N,), the permutations
        (N, 9)). Position i of the input holds the tile of grid cell ``perm[i]``."""
        n, _, h, w = images.shape
        cell, tile = tile_geometry(min(h, w), float(self.options["tile_fraction"]))
        dev = images.device
        cells = torch.arange(GRID * GRID, device=dev)
        slack = cell - tile + 1
        top = (cells // GRID) * cell + torch.randint(0, slack, (n, GRID * GRID), device=dev,
                                                     generator=generator)
        left = (cells % GRID) * cell + torch.randint(0, slack, (n, GRID * GRID), device=dev,
                                                     generator=generator)
        tiles = crop_patches(images, top, left, tile)                 # (N, 9, C, t, t)
        label = torch.randint(0, len(self.perms), (n,), device=dev, generator=generator)
        if self.perms.device != dev:                                  # once, not every step
            self.perms = self.perms.to(dev)
        perm = self.perms[label]                                      # (N, 9)
        tiles = tiles[torch.arange(n, device=dev)[:, None], perm]
        return tiles, label, perm

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        tiles, label, _ = self.make_puzzles(images, generator)
        n = len(tiles)
        gray = torch.rand(n, GRID * GRID, 1, 1, 1, device=tiles.device,
                          generator=generator) < float(self.options["grayscale"])
        tiles = torch.where(gray, grayscale(tiles), tiles)
        tiles = normalise_each(tiles, backbone)
        tiles = resize_to(tiles, max(tiles.shape[-1], backbone.min_input_size))
        feats = backbone(tiles.flatten(0, 1).contiguous(memory_format=torch.channels_last))
        logits = head(feats.view(n, GRID * GRID, -1))
        return TaskStep(F.cross_entropy(logits.float(), label), logits, label)

    def preview(self, images, generator):
        tiles, label, perm = self.make_puzzles(images, generator)
        return [PreviewRow([tiles[n, i] for i in range(GRID * GRID)],
                           [f"from cell {int(perm[n, i])}" if i else
                            f"perm #{int(label[n])}: from cell {int(perm[n, 0])}"
                            for i in range(GRID * GRID)]) for n in range(len(images))]


def normalise_each(patches: torch.Tensor, backbone: nn.Module) -> torch.Tensor:
    """Standardise each patch over its own pixels, then map to the input range the backbone's
    own normalisation expects, so that the network sees the per-patch standardised values."""
    flat = patches.flatten(-3)
    mean = flat.mean(-1)[..., None, None, None]
    std = flat.std(-1).clamp_min(1e-3)[..., None, None, None]
    z = (patches - mean) / std
    return z * backbone.input_std.view(3, 1, 1) + backbone.input_mean.view(3, 1, 1)


@sslbench.hookimpl
def sslbench_tasks():
    return [Jigsaw]
