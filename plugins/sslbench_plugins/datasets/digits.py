"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes),
upscaled to the run's resolution as RGB. Embedded in scikit-learn, so ``sslbench run`` works
on a fresh machine without any download. There is no official test split: a stratified,
seeded 80/20 split is made (``--split-seed``)."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

import sslbench
from sslbench.data import DatasetRequest, DatasetSpec, ImageData, resize_uint8, stratified_split
from sslbench.errors import SSLBenchError


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 8, 8) with values 0..16, labels (N,)), as ``load_digits`` gives them.

    The file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the
    label per row) is read directly: importing scikit-learn costs 2-4 s (scipy.stats), paid
    again by every process a sweep starts (Ray and Slurm workers, torchrun ranks)."""
    spec = importlib.util.find_spec("sklearn")        # finds the package, imports nothing
    if spec is None or not spec.submodule_search_locations:
        raise SSLBenchError("the digits data set comes with scikit-learn: "
                            "pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():                            # a scikit-learn that stores it otherwise
        from sklearn.datasets import load_digits
        digits = load_digits()
        return digits.images, digits.target
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1].astype(int)


def load(request: DatasetRequest) -> ImageData:
    pixel_values, target = read_digits()
    pixels = np.round(pixel_values * (255.0 / 16.0)).astype(np.uint8)        # (N, 8, 8)
    images = torch.from_numpy(pixels)[:, None].expand(-1, 3, -1, -1).contiguous()
    images = resize_uint8(images, request.resolution)
    labels = torch.from_numpy(target.astype(np.int64))
    train, test = stratified_split(target, 0.2, request.split_seed)
    return ImageData(
        name="digits", classes=[str(i) for i in range(10)],
        train_images=images[train], train_labels=labels[train],
        test_images=images[test], test_labels=labels[test],
        provenance={"source": "sklearn.datasets.load_digits", "test_split": "stratified 20%",
                    "split_seed": request.split_seed, "test_index": test.tolist()})


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("digits", load, "scikit-learn's 8x8 digits upscaled (embedded default)")]
