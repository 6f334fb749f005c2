"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes),
upscaled to the run's resolution as RGB. Embedded in scikit-learn, so ``sslbench run`` works
on a fresh machine without any download. There is no official test split: a stratified,
seeded 80/20 split is made (``--split-seed``)."""

from __future__ import annotations

import numpy as np
import torch

import sslbench
from sslbench.data import DatasetRequest, DatasetSpec, ImageData, resize_uint8, stratified_split


def load(request: DatasetRequest) -> ImageData:
    from sklearn.datasets import load_digits   # here, not when sslbench starts
    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)        # (N, 8, 8)
    images = torch.from_numpy(pixels)[:, None].expand(-1, 3, -1, -1).contiguous()
    images = resize_uint8(images, request.resolution)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train, test = stratified_split(digits.target, 0.2, request.split_seed)
    return ImageData(
        name="digits", classes=[str(i) for i in range(10)],
        train_images=images[train], train_labels=labels[train],
        test_images=images[test], test_labels=labels[test],
        provenance={"source": "sklearn.datasets.load_digits", "test_split": "stratified 20%",
                    "split_seed": request.split_seed, "test_index": test.tolist()})


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("digits", load, "scikit-learn's 8x8 digits upscaled (embedded default)")]
