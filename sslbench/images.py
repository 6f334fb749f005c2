"""Where a split's images live, and how batches of them reach the device.

A data set plugin hands over its images in one of two host-side forms:

* a uint8 ``(N, 3, R, R)`` tensor, already decoded (CIFAR, SVHN, digits: small sets that a
  loader reads whole anyway);
* :class:`ImageFiles`: file paths, decoded on demand (``imagefolder``), so that a folder too
  large to decode up front can still be used.

The run then holds each split in one of two placements, with one interface:

* :class:`ResidentImages`: a uint8 tensor on the run's device. A batch is one indexing op
  on the device; nothing crosses the bus during training. Every data set that fits goes here.
* :class:`StreamedImages`: a host source read by a ``torch.utils.data.DataLoader``. Worker
  processes decode whole batches (``__getitems__``) off the training thread, the loader pins
  them, and they are copied to the device without blocking. Data sets that do not fit go here.

Both take an iterator of index batches (:meth:`batches`), so the training loops do not care
which one they have, and both hand back uint8 batches on the device: augmentation and pretext
transforms still run on whole batches there. The order of a streamed epoch is drawn ahead on
the CPU (the loader prefetches), from a generator of its own (:meth:`order_generator`).
Decoding is deterministic, so the number of workers never changes a result.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from .errors import SSLBenchError

__all__ = [
    'Images', 'ImageFiles', 'ResidentImages', 'StreamedImages', 'DecodeFailure',
    'decode_file', 'decode_bytes', 'pil_to_uint8', 'as_images', 'chunks', 'decode_all',
]

Index = Union[torch.Tensor, np.ndarray, Sequence[int]]


def _as_list(index: Index) -> list[int]:
    if isinstance(index, torch.Tensor):
        return index.tolist()
    return np.asarray(index, dtype=np.int64).tolist()


def _hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- host sources

@dataclass(frozen=True)
class DecodeFailure:
    """What a worker returns instead of a batch when a file cannot be read: raising inside a
    worker would reach the user as a multi-line traceback, this becomes one line."""

    message: str


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with 8 bits per channel, whatever the file held. PIL's own conversion clips 16- and
    32-bit greyscale to 255 (a 16-bit PNG comes out white) and floats likewise: those are
    rescaled from their range instead (16 bits: /257; 32-bit integers holding 16-bit values
    likewise; floats in [0, 1] or [0, 255]). Palette images with transparency go through RGBA
    (PIL asks for that) and lose the alpha channel, like every other mode with one."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
        elif mode == "I" and values.size and values.max() <= 255:
            top = 255.0
        else:
            top = 65535.0
        grey = np.clip(np.nan_to_num(values) / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _upright(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: a camera stores a portrait photo sideways with an
    EXIF orientation tag that viewers apply. Fed as stored, a rotation task would see inputs
    and targets a quarter turn off."""
    orientation = image.getexif().get(0x0112, 1)          # ExifTags.Base.Orientation
    return ImageOps.exif_transpose(image) if orientation not in (1, None) else image


def pil_to_uint8(image: Image.Image, resolution: int) -> torch.Tensor:
    """One PIL image to a (3, R, R) uint8 tensor: upright (EXIF orientation applied), RGB,
    shorter side to R, centre crop."""
    image = _to_rgb(_upright(image))
    w, h = image.size
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def decode_bytes(source: str | io.BytesIO, resolution: int, name: str) -> torch.Tensor:
    """An image file (a path, or its bytes) to a (3, R, R) uint8 tensor. A file that cannot
    be decoded is one line naming it (``name``): a truncated or corrupt file, one that is not
    an image, and a decompression bomb (more pixels than Pillow's ``MAX_IMAGE_PIXELS``,
    about 89 megapixels: a small file that would take gigabytes to decode)."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                return pil_to_uint8(image, resolution)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SSLBenchError(f"cannot read image {name!r}: a decompression bomb ({exc})") \
            from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise SSLBenchError(f"cannot read image {name!r}: {exc}") from None


def decode_file(path: str, resolution: int) -> torch.Tensor:
    """One image file to a (3, R, R) uint8 tensor; an unreadable file is one-line error."""
    return decode_bytes(path, resolution, path)


class ImageFiles(Dataset):
    """Image files, decoded to uint8 (3, R, R) when read. ``shape`` and ``dtype`` describe the
    images as if decoded, so an :class:`~sslbench.data.ImageData` can hold either form."""

    dtype = torch.uint8

    def __init__(self, paths: Sequence[str], resolution: int, root: str | None = None) -> None:
        self.paths = [str(p) for p in paths]
        self.resolution = int(resolution)
        self.root = root if root is not None else (
            os.path.commonpath(self.paths) if self.paths else "")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), 3, self.resolution, self.resolution)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def nbytes(self) -> int:
        return len(self.paths) * 3 * self.resolution ** 2

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return decode_file(self.paths[i], self.resolution)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor] | DecodeFailure:
        """A whole batch, as (positions, uint8 images); DataLoader workers call this."""
        try:
            images = torch.stack([decode_file(self.paths[i], self.resolution) for i in indices])
        except SSLBenchError as exc:
            return DecodeFailure(str(exc))
        return torch.tensor(indices, dtype=torch.int64), images

    def subset(self, index: Index) -> "ImageFiles":
        return ImageFiles([self.paths[i] for i in _as_list(index)], self.resolution, self.root)

    def fingerprint(self) -> str:
        """Paths (relative to the common folder) and sizes: reading every pixel of a data set
        that is too large to decode is what streaming avoids."""
        entries = [(os.path.relpath(p, self.root) if self.root else p, os.path.getsize(p))
                   for p in self.paths]
        return _hash("files", self.resolution, entries)


class TensorSource(Dataset):
    """A decoded host tensor served to a DataLoader (a set that fits in host memory but not on
    the device), batch by batch."""

    dtype = torch.uint8

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape)

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    def __len__(self) -> int:
        return len(self.images)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.tensor(indices, dtype=torch.int64)
        return index, self.images[index]

    def subset(self, index: Index) -> "TensorSource":
        return TensorSource(self.images[torch.as_tensor(_as_list(index), dtype=torch.int64)])


class ConcatSource(Dataset):
    """Two host sources end to end (the training pool, then an extra unlabeled split)."""

    dtype = torch.uint8

    def __init__(self, first: Dataset, second: Dataset) -> None:
        self.first, self.second = first, second

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.first.shape[1:])

    @property
    def nbytes(self) -> int:
        return self.first.nbytes + self.second.nbytes

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitems__(self, indices: list[int]):
        n = len(self.first)
        index = torch.tensor(indices, dtype=torch.int64)
        parts = []
        for source, mask, offset in ((self.first, index < n, 0), (self.second, index >= n, n)):
            if mask.any():
                got = source.__getitems__((index[mask] - offset).tolist())
                if isinstance(got, DecodeFailure):
                    return got
                parts.append((mask, got[1]))
        images = torch.empty((len(index), *parts[0][1].shape[1:]), dtype=torch.uint8)
        for mask, batch in parts:
            images[mask] = batch
        return index, images


def host_source(images: torch.Tensor | Dataset) -> Dataset:
    """The DataLoader-ready form of a split's host images."""
    return TensorSource(images) if isinstance(images, torch.Tensor) else images


def take(images: torch.Tensor | Dataset, index: Index) -> torch.Tensor | Dataset:
    """The images at ``index`` of a host tensor or source (a subset of files stays files)."""
    if isinstance(images, torch.Tensor):
        return images[torch.as_tensor(np.asarray(index), dtype=torch.int64)]
    return images.subset(index)


def nbytes(images: torch.Tensor | Dataset) -> int:
    return images.numel() if isinstance(images, torch.Tensor) else images.nbytes


# ----------------------------------------------------------------------------- placements

def _collate_as_is(batch):
    """``__getitems__`` already returns the whole batch; the loader must not re-stack it."""
    return batch


class ResidentImages:
    """uint8 (N, 3, R, R) images held in a tensor on the run's device."""

    streamed = False

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @property
    def index_device(self) -> torch.device:
        """Where index batches for :meth:`batches` are drawn: beside the images."""
        return self.tensor.device

    def __len__(self) -> int:
        return len(self.tensor)

    def __getitem__(self, index) -> torch.Tensor:
        return self.tensor[index]

    def subset(self, index: torch.Tensor) -> "ResidentImages":
        return ResidentImages(self.tensor[index.to(self.device)])

    def order_generator(self, generator: torch.Generator) -> torch.Generator:
        """The generator that draws batch order: the caller's own, on the device."""
        return generator

    def batches(self, index_batches: Iterable[torch.Tensor]
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(index, uint8 images) for each index batch, taken lazily on the device."""
        for idx in index_batches:
            yield idx, self.tensor[idx]

    def chunks(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Every image in order, ``batch_size`` at a time (prediction, feature extraction)."""
        for i in range(0, len(self.tensor), batch_size):
            yield self.tensor[i:i + batch_size]


class StreamedImages:
    """Images read from a host source through a DataLoader: ``workers`` processes decode
    whole batches, the loader pins them (on CUDA), and they reach the device asynchronously."""

    streamed = True

    def __init__(self, source: Dataset, device: torch.device, workers: int,
                 prefetch: int = 4) -> None:
        self.source, self.device, self.workers, self.prefetch = source, device, workers, prefetch

    @property
    def index_device(self) -> torch.device:
        """Index batches are drawn on the CPU: the loader hands them to its workers ahead."""
        return torch.device("cpu")

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index) -> torch.Tensor:
        """Decode the images at ``index`` now (for small picks: exemplar's surrogates, a
        preview); training reads through :meth:`batches` instead."""
        if isinstance(index, slice):
            index = torch.arange(len(self))[index]
        index = torch.as_tensor(index).reshape(-1).cpu()
        if len(index) == 0:
            return torch.empty((0, *self.source.shape[1:]), dtype=torch.uint8, device=self.device)
        return torch.cat([x for _, x in self.batches(index.split(256))])

    def subset(self, index: torch.Tensor) -> "StreamedImages":
        return StreamedImages(self.source.subset(index.cpu()), self.device, self.workers,
                              self.prefetch)

    def order_generator(self, generator: torch.Generator) -> torch.Generator:
        """A CPU generator seeded from ``generator``'s seed: the order is drawn ahead of the
        steps (the loader prefetches), so it cannot share the device generator's stream."""
        seed = int(_hash("order", generator.initial_seed()), 16) % (2 ** 63)
        return torch.Generator().manual_seed(seed)

    def batches(self, index_batches: Iterable[torch.Tensor]
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(index, uint8 images) on the device for each index batch, decoded ahead by the
        workers (``workers=0`` decodes in this thread: for debugging)."""
        loader = DataLoader(
            self.source, batch_sampler=(_as_list(i) for i in index_batches),
            num_workers=self.workers, collate_fn=_collate_as_is,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=self.prefetch if self.workers else None)
        for item in loader:
            if isinstance(item, DecodeFailure):
                raise SSLBenchError(item.message)
            index, images = item
            yield (index.to(self.device, non_blocking=True),
                   images.to(self.device, non_blocking=True))

    def chunks(self, batch_size: int) -> Iterator[torch.Tensor]:
        for _, images in self.batches(torch.arange(len(self)).split(batch_size)):
            yield images


Images = Union[ResidentImages, StreamedImages]


def as_images(images: torch.Tensor | Images) -> Images:
    """A placement as it is; a uint8 tensor (already where it should be) as resident."""
    return ResidentImages(images) if isinstance(images, torch.Tensor) else images


def chunks(images: torch.Tensor | Images, batch_size: int) -> Iterator[torch.Tensor]:
    """Every image of a tensor or a placement, in order, ``batch_size`` at a time."""
    return as_images(images).chunks(batch_size)


def decode_all(images: torch.Tensor | Dataset, workers: int) -> torch.Tensor:
    """A host source decoded whole into a host uint8 tensor, by DataLoader workers."""
    if isinstance(images, torch.Tensor):
        return images
    return StreamedImages(images, torch.device("cpu"), workers)[torch.arange(len(images))]


def default_workers() -> int:
    """DataLoader workers for streamed data: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))

