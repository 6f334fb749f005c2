"""``imagefolder:PATH``: one sub-folder per class, as torchvision's ImageFolder reads it.

If PATH holds ``train/`` and ``test/`` folders (each with class sub-folders) they are used as
the splits; otherwise a stratified, seeded 80/20 train/test split is made, and the test files
are recorded in the split file beside the results. The loader only lists the files
(:class:`~sslbench.images.ImageFiles`); the core decodes them (RGB, shorter side resized,
centre crop to the run's resolution) in DataLoader workers, once if the data set fits on the
device, or batch by batch while training if it does not (:mod:`sslbench._core.placement`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

import sslbench
from sslbench.data import DatasetRequest, DatasetSpec, ImageData, stratified_split
from sslbench.errors import SSLBenchError
from sslbench.images import ImageFiles


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _images_below(folder: Path, root: Path) -> list[str]:
    """Image files of one class folder, each once. Hidden files and folders are skipped;
    symbolic links are followed, except back up into the data set (a loop such as
    ``daisy/up -> ..``) or into another class's folder (those files are that class's); a
    folder reached twice is walked once, and two paths to one file count once."""
    top, here = os.path.realpath(root), os.path.realpath(folder)
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    found = []
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        elsewhere = _inside(real, top) and not _inside(real, here)
        if real in seen_dirs or elsewhere or _inside(top, real) and real != here:
            dirs[:] = []
            continue
        seen_dirs.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(_extensions()):
                continue
            path = os.path.join(current, name)
            # a plain file's real path is its real folder's plus its name: resolving every
            # one of CIFAR-10's 60,000 paths took seconds; only links need resolving
            link = os.path.islink(path)
            key = os.path.realpath(path) if link else os.path.join(real, name)
            if (key in seen_files or (link and not os.path.isfile(path))
                    or _inside(key, top) and not _inside(key, here)):
                continue
            seen_files.add(key)
            found.append(path)
    return found


# The image extensions torchvision's ImageFolder accepts (its IMG_EXTENSIONS; a test keeps
# them equal). Written out: importing torchvision.datasets imports every torchvision model,
# seconds that a folder listing does not need.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _extensions() -> tuple[str, ...]:
    return IMG_EXTENSIONS


def _scan(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, class index)]): one class per visible sub-folder of ``root``."""
    try:
        classes = sorted(e.name for e in os.scandir(root)
                         if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise SSLBenchError(f"cannot read folder {str(root)!r}: {exc.strerror}") from None
    if not classes:
        raise SSLBenchError(f"folder {str(root)!r} has no class sub-folders "
                            "(expected one sub-folder of images per class)")
    samples = [(path, c) for c, name in enumerate(classes)
               for path in _images_below(root / name, root)]
    if not samples:
        raise SSLBenchError(f"folder {str(root)!r} has class sub-folders but no images "
                            f"({', '.join(_extensions())})")
    return classes, samples


def load(request: DatasetRequest) -> ImageData:
    root = Path(request.argument).expanduser()
    if not root.exists():
        raise SSLBenchError(f"data folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise SSLBenchError(f"{str(root)!r} is not a folder")
    if not any(root.iterdir()):
        raise SSLBenchError(f"data folder {str(root)!r} is empty")
    prefix = str(root).rstrip(os.sep) + os.sep

    def rel(path: str) -> str:      # relpath's work, for 60,000 paths below root
        return path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, train = _scan(root / "train")
        test_classes, test = _scan(root / "test")
        if test_classes != classes:
            raise SSLBenchError(f"{str(root)!r}: train/ and test/ have different class folders")
        provenance = {"test_split": "the folder's test/"}
    else:
        classes, samples = _scan(root)
        labels = np.array([s[1] for s in samples])
        train_idx, test_idx = stratified_split(labels, 0.2, request.split_seed)
        train = [samples[i] for i in train_idx]
        test = [samples[i] for i in test_idx]
        provenance = {"test_split": "stratified 20%", "split_seed": request.split_seed,
                      "test_files": [rel(p) for p, _ in test]}
    provenance["root"] = str(root)
    provenance["train_files"] = [rel(p) for p, _ in train]
    return ImageData(
        name=root.name, classes=classes,
        train_images=ImageFiles([p for p, _ in train], request.resolution, str(root)),
        train_labels=torch.tensor([c for _, c in train], dtype=torch.int64),
        test_images=ImageFiles([p for p, _ in test], request.resolution, str(root)),
        test_labels=torch.tensor([c for _, c in test], dtype=torch.int64),
        provenance=provenance)


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("imagefolder", load, "one sub-folder of images per class",
                        takes_argument=True)]
