"""Downloadable data sets through torchvision: ``cifar10``, ``cifar100``, ``stl10``, ``svhn``
and ``flowers102``, stored under ``--data-dir`` and fetched only with ``--download``.

torchvision reads (and, when downloading, verifies) the official on-disk formats; this module
turns each into uint8 tensors at the run's resolution. STL-10's 100,000-image unlabeled split
joins pretraining. Flowers-102's official train and val splits (10 images per class each)
together form the training split; sslbench carves its own validation split from it.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from torch.utils.data import DataLoader

import sslbench
from sslbench.data import (DatasetRequest, DatasetSpec, ImageData, hwc_to_tensor,
                           pil_to_uint8, resize_uint8)
from sslbench.errors import SSLBenchError


def _open(name: str, factory: str, request: DatasetRequest, **kwargs):
    """``torchvision.datasets.<factory>`` under ``--data-dir`` (torchvision is imported here,
    when a set is loaded, not when sslbench starts)."""
    import torchvision.datasets as tvd
    try:
        factory = getattr(tvd, factory)
        return factory(root=request.data_dir, download=request.download, **kwargs)
    except RuntimeError as exc:
        if "download=True" in str(exc) or "not found" in str(exc).lower():
            raise SSLBenchError(
                f"{name} not found or corrupted under {request.data_dir!r}; pass --download "
                "to fetch it, or --data-dir to point at it") from None
        raise
    except OSError as exc:  # no network, unwritable folder, ...
        raise SSLBenchError(f"cannot open {name} under {request.data_dir!r}: {exc}") from None


def _labels(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=torch.int64)


def _cifar(name: str, factory):
    def load(request: DatasetRequest) -> ImageData:
        train = _open(name, factory, request, train=True)
        test = _open(name, factory, request, train=False)
        res = request.resolution
        return ImageData(name, list(train.classes),
                         resize_uint8(hwc_to_tensor(train.data), res), _labels(train.targets),
                         resize_uint8(hwc_to_tensor(test.data), res), _labels(test.targets),
                         provenance={"source": f"torchvision.datasets.{factory}"})
    return load


def load_stl10(request: DatasetRequest) -> ImageData:
    res = request.resolution
    train = _open("stl10", "STL10", request, split="train")
    test = _open("stl10", "STL10", request, split="test")
    unlabeled = _open("stl10", "STL10", request, split="unlabeled")
    return ImageData("stl10", list(train.classes),
                     resize_uint8(torch.from_numpy(train.data), res), _labels(train.labels),
                     resize_uint8(torch.from_numpy(test.data), res), _labels(test.labels),
                     unlabeled_images=resize_uint8(torch.from_numpy(unlabeled.data), res),
                     provenance={"source": "torchvision.datasets.STL10",
                                 "unlabeled": "the 'unlabeled' split joins pretraining"})


def load_svhn(request: DatasetRequest) -> ImageData:
    res = request.resolution
    train = _open("svhn", "SVHN", request, split="train")
    test = _open("svhn", "SVHN", request, split="test")
    return ImageData("svhn", [str(i) for i in range(10)],
                     resize_uint8(torch.from_numpy(train.data), res), _labels(train.labels),
                     resize_uint8(torch.from_numpy(test.data), res), _labels(test.labels),
                     provenance={"source": "torchvision.datasets.SVHN"})


def _decode_split(dataset, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a file-backed torchvision data set once, in DataLoader worker processes."""
    dataset.transform = functools.partial(pil_to_uint8, resolution=resolution)
    workers = min(8, os.cpu_count() or 1)
    images, labels = [], []
    for x, y in DataLoader(dataset, batch_size=256, num_workers=workers):
        images.append(x)
        labels.append(y)
    return torch.cat(images), torch.cat(labels).to(torch.int64)


def load_flowers102(request: DatasetRequest) -> ImageData:
    res = request.resolution
    parts = [_decode_split(_open("flowers102", "Flowers102", request, split=s), res)
             for s in ("train", "val", "test")]
    import torchvision.datasets as tvd
    classes = list(getattr(tvd.Flowers102, "classes", [])) or [str(i) for i in range(102)]
    return ImageData("flowers102", classes,
                     torch.cat([parts[0][0], parts[1][0]]), torch.cat([parts[0][1], parts[1][1]]),
                     parts[2][0], parts[2][1],
                     provenance={"source": "torchvision.datasets.Flowers102",
                                 "train_split": "official train + val"})


@sslbench.hookimpl
def sslbench_datasets():
    return [
        DatasetSpec("cifar10", _cifar("cifar10", "CIFAR10"), "CIFAR-10 (torchvision; --download)"),
        DatasetSpec("cifar100", _cifar("cifar100", "CIFAR100"), "CIFAR-100 (torchvision; --download)"),
        DatasetSpec("stl10", load_stl10, "STL-10 with its 100k unlabeled split (torchvision; --download)"),
        DatasetSpec("svhn", load_svhn, "SVHN train/test (torchvision; --download)"),
        DatasetSpec("flowers102", load_flowers102, "Oxford Flowers-102 (torchvision; --download)"),
    ]
