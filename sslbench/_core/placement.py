"""Where a data set's splits live during a run: on the device, or streamed.

``--stream`` chooses:

* ``auto`` (the default): a data set is held on the device when all its decoded images take
  at most half of the device's free memory (CUDA: ``torch.cuda.mem_get_info``; the CPU: the
  kernel's ``MemAvailable``), and streamed otherwise. A set that its loader already decoded
  into host memory stays there when the device is the CPU.
* ``never``: always on the device (an out-of-memory error is the user's to avoid).
* ``always``: always streamed, down to each cell's labeled subset; for data that must not be
  decoded up front, and for checking the streamed path on small data.

When a data set is streamed, the splits that are read again and again are still held on the
device where they fit in that budget: the validation split (read at every evaluation) and each
cell's labeled subset (read for thousands of fine-tuning steps). The test split, read once per
cell, stays streamed.

Resident and streamed runs of one seed differ only in the order their batches are drawn
(:meth:`~sslbench.images.StreamedImages.order_generator`); the pixels are the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..data import ImageData, Splits
from ..errors import SSLBenchError
from ..images import (ConcatSource, ImageFiles, Images, ResidentImages, StreamedImages,
                      host_source, nbytes, take)
from ..images import decode_all as _decode_all
from .decoded import DecodedImages

STREAM_MODES = ("auto", "never", "always")
STATS_SAMPLE = 10_000   # images sampled for the channel statistics of a streamed pool


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device`` now (the CPU: ``MemAvailable``, else free physical pages)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


@dataclass
class PlacedData:
    """The splits of one data set, placed: images as :class:`ResidentImages` or
    :class:`StreamedImages`, labels as int64 tensors on the device."""

    pool: Images
    pool_labels: torch.Tensor
    val: Images | None                  # None: each cell holds validation out of its labels
    val_labels: torch.Tensor | None
    test: Images
    test_labels: torch.Tensor
    pretraining: Images                 # the pool minus the hold-out, then any unlabeled split
    heldout: Images                     # pool images kept out of pretraining
    channel_stats: tuple[torch.Tensor, torch.Tensor]
    budget: int                         # bytes still free for subsets held on the device
    notes: dict = field(default_factory=dict)

    @property
    def streamed(self) -> bool:
        return self.pool.streamed

    def labeled(self, positions: torch.Tensor) -> tuple[Images, torch.Tensor]:
        """A labeled subset of the pool (positions on the device): held on the device where
        the pool is, or where it fits in the budget."""
        labels = self.pool_labels[positions]
        images = self.pool.subset(positions)
        if images.streamed and _size(images) <= self.budget:
            images = _resident(images)
        return images, labels

    def describe(self) -> dict:
        """What a record says about the placement."""
        where = {name: ("streamed" if getattr(self, name).streamed else "device")
                 for name in ("pretraining", "val", "test") if getattr(self, name) is not None}
        return {**where, **self.notes}


def _sources(data: ImageData) -> list:
    return [data.train_images, data.test_images] + (
        [data.unlabeled_images] if data.unlabeled_images is not None else [])


def held_whole(data: ImageData, device: torch.device, mode: str) -> bool:
    """Whether :func:`place` will hold ``data`` on the device (decoded whole) rather than
    stream it, per :data:`STREAM_MODES` ``mode``."""
    if mode not in STREAM_MODES:
        raise SSLBenchError(f"unknown --stream mode {mode!r}; use {', '.join(STREAM_MODES)}")
    sources = _sources(data)
    decoded = all(isinstance(s, torch.Tensor) for s in sources)
    return mode == "never" or (mode == "auto" and (
        (device.type == "cpu" and decoded)
        or sum(nbytes(s) for s in sources) <= free_memory(device) // 2))


def place(splits: Splits, device: torch.device, mode: str, workers: int,
          decoded: DecodedImages | None = None) -> PlacedData:
    """Decide, per :data:`STREAM_MODES` ``mode``, where the splits' images live, and put them
    there. Resident images are decoded once, by ``workers`` DataLoader processes (through
    ``decoded``'s cache, when given: :mod:`sslbench._core.decoded`)."""
    data = splits.data
    if held_whole(data, device, mode):
        return _place_resident(splits, device, workers, decoded)
    total = sum(nbytes(s) for s in _sources(data))
    budget = free_memory(device) // 2
    return _place_streamed(splits, device, workers, 0 if mode == "always" else budget,
                           {"reason": (f"--stream {mode}" if mode == "always" else
                                       f"{total / 2**30:.1f} GiB of images > half the "
                                       f"{budget * 2 / 2**30:.1f} GiB free"),
                            "workers": workers})


def _place_resident(splits: Splits, device: torch.device, workers: int,
                    decoded: DecodedImages | None) -> PlacedData:
    data = splits.data

    def decode(images) -> torch.Tensor:
        if decoded is not None and isinstance(images, ImageFiles):
            return decoded.decode(images, workers)
        return _decode_all(images, workers)

    train = decode(data.train_images)
    pool = take(train, splits.pool_index).to(device)
    seen = torch.from_numpy(splits.pretraining_index).to(device)
    pretraining = pool if len(splits.holdout) == 0 else pool[seen]
    x = pretraining.float().div_(255)
    stats = (x.mean(dim=(0, 2, 3)).cpu(), x.std(dim=(0, 2, 3)).cpu())
    del x
    if data.unlabeled_images is not None:
        pretraining = torch.cat([pretraining, decode(data.unlabeled_images).to(device)])
    val = None if splits.per_cell_validation else ResidentImages(
        take(train, splits.val_index).to(device))
    return PlacedData(
        pool=ResidentImages(pool), pool_labels=splits.pool_labels.to(device),
        val=val, val_labels=None if val is None else splits.val_labels.to(device),
        test=ResidentImages(decode(data.test_images).to(device)),
        test_labels=data.test_labels.to(device),
        pretraining=ResidentImages(pretraining),
        heldout=ResidentImages(pool[torch.from_numpy(splits.holdout).to(device)]),
        channel_stats=stats, budget=0)


def _place_streamed(splits: Splits, device: torch.device, workers: int, budget: int,
                    notes: dict) -> PlacedData:
    data = splits.data
    train = host_source(data.train_images)

    def stream(source) -> StreamedImages:
        return StreamedImages(source, device, workers)

    pool = stream(train.subset(splits.pool_index))
    val: Images | None = None
    if not splits.per_cell_validation:
        val = stream(train.subset(splits.val_index))
        if _size(val) <= budget:
            val = _resident(val)
            budget -= _size(val)
    seen = pool if len(splits.holdout) == 0 else pool.subset(
        torch.from_numpy(splits.pretraining_index))
    pretraining = seen if data.unlabeled_images is None else stream(
        ConcatSource(seen.source, host_source(data.unlabeled_images)))
    heldout = pool.subset(torch.from_numpy(splits.holdout))
    if _size(heldout) <= budget:
        heldout = _resident(heldout)
        budget -= _size(heldout)
    return PlacedData(
        pool=pool, pool_labels=splits.pool_labels.to(device),
        val=val, val_labels=None if val is None else splits.val_labels.to(device),
        test=stream(host_source(data.test_images)), test_labels=data.test_labels.to(device),
        pretraining=pretraining, heldout=heldout,
        channel_stats=_sampled_stats(seen, splits.seed), budget=budget, notes=notes)


def _size(images: Images) -> int:
    return nbytes(images.source) if images.streamed else images.tensor.numel()


def _resident(images: StreamedImages) -> ResidentImages:
    return ResidentImages(_decode_all(images.source, images.workers).to(images.device))


def _sampled_stats(pool: StreamedImages, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of up to :data:`STATS_SAMPLE` pool images (seeded sample),
    in [0, 1] units, accumulated in float64 chunk by chunk: a streamed pool is never whole
    in memory."""
    n = len(pool)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(n, generator=g)[:STATS_SAMPLE].sort().values
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for _, x in pool.batches(pick.split(256)):
        x = x.to("cpu", torch.float64).div_(255)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
        count += x[:, 0].numel()
    mean = total / count
    var = (squares - count * mean.square()) / max(1, count - 1)
    return mean.float(), var.clamp_min(0).sqrt().float()
