"""Data hygiene: the same image twice in a data set, within a split or across splits.

A duplicate across the training and test splits inflates test accuracy (the network has seen
the test image); a duplicate whose copies carry different labels makes one of them wrong
whatever the network does. Both happen in real image folders (the flowers set this project
is tested on has byte-identical files filed under two classes). So every data set is checked
when it is loaded, in one pass over its images decoded at the run's resolution:

* **exact duplicates**: identical file bytes (image files) or identical pixels (data sets a
  loader hands over decoded), by SHA-256;
* **near duplicates**: images whose perceptual hash differs in at most :data:`NEAR_BITS` of 64
  bits. The hash is pHash (the signs of the 8x8 lowest frequencies of the DCT of the image in
  grayscale at 32x32, against their median), robust to re-encoding, resizing and small
  brightness changes; at 4 bits it finds re-saved and lightly edited copies without pairing
  merely similar photographs (measured on flowers: see docs/data.md).

Found groups are reported once per data set (a one-line warning, the full list in the split
file), recorded in every cell's record, and, with ``--dedup``, removed before the data set is
split: copies across the training and test splits keep the test copy, copies within a split
keep one, and groups whose copies disagree on the label are dropped whole (which label is
right cannot be known). The unlabeled extra split (STL-10's) is not checked.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data import ImageData
from ..errors import SSLBenchError
from ..images import DecodeFailure, ImageFiles, decode_bytes
from .decoded import DecodedImages

NEAR_BITS = 4          # pHash bits two images may differ in and still count as near duplicates
HASH_SIDE = 32         # the side of the grayscale image whose DCT makes the hash
LOW = 8                # the LOW x LOW lowest frequencies give the 64 bits


# ----------------------------------------------------------------------------- hashing

@functools.lru_cache(maxsize=4)
def _dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix: ``D @ x`` transforms the columns of ``x``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.float()


def perceptual_hash(images: torch.Tensor) -> np.ndarray:
    """64-bit pHash of each uint8 (N, 3, H, W) image, as uint64 (N,)."""
    x = images.float().div(255)
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    if gray.shape[-1] != HASH_SIDE or gray.shape[-2] != HASH_SIDE:
        gray = F.interpolate(gray, size=(HASH_SIDE, HASH_SIDE), mode="bilinear",
                             antialias=True, align_corners=False)
    d = _dct_matrix(HASH_SIDE)
    coeffs = (d @ gray[:, 0] @ d.T)[:, :LOW, :LOW].reshape(len(x), -1)
    bits = (coeffs > coeffs.median(dim=1, keepdim=True).values).numpy()
    return np.packbits(bits, axis=1).view(">u8").reshape(-1).astype(np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64: numpy's own count where it has one (2.0 and later)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return np.unpackbits(x.astype(">u8").view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(-1)


class _HashedFiles(Dataset):
    """Image files read once each: the SHA-256 of the bytes, and the decoded pixels from the
    same bytes, a whole batch per call (DataLoader workers)."""

    def __init__(self, files: ImageFiles) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitems__(self, indices: list[int]):
        digests, images = [], []
        for i in indices:
            path = self.files.paths[i]
            try:
                with open(path, "rb") as f:
                    raw = f.read()
                images.append(decode_bytes(io.BytesIO(raw), self.files.resolution, path))
            except OSError as exc:
                return DecodeFailure(f"cannot read image {path!r}: {exc.strerror or exc}")
            except SSLBenchError as exc:
                return DecodeFailure(str(exc))
            digests.append(hashlib.sha256(raw).hexdigest())
        return digests, torch.stack(images)


def _identity(batch):
    return batch


def image_hashes(images: torch.Tensor | ImageFiles, workers: int = 0,
                 batch_size: int = 256, decoded: DecodedImages | None = None
                 ) -> tuple[list[str], np.ndarray]:
    """(exact digests, pHashes) of every image of a split, in order. With ``decoded`` (a
    split that the run will hold whole in memory), image files are decoded through its disk
    cache, and the run places the same pixels without decoding them again."""
    digests: list[str] = []
    hashes: list[np.ndarray] = []
    if isinstance(images, ImageFiles) and decoded is not None:
        digests = decoded.digests(images)
        images = decoded.decode(images, workers)
        hashes = [perceptual_hash(images[i:i + batch_size])
                  for i in range(0, len(images), batch_size)]
    elif isinstance(images, ImageFiles):
        loader = DataLoader(_HashedFiles(images),
                            batch_sampler=[list(range(i, min(i + batch_size, len(images))))
                                           for i in range(0, len(images), batch_size)],
                            num_workers=workers, collate_fn=_identity)
        for item in loader:
            if isinstance(item, DecodeFailure):
                raise SSLBenchError(item.message)
            batch_digests, batch = item
            digests += batch_digests
            hashes.append(perceptual_hash(batch))
    else:
        for i in range(0, len(images), batch_size):
            batch = images[i:i + batch_size].contiguous()
            digests += [hashlib.sha256(x.numpy().tobytes()).hexdigest() for x in batch]
            hashes.append(perceptual_hash(batch))
    return digests, (np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64))


def near_pairs(hashes: np.ndarray, max_bits: int) -> list[tuple[int, int]]:
    """Pairs (i < j) whose hashes differ in at most ``max_bits`` bits. By the pigeonhole
    principle such a pair agrees exactly on at least one of ``max_bits + 1`` bands of the 64
    bits, so only pairs sharing a band value are compared (no all-pairs scan)."""
    n = len(hashes)
    if n < 2:
        return []
    bands = max_bits + 1
    edges = np.linspace(0, 64, bands + 1).round().astype(int)
    found: set[tuple[int, int]] = set()
    for lo, hi in zip(edges[:-1], edges[1:]):
        key = (hashes >> np.uint64(64 - hi)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        stops = np.r_[starts[1:], n]
        for a, b in zip(starts, stops):
            if b - a < 2:
                continue
            members = order[a:b]
            ii, jj = np.triu_indices(b - a, k=1)
            close = _popcount(hashes[members[ii]] ^ hashes[members[jj]]) <= max_bits
            for i, j in zip(members[ii[close]], members[jj[close]]):
                found.add((int(min(i, j)), int(max(i, j))))
    return sorted(found)


# ----------------------------------------------------------------------------- the report

@dataclass
class Member:
    split: str      # "train" or "test"
    index: int      # position in that split of the data set
    label: int
    name: str       # file path relative to the data set's folder, or "train[17]"


@dataclass
class DuplicateGroup:
    kind: str                      # "exact" (same bytes or pixels) or "near" (pHash)
    members: list[Member]

    @property
    def cross_split(self) -> bool:
        return len({m.split for m in self.members}) > 1

    @property
    def conflicting(self) -> bool:
        return len({m.label for m in self.members}) > 1


@dataclass
class HygieneReport:
    """The duplicate groups of one loaded data set."""

    dataset: str
    classes: list[str]
    n_images: int
    groups: list[DuplicateGroup] = field(default_factory=list)
    near_bits: int = NEAR_BITS
    deduplicated: dict[str, int] | None = None   # images dropped per split by --dedup
    # a fingerprint of the contents: every image's SHA-256 (of its file's bytes, or of its
    # pixels) and label, in order, train then test (before --dedup): the same data set
    # wherever its folder is and whatever its files are named
    content: str | None = None

    def count(self, what: str) -> int:
        groups = {"all": self.groups,
                  "cross_split": [g for g in self.groups if g.cross_split],
                  "conflicting": [g for g in self.groups if g.conflicting]}[what]
        return len(groups)

    def summary(self) -> dict[str, Any]:
        """What every record of the data set carries."""
        return {"duplicate_groups": self.count("all"),
                "exact_groups": sum(g.kind == "exact" for g in self.groups),
                "near_groups": sum(g.kind == "near" for g in self.groups),
                "images_in_groups": sum(len(g.members) for g in self.groups),
                "cross_split_groups": self.count("cross_split"),
                "label_conflict_groups": self.count("conflicting"),
                "near_bits": self.near_bits, "deduplicated": self.deduplicated}

    def to_json(self) -> dict[str, Any]:
        """The summary and every group, with file names and class names (the split file)."""
        return {**self.summary(), "method": (
                    f"exact: SHA-256 of the file bytes (or pixels); near: pHash "
                    f"(DCT of a {HASH_SIDE}x{HASH_SIDE} grayscale image, {LOW * LOW} bits) "
                    f"within {self.near_bits} bits, at the run's resolution"),
                "groups": [{"kind": g.kind, "cross_split": g.cross_split,
                            "conflicting_labels": g.conflicting,
                            "members": [{"split": m.split, "index": m.index,
                                         "class": self.classes[m.label], "name": m.name}
                                        for m in g.members]} for g in self.groups]}

    def message(self) -> str | None:
        """One line for the user, or None when the data set is clean."""
        if not self.groups:
            return None
        s = self.summary()
        conflicts = [g for g in self.groups if g.conflicting]
        pairs = sorted({"/".join(sorted({self.classes[m.label] for m in g.members}))
                        for g in conflicts})
        text = (f"{self.dataset}: {s['duplicate_groups']} groups of duplicated images "
                f"({s['exact_groups']} exact, {s['near_groups']} near; "
                f"{s['images_in_groups']} images): {s['cross_split_groups']} across the "
                f"train/test split, {s['label_conflict_groups']} with conflicting labels"
                + (f" ({', '.join(pairs)})" if pairs else "") + "; listed in the split file")
        if self.deduplicated is not None:
            text += (f"; --dedup dropped {self.deduplicated['train']} training and "
                     f"{self.deduplicated['test']} test images")
        else:
            text += "; --dedup drops them"
        return text


def _names(images, split: str) -> list[str]:
    """Each image's name in the report: its path below the data set's folder."""
    if isinstance(images, ImageFiles):
        import os
        if not images.root:
            return list(images.paths)
        prefix = images.root.rstrip(os.sep) + os.sep
        return [p[len(prefix):] if p.startswith(prefix) else os.path.relpath(p, images.root)
                for p in images.paths]
    return [f"{split}[{i}]" for i in range(len(images))]


def find_duplicates(data: ImageData, workers: int = 0, near_bits: int = NEAR_BITS,
                    decoded: DecodedImages | None = None) -> HygieneReport:
    """Every group of exact or near-duplicate images in the train and test splits (image
    files decoded through ``decoded``, when given: see :func:`image_hashes`)."""
    members: list[Member] = []
    digests: list[str] = []
    hashes: list[np.ndarray] = []
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        d, h = image_hashes(images, workers, decoded=decoded)
        digests += d
        hashes.append(h)
        members += [Member(split, i, int(y), name) for i, (y, name) in
                    enumerate(zip(labels.tolist(), _names(images, split)))]
    phash = np.concatenate(hashes)
    parent = list(range(len(members)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, d in enumerate(digests):
        if d in first:
            parent[find(i)] = find(first[d])
        else:
            first[d] = i
    representatives = sorted(first.values())           # one image per exact class
    near = near_pairs(phash[representatives], near_bits) if near_bits >= 0 else []
    for a, b in near:
        parent[find(representatives[a])] = find(representatives[b])
    groups: dict[int, list[int]] = {}
    for i in range(len(members)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for idx in groups.values():
        if len(idx) < 2:
            continue
        # "exact" when every copy has the same bytes; "near" when a pHash link joined them
        kind = "exact" if len({digests[i] for i in idx}) == 1 else "near"
        out.append(DuplicateGroup(kind, [members[i] for i in idx]))
    out.sort(key=lambda g: (g.members[0].split, g.members[0].index))
    content = hashlib.sha256()
    for m, d in zip(members, digests):
        content.update(f"{m.split} {m.label} {d}\n".encode())
    return HygieneReport(dataset=data.name, classes=list(data.classes), n_images=len(members),
                         groups=out, near_bits=near_bits, content=content.hexdigest()[:16])


def deduplicate(data: ImageData, report: HygieneReport) -> ImageData:
    """``data`` without the duplicates of ``report``: label-conflicting groups are dropped
    whole; otherwise one copy stays, the test copy where there is one."""
    drop = {"train": set(), "test": set()}
    for g in report.groups:
        if g.conflicting:
            keep = None
        else:
            keep = next((m for m in g.members if m.split == "test"), g.members[0])
        for m in g.members:
            if m is not keep:
                drop[m.split].add(m.index)
    kept = {}
    for split in ("train", "test"):
        n = len(getattr(data, f"{split}_labels"))
        kept[split] = np.array([i for i in range(n) if i not in drop[split]], dtype=np.int64)
    if len(kept["train"]) == 0 or len(kept["test"]) == 0:
        raise SSLBenchError(f"--dedup would leave {data.name!r} without training or test images")

    def pick(images, index):
        if isinstance(images, ImageFiles):
            return images.subset(index)
        return images[torch.from_numpy(index)]

    provenance = dict(data.provenance)
    for split in ("train", "test"):
        files = provenance.get(f"{split}_files")
        if isinstance(files, list) and len(files) == len(getattr(data, f"{split}_labels")):
            provenance[f"{split}_files"] = [files[i] for i in kept[split]]
    provenance["dedup"] = {split: sorted(drop[split]) for split in drop}
    report.deduplicated = {split: len(drop[split]) for split in drop}
    return ImageData(
        name=data.name, classes=data.classes,
        train_images=pick(data.train_images, kept["train"]),
        train_labels=data.train_labels[torch.from_numpy(kept["train"])],
        test_images=pick(data.test_images, kept["test"]),
        test_labels=data.test_labels[torch.from_numpy(kept["test"])],
        unlabeled_images=data.unlabeled_images, provenance=provenance)
