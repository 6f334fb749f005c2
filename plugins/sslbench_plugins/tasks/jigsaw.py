"""Jigsaw puzzles (Noroozi & Favaro, ECCV 2016): put nine shuffled tiles back in order.

A square region of 3x3 cells is cut from the image at a random position (Noroozi: a random
225 px crop of a 256 px image, in 75 px cells); inside each cell a tile is cropped at a random
offset (Noroozi: 64 px tiles, ``tile_fraction`` 64/75). The tiles are shuffled by one
permutation drawn from a fixed set; each tile goes through the shared backbone (the paper's
"context-free network"), the nine tile features are concatenated in the shuffled order, and
the head predicts the index of the permutation.

Against shortcuts:

* **edge continuity**: adjacent tiles are at least ``min_gap`` pixels apart, whatever their
  random offsets (tiles shrink to make room: at 32 px, 7 px tiles in 10 px cells). Noroozi's
  layout leaves a gap of 0-22 px, 0 with probability 1/144; a 32 px image with tiles of
  64/75 of the cell would leave touching tiles a quarter of the time, and the network learns
  to match their edges (docs/tasks.md has the measurement). Below the resolution where a tile
  of :data:`MIN_TILE` px fits with that gap, the task refuses to run (one-line error).
* **low-level statistics**: each tile is standardised on its own (mean and std over its
  pixels, as ``tf.image.per_image_standardization`` in Kolesnikov et al.'s code);
* **chromatic aberration**: the whole image is turned to grayscale (the mean of RGB) with
  probability ``grayscale`` before it is cut (Kolesnikov et al.'s ``to_gray`` with
  ``grayscale_probability`` 0.66), and the colour channels of each tile are shifted spatially
  by up to ``channel_jitter`` of the tile side (Noroozi & Favaro: "we jitter the color
  channels", by up to 2 px of 64; the shift rounds to 0 px below 16 px tiles).

The permutation set is chosen greedily as in the paper's Algorithm 1: start from a random
permutation, then repeatedly add the permutation whose summed (i.e. average) Hamming distance
to those already chosen is largest (``selection="maximin"`` uses the smallest distance
instead). Its size is ``permutations`` (default 100 as in Kolesnikov et al. 2019; the paper used
1,000), deterministic for ``permutation_seed``.

Shortcut control: the trained network is shown held-out puzzles whose tiles had their pixels
shuffled (``shuffle_pixels``): structure and edges are gone, each tile's colour and intensity
statistics remain. A network that solves the puzzle from content is at chance there.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.augment import crop_patches, resize_to
from sslbench.errors import SSLBenchError
from sslbench.task import PretextTask, PreviewRow, ShortcutControl, TaskStep

GRID = 3
MIN_TILE = 4          # the smallest tile side (px) the task accepts


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


def tile_geometry(size: int, tile_fraction: float, min_gap: int = 0,
                  channel_jitter: float = 0.0) -> tuple[int, int, int, int]:
    """(cell side, tile side, largest channel shift, largest tile offset) in pixels for a
    square image of ``size`` px. A tile and its shifted channels occupy ``tile + 2 * shift``
    pixels; its offset in the cell is drawn from ``[floor(g/2), cell - footprint - ceil(g/2)]``
    so that the footprints of adjacent tiles are at least ``min_gap`` = g apart."""
    cell = size // GRID
    tile = max(1, min(cell, int(round(cell * tile_fraction))))
    tile = min(tile, cell - int(min_gap))
    shift = int(round(channel_jitter * tile))
    tile = min(tile, cell - int(min_gap) - 2 * shift)
    return cell, tile, shift, cell - (tile + 2 * shift) - math.ceil(int(min_gap) / 2)


def min_resolution(tile_fraction: float, min_gap: int, channel_jitter: float) -> int:
    """The smallest image side at which a tile of :data:`MIN_TILE` px fits."""
    size = GRID
    while tile_geometry(size, tile_fraction, min_gap, channel_jitter)[1] < MIN_TILE:
        size += 1
    return size


class Jigsaw(PretextTask):
    name = "jigsaw"
    description = "solve a 3x3 jigsaw: predict the permutation of shuffled tiles (Noroozi & Favaro 2016)"
    defaults = {"permutations": 100, "permutation_seed": 0, "selection": "mean",
                "tile_fraction": 64 / 75, "min_gap": 3, "grayscale": 0.66,
                "channel_jitter": 2 / 64, "hidden": 512, "shuffle_pixels": False}
    ranges = {"permutations": Range(ge=2, le=362880), "permutation_seed": Range(ge=0),
              "tile_fraction": Range(gt=0, le=1), "min_gap": Range(ge=0),
              "grayscale": Range(ge=0, le=1), "channel_jitter": Range(ge=0, le=1),
              "hidden": Range(ge=1)}
    references = [
        {"paper": "Kolesnikov et al. 2019 (CVPR)", "dataset": "imagenet",
         "backbone": "the paper's best architecture for the task", "protocol": "linear",
         "labels": 1281167, "accuracy": 44.6, "source": "Table 2 (top-1, ours)"},
    ]

    def __init__(self, **options):
        super().__init__(**options)
        if int(self.options["min_gap"]) < 0:
            raise SSLBenchError("jigsaw.min_gap must be >= 0 pixels")
        if not 0 <= float(self.options["grayscale"]) <= 1:
            raise SSLBenchError("jigsaw.grayscale is a probability in [0, 1]")
        self.perms = torch.from_numpy(permutation_set(
            int(self.options["permutations"]), int(self.options["permutation_seed"]),
            str(self.options["selection"])))
        avg, low = hamming_stats(self.perms.cpu().numpy())
        self.hamming = {"average": avg, "minimum": low}

    def config(self):
        return {**super().config(), "hamming_distance": self.hamming}

    def geometry(self, size: int) -> tuple[int, int, int, int]:
        o = self.options
        return tile_geometry(size, float(o["tile_fraction"]), int(o["min_gap"]),
                             float(o["channel_jitter"]))

    def validate(self, resolution: int) -> None:
        if self.geometry(resolution)[1] < MIN_TILE:
            o = self.options
            need = min_resolution(float(o["tile_fraction"]), int(o["min_gap"]),
                                  float(o["channel_jitter"]))
            raise SSLBenchError(
                f"jigsaw at {resolution} px leaves tiles under {MIN_TILE} px once tiles are "
                f"{o['min_gap']} px apart; use --resolution {need} or more, or a smaller "
                "--task-opt jigsaw.min_gap")

    def build_head(self, backbone: nn.Module) -> nn.Module:
        d, h = backbone.feature_dim, int(self.options["hidden"])
        return nn.Sequential(nn.Flatten(), nn.Linear(GRID * GRID * d, h), nn.ReLU(inplace=True),
                             nn.Linear(h, len(self.perms)))

    def cut(self, images: torch.Tensor, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tiles (N, 9, C, t, t) in grid order, top (N, 9), left (N, 9)): the tiles' corners
        in the image, before any channel shift."""
        n, c, h, w = images.shape
        size = min(h, w)
        self.validate(size)
        cell, tile, shift, high = self.geometry(size)
        low = int(self.options["min_gap"]) // 2
        dev = images.device
        slack = size - GRID * cell
        origin = torch.randint(0, slack + 1, (n, 2), device=dev, generator=generator)
        cells = torch.arange(GRID * GRID, device=dev)
        offset = lambda: torch.randint(low, high + 1, (n, GRID * GRID), device=dev,  # noqa: E731
                                       generator=generator) + shift
        top = origin[:, :1] + (cells // GRID) * cell + offset()
        left = origin[:, 1:] + (cells % GRID) * cell + offset()
        if shift == 0:
            tiles = crop_patches(images, top, left, tile)                 # (N, 9, C, t, t)
        else:   # each colour channel cut at its own small shift (chromatic aberration)
            jitter = lambda: torch.randint(-shift, shift + 1, (n, GRID * GRID), device=dev,  # noqa: E731
                                           generator=generator)
            tiles = torch.cat([crop_patches(images[:, ch:ch + 1], top + jitter(),
                                            left + jitter(), tile) for ch in range(c)], 2)
        return tiles, top, left

    def make_puzzles(self, images: torch.Tensor, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tiles (N, 9, C, t, t) in shuffled order, permutation index (N,), the permutations
        (N, 9)). Position i of the input holds the tile of grid cell ``perm[i]``. Whole
        images are grayed (with probability ``grayscale``) before cutting."""
        n, dev = len(images), images.device
        gray = torch.rand(n, 1, 1, 1, device=dev, generator=generator) < float(
            self.options["grayscale"])
        images = torch.where(gray, images.mean(1, keepdim=True).expand_as(images), images)
        tiles, _, _ = self.cut(images, generator)
        if self.options["shuffle_pixels"]:
            tiles = shuffle_pixels(tiles, generator)
        label = torch.randint(0, len(self.perms), (n,), device=dev, generator=generator)
        if self.perms.device != dev:                                  # once, not every step
            self.perms = self.perms.to(dev)
        perm = self.perms[label]                                      # (N, 9)
        tiles = tiles[torch.arange(n, device=dev)[:, None], perm]
        return tiles, label, perm

    def pretext_loss(self, backbone, head, images, generator) -> TaskStep:
        tiles, label, _ = self.make_puzzles(images, generator)
        n = len(tiles)
        tiles = normalise_each(tiles, backbone)
        tiles = resize_to(tiles, max(tiles.shape[-1], backbone.min_input_size))
        feats = backbone(tiles.flatten(0, 1).contiguous(memory_format=torch.channels_last))
        logits = head(feats.view(n, GRID * GRID, -1))
        return TaskStep(F.cross_entropy(logits.float(), label), logits, label)

    def control(self) -> ShortcutControl:
        return ShortcutControl(
            "pixels shuffled in tiles", "the trained network on held-out puzzles whose tiles "
            "had their pixels shuffled (no structure, no edges; colour statistics kept)",
            Jigsaw(**{**self.options, "shuffle_pixels": True}), retrain=False)

    def preview(self, images, generator):
        tiles, label, perm = self.make_puzzles(images, generator)
        return [PreviewRow([tiles[n, i] for i in range(GRID * GRID)],
                           [f"from cell {int(perm[n, i])}" if i else
                            f"perm #{int(label[n])}: from cell {int(perm[n, 0])}"
                            for i in range(GRID * GRID)]) for n in range(len(images))]


def shuffle_pixels(tiles: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each tile's pixel positions in an independent random order (channels move together)."""
    *lead, c, h, w = tiles.shape
    keys = torch.rand(*lead, h * w, device=tiles.device, generator=generator)
    order = keys.argsort(-1)
    flat = tiles.reshape(*lead, c, h * w)
    return flat.gather(-1, order.unsqueeze(-2).expand_as(flat)).reshape(tiles.shape)


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
