"""``imagefolder:PATH``: one sub-folder per class, as torchvision's ImageFolder reads it.

If PATH holds ``train/`` and ``test/`` folders (each with class sub-folders) they are used as
the splits; otherwise a stratified, seeded 80/20 train/test split is made, and the test files
are recorded in the split file beside the results. The loader only lists the files
(:class:`~sslbench.images.ImageFiles`); the core decodes them (RGB, shorter side resized,
centre crop to the run's resolution) in DataLoader workers, once if the data set fits on the
device, or batch by batch while training if it does not (:mod:`sslbench.placement`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

import sslbench
from sslbench.data import DatasetRequest, DatasetSpec, ImageData, stratified_split
from sslbench.errors import SSLBenchError
from sslbench.images import ImageFiles


def _scan(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    try:
        classes, class_to_idx = find_classes(str(root))
    except FileNotFoundError:
        raise SSLBenchError(f"folder {str(root)!r} has no class sub-folders "
                            "(expected one sub-folder of images per class)") from None
    samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS,
                           allow_empty=True)
    if not samples:
        raise SSLBenchError(f"folder {str(root)!r} has class sub-folders but no images "
                            f"({', '.join(IMG_EXTENSIONS)})")
    return classes, samples


def load(request: DatasetRequest) -> ImageData:
    root = Path(request.argument).expanduser()
    if not root.exists():
        raise SSLBenchError(f"data folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise SSLBenchError(f"{str(root)!r} is not a folder")
    if not any(root.iterdir()):
        raise SSLBenchError(f"data folder {str(root)!r} is empty")
    rel = lambda p: os.path.relpath(p, root)  # noqa: E731
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
