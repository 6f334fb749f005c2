"""Data sets, and the splits that every cell shares.

A dataset plugin returns an :class:`ImageData`: train and test images at the run's
resolution, either decoded as uint8 (N, 3, R, R) tensors (a 50,000-image 32 px set is 150 MB)
or as :class:`~sslbench.images.ImageFiles` decoded on demand, and an optional extra unlabeled
split. The core then makes the run's splits of the training images (:func:`make_splits`): the
pool that may be labeled and pretrained on, a fixed validation split only when asked for
(each cell otherwise holds its validation images out of its own labels), and the pretext
hold-out on which pretraining is checked; the test split is evaluated once per cell. Where
the images then live (on the device, or streamed) is :mod:`sslbench._core.placement`'s decision,
not the plugin's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import MalformedPlugin, SSLBenchError
from .images import ImageFiles, pil_to_uint8  # noqa: F401 (re-exported for loaders)
from .options import Range, resolve_options

__all__ = [
    'DatasetRequest', 'DatasetSpec', 'ImageData', 'ImageFiles', 'pil_to_uint8',
    'resize_uint8', 'hwc_to_tensor', 'stratified_split',
]


@dataclass
class DatasetRequest:
    """What a dataset loader is asked for.

    ``argument`` is the part after the colon in ``imagefolder:PATH`` (``None`` for a plain
    name); ``data_dir`` is where downloadable sets live (``--data-dir``); ``download`` says
    whether the user allowed a download (``--download``).
    """

    argument: str | None
    resolution: int
    data_dir: str
    download: bool = False
    split_seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)   # the data set's resolved options


@dataclass
class ImageData:
    """A loaded data set. Images are uint8 (N, 3, R, R) tensors or :class:`ImageFiles` of
    that shape; labels are int64 (N,) tensors."""

    name: str
    classes: list[str]
    train_images: torch.Tensor | ImageFiles
    train_labels: torch.Tensor
    test_images: torch.Tensor | ImageFiles
    test_labels: torch.Tensor
    unlabeled_images: torch.Tensor | ImageFiles | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
                raise MalformedPlugin(
                    f"{split} images must be uint8 (N, 3, H, W) (got {images.dtype} "
                    f"{tuple(images.shape)}); see sslbench.data.ImageData")
            if len(images) != len(labels):
                raise MalformedPlugin(f"{split} images and labels differ in length "
                                      f"({len(images)} and {len(labels)})")
        if len(self.train_images) == 0:
            raise SSLBenchError(f"data set {self.name!r} has no training images")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """A hash of the pixels (of decoded tensors) or of the files' names and sizes (of
        :class:`ImageFiles`) and of the labels, so that caches notice a changed data set.
        Computed once and remembered."""
        if self._fingerprint is None:
            self._fingerprint = self._hash()
        return self._fingerprint

    def _hash(self) -> str:
        h = hashlib.sha256()
        for t in (self.train_images, self.train_labels, self.test_images, self.test_labels,
                  self.unlabeled_images):
            if isinstance(t, ImageFiles):
                h.update(t.fingerprint().encode())
            elif t is not None:
                h.update(str(tuple(t.shape)).encode())
                h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


@dataclass
class DatasetSpec:
    """A data set offered by a plugin.

    ``takes_argument``: the name is used as ``NAME:ARGUMENT`` (``imagefolder:PATH``).
    ``defaults`` (and per-preset ``presets``) declare its options (:mod:`sslbench.options`);
    ``load`` finds the resolved ones in ``request.options``.
    """

    name: str
    load: Callable[[DatasetRequest], ImageData]
    description: str = ""
    takes_argument: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    ranges: dict[str, Range] = field(default_factory=dict)   # of numeric options

    def resolve(self, preset: str | None, given: dict[str, Any]) -> dict[str, Any]:
        """The options a run uses: defaults, the preset's values, the user's."""
        return resolve_options("data set", self.name, self.defaults, given,
                               self.presets.get(preset or "", {}), self.ranges)


# ----------------------------------------------------------------------------- resizing

def resize_uint8(images: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
    """Resize a uint8 (N, 3, H, W) batch to (N, 3, R, R): shorter side to R, centre crop.

    Done once, when a data set is loaded, in chunks with antialiasing.
    """
    n, _, h, w = images.shape
    if h == resolution and w == resolution:
        return images.contiguous()
    scale = resolution / min(h, w)
    nh, nw = max(resolution, round(h * scale)), max(resolution, round(w * scale))
    out = torch.empty((n, 3, resolution, resolution), dtype=torch.uint8)
    top, left = (nh - resolution) // 2, (nw - resolution) // 2
    for i in range(0, n, chunk):
        x = images[i:i + chunk].float()
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        x = x[:, :, top:top + resolution, left:left + resolution]
        out[i:i + chunk] = x.round().clamp_(0, 255).to(torch.uint8)
    return out


def hwc_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) or (N, H, W) uint8 numpy array to a (N, 3, H, W) uint8 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.ndim == 3:
        t = t.unsqueeze(-1)
    t = t.permute(0, 3, 1, 2)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.contiguous()


# ----------------------------------------------------------------------------- splitting

def stratified_split(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (rest, held_out) with ``fraction`` of each class held out.

    Seeded and stratified; every class with two or more images keeps at least one on each
    side. Indices come back sorted.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.append(idx[:k])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(labels)), held_out)
    return rest.astype(np.int64), held_out.astype(np.int64)


@dataclass
class Splits:
    """The fixed splits of one data set in one run, as indices into its training split (the
    test split is the data set's own). :mod:`sslbench._core.placement` decides where their images
    live.

    * ``pool_index``: the images that may be labeled. With ``validation="labeled"`` that is
      the whole training split and each cell holds its own validation images out of its
      labeled subset (:func:`sslbench._core.fractions.labeled_split`); with ``"fixed"`` a
      validation split (``val_index``) is carved out once and the pool is the rest.
    * ``holdout``: positions *in the pool* kept out of pretraining, on which the pretext
      accuracy of each checkpoint is measured (pretraining sees every other pool image,
      without labels, and never a validation or test image). They may still be labeled.
    """

    data: ImageData
    pool_index: np.ndarray  # indices into data.train_images
    val_index: np.ndarray   # indices into data.train_images (empty: per-cell validation)
    seed: int
    holdout: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))

    @property
    def pool_labels(self) -> torch.Tensor:
        return self.data.train_labels[torch.from_numpy(self.pool_index)]

    @property
    def val_labels(self) -> torch.Tensor:
        return self.data.train_labels[torch.from_numpy(self.val_index)]

    @property
    def per_cell_validation(self) -> bool:
        return len(self.val_index) == 0

    @property
    def pretraining_index(self) -> np.ndarray:
        """Positions in the pool that pretraining sees."""
        return np.setdiff1d(np.arange(len(self.pool_index)), self.holdout)


def make_splits(data: ImageData, validation: str, val_fraction: float, holdout: int,
                seed: int) -> Splits:
    """The run's splits of ``data`` (see :class:`Splits`): a fixed validation split of
    ``val_fraction`` when ``validation == "fixed"``, and ``holdout`` pool images (at most 10%
    of the pool, drawn with ``seed``) kept out of pretraining."""
    n = len(data.train_labels)
    if validation == "fixed":
        pool, val = stratified_split(data.train_labels.numpy(), val_fraction, seed)
    else:
        pool, val = np.arange(n, dtype=np.int64), np.array([], dtype=np.int64)
    k = min(int(holdout), len(pool) // 10)
    rng = np.random.default_rng([seed, 0x40D])
    held = np.sort(rng.permutation(len(pool))[:k]).astype(np.int64)
    return Splits(data=data, pool_index=pool, val_index=val, seed=seed, holdout=held)


def carve_validation(data: ImageData, fraction: float, seed: int) -> Splits:
    """A fixed, stratified, seeded validation split of ``fraction`` of the training data
    (no pretext hold-out); kept for callers of the pre-0.4 API."""
    return make_splits(data, "fixed", fraction, 0, seed)
