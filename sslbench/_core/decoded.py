"""Decoded images, cached on disk by the content of their files.

Decoding an image folder (JPEG to RGB, resized and centre-cropped to the run's resolution) is
the same work in every sweep of that folder, and in every unit of a sweep that Ray or Slurm
runs in a process of its own. So a split that is held whole in memory is decoded once and
kept under ``CACHE/decoded/``: the next run reads the SHA-256 of each file's bytes (far
cheaper than decoding them; the duplicate check needs those digests anyway) and, when a
cached array was decoded from exactly those bytes, at that resolution, by this decoder, loads
it instead of decoding.

Within one process, rows are also remembered by digest: the duplicate check decodes a split,
and placing it (or the split left by ``--dedup``, a subset of it) takes the same rows without
decoding or reading again.

The key is the data set's folder, the ordered list of file digests, the resolution and
:data:`DECODER` (the source of the decoding functions and Pillow's version), so editing a file
or the decoder, or upgrading Pillow, decodes afresh, and no two data sets share an entry. Files are written atomically and read without running code
(:func:`~sslbench._core.atomic.safe_torch_load`); a file that is truncated, corrupt or holds
anything else (a wrong shape, a checksum that does not match its pixels) is named in a
warning and decoded again.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import SSLBenchError
from ..images import ImageFiles, _to_rgb, decode_all, pil_to_uint8
from .atomic import atomic_torch_save, safe_torch_load


def _decoder_identity() -> str:
    import PIL
    source = inspect.getsource(pil_to_uint8) + inspect.getsource(_to_rgb)
    return hashlib.sha256(f"{source}\nPillow {PIL.__version__}".encode()).hexdigest()[:16]


DECODER = _decoder_identity()


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (the duplicate check's exact-copy test uses the same)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise SSLBenchError(f"cannot read image {path!r}: {exc.strerror or exc}") from None
    return h.hexdigest()


def _checksum(images: torch.Tensor) -> str:
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


class DecodedImages:
    """Decodes :class:`~sslbench.images.ImageFiles` whole, through the disk cache in
    ``directory`` (``None``: memory only)."""

    def __init__(self, directory: Path | None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.warn = warn
        self._digests: dict[tuple[str, ...], list[str]] = {}
        self._rows: dict[tuple[str, int], tuple[torch.Tensor, int]] = {}
        self.decoded = 0      # images actually decoded by this process (for tests, benchmarks)
        self.loaded = 0       # images read from the disk cache

    def digests(self, files: ImageFiles) -> list[str]:
        """The SHA-256 of every file of ``files``, in order (read once per process)."""
        key = tuple(files.paths)
        if key not in self._digests:
            self._digests[key] = [file_digest(p) for p in files.paths]
        return self._digests[key]

    def path(self, files: ImageFiles, digests: list[str]) -> Path | None:
        """The entry of ``files``: its folder, its files' digests, the resolution and the
        decoder (two data sets never share an entry, even with byte-identical files)."""
        if self.directory is None:
            return None
        key = hashlib.sha256("\n".join(
            [DECODER, str(files.resolution), files.root, *digests]).encode()).hexdigest()[:24]
        return self.directory / f"{key}.pt"

    def decode(self, files: ImageFiles, workers: int) -> torch.Tensor:
        """Every image of ``files`` as a host uint8 (N, 3, R, R) tensor: from this process's
        memory, else from the disk cache, else decoded by ``workers`` DataLoader processes
        (and then cached)."""
        digests = self.digests(files)
        r = files.resolution
        if digests and all((d, r) in self._rows for d in digests):
            return self._gather([self._rows[(d, r)] for d in digests])
        path = self.path(files, digests)
        images = self._load(path, (len(digests), 3, r, r)) if path is not None else None
        if images is None:
            images = decode_all(files, workers)
            self.decoded += len(images)
            if path is not None:
                atomic_torch_save({"decoder": DECODER, "resolution": r, "images": images,
                                   "sha256": _checksum(images)}, path)
        else:
            self.loaded += len(images)
        for row, d in enumerate(digests):
            self._rows[(d, r)] = (images, row)
        return images

    def release(self) -> None:
        """Forget the rows held in memory (once a data set is placed: the placed copy is
        what the run keeps; the disk cache stays)."""
        self._rows.clear()

    @staticmethod
    def _gather(rows: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
        """The remembered rows as one tensor: one indexing operation per source tensor."""
        sources = {id(t): t for t, _ in rows}
        if len(sources) == 1:
            (source,) = sources.values()
            index = torch.tensor([i for _, i in rows], dtype=torch.int64)
            return source if len(index) == len(source) and bool(
                (index == torch.arange(len(source))).all()) else source[index]
        return torch.stack([t[i] for t, i in rows])

    def _load(self, path: Path, shape: tuple[int, ...]) -> torch.Tensor | None:
        if not path.exists():
            return None
        entry = safe_torch_load(path, self.warn)
        if entry is None:
            return None
        images = entry.get("images") if isinstance(entry, dict) else None
        problem = (
            "not a decoded-images entry" if not isinstance(images, torch.Tensor) else
            f"holds {images.dtype} {tuple(images.shape)}, expected uint8 {shape}"
            if images.dtype != torch.uint8 or tuple(images.shape) != shape else
            "its pixels do not match their checksum" if entry.get("sha256") != _checksum(images)
            else None)
        if problem:
            if self.warn is not None:
                self.warn(f"ignoring cache file {str(path)!r} (decoding again): {problem}")
            return None
        return images
