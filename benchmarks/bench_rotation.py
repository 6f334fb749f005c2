"""Rotation pretraining throughput on 2 CPU cores: sslbench's device-resident batched path
against (a) the model-only ceiling, the same backbone's training step on batches already in
memory, and (b) a naive pipeline in the style of the classic code: per-image PIL flips and
rotations in ``Dataset.__getitem__``, a DataLoader with workers, NCHW fp32, no caching.
All three train the same SmallCNN with the same batch size (128 source images, 512 inputs).
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from conftest import FIGURES, record
from PIL import Image
from sslbench_plugins.backbones.smallcnn import SmallCNN
from sslbench_plugins.tasks.rotation import Rotation, rotate_batch

from sslbench.augment import random_flip, to_float
from sslbench.seeding import make_generator
from sslbench.training import epoch_batches, make_optimizer, to_device

BATCH = 128
STEPS = 8
DEVICE = torch.device("cpu")


def new_model(channels_last=True):
    torch.manual_seed(0)
    backbone, head = SmallCNN(), torch.nn.Linear(192, 4)
    if channels_last:
        backbone, head = to_device(backbone, DEVICE), to_device(head, DEVICE)
    return backbone, head, make_optimizer([backbone, head], 0.05, 5e-4, DEVICE)


def train_step(backbone, head, opt, inputs, targets):
    loss = F.cross_entropy(head(backbone(inputs)), targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def test_model_only_ceiling(benchmark, flowers32):
    """The training step alone, on rotated batches prepared before timing."""
    images = flowers32[0]
    backbone, head, opt = new_model()
    gen = make_generator(0, "bench")
    batches = [rotate_batch(to_float(images[idx])) for idx in
               list(epoch_batches(len(images), BATCH, gen, DEVICE))[:STEPS]]

    def run():
        for x, y in batches:
            train_step(backbone, head, opt, x, y)
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    record(benchmark, "rotation/model_only", STEPS * BATCH)


def test_sslbench_pretraining_step(benchmark, flowers32):
    """sslbench's path: uint8 images in memory, index, flip + rotate the batch, train."""
    images = flowers32[0]
    backbone, head, opt = new_model()
    task = Rotation()
    gen = make_generator(0, "bench")

    def run():
        for i, idx in enumerate(epoch_batches(len(images), BATCH, gen, DEVICE)):
            if i == STEPS:
                break
            out = task.pretext_loss(backbone, head, to_float(images[idx]), gen)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    record(benchmark, "rotation/sslbench", STEPS * BATCH)


def test_sslbench_batch_construction(benchmark, flowers32):
    """Only building the pretext batch (index, to float, flip, 4 rotations)."""
    images = flowers32[0]
    gen = make_generator(0, "bench")
    idx = torch.arange(BATCH)

    def run():
        for _ in range(STEPS):
            rotate_batch(random_flip(to_float(images[idx]), gen))
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    record(benchmark, "rotation/sslbench_batch", STEPS * BATCH)


class NaiveRotationDataset(torch.utils.data.Dataset):
    """The classic way: PIL images, per-image flip and rotations, per-image tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        if random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        views = [TF.normalize(TF.to_tensor(img.rotate(90 * k)), [0.5] * 3, [0.25] * 3)
                 for k in range(4)]
        return torch.stack(views), torch.arange(4)


def naive_loader(images, workers):
    return torch.utils.data.DataLoader(NaiveRotationDataset(images), batch_size=BATCH,
                                       shuffle=True, num_workers=workers, drop_last=True,
                                       persistent_workers=workers > 0)


@pytest.mark.parametrize("workers", [0, 2])
def test_naive_pipeline(benchmark, flowers32, workers):
    """Same backbone, NCHW fp32, data from per-image PIL transforms in a DataLoader."""
    backbone, head, opt = new_model(channels_last=False)
    loader = naive_loader(flowers32[0], workers)

    def run():
        for i, (x, y) in enumerate(loader):
            if i == STEPS:
                break
            train_step(backbone, head, opt, x.flatten(0, 1), y.flatten())
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    record(benchmark, f"rotation/naive_workers{workers}", STEPS * BATCH)


def test_ratios(benchmark):
    """Not a timing: the ratios of the figures above, stored for RESULTS.md."""
    needed = ["rotation/sslbench", "rotation/model_only", "rotation/naive_workers0",
              "rotation/naive_workers2"]
    if not all(k in FIGURES for k in needed):
        pytest.skip("run the whole file to get the ratios")
    best_naive = max(FIGURES["rotation/naive_workers0"], FIGURES["rotation/naive_workers2"])
    FIGURES["rotation/ratio_to_ceiling"] = FIGURES["rotation/sslbench"] / FIGURES["rotation/model_only"]
    FIGURES["rotation/ratio_to_naive"] = FIGURES["rotation/sslbench"] / best_naive
    benchmark.extra_info.update({k: FIGURES[k] for k in FIGURES if "ratio" in k})
    benchmark.pedantic(lambda: None, rounds=1)
