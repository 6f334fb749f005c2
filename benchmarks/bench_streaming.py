"""The streamed data path (``--stream``), on the flowers JPEG files at 32 px: rotation
pretraining with SmallCNN, batch 128, in the same run:

* ``decode``: DataLoader workers decoding files alone (no training): the rate the streamed
  path can feed at most;
* ``resident``: the images already decoded on the device (sslbench's default for data sets
  that fit);
* ``streamed``: sslbench's streamed path: workers decode whole batches from the files, the
  task builds its inputs from the batch as tensors;
* ``naive_files``: the classic code's path on the same files: a Dataset that opens, resizes
  and rotates each image in PIL in ``__getitem__``, a DataLoader, NCHW fp32.

Without the flowers set, 1,024 random JPEGs of 128 px are written to a temporary folder.
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
from sslbench_plugins.tasks.rotation import Rotation

from sslbench.augment import to_float
from sslbench.images import ImageFiles, ResidentImages, StreamedImages, decode_all, pil_to_uint8
from sslbench._core.seeding import make_generator
from sslbench.training import epoch_batches, make_optimizer, to_device

BATCH, STEPS, RES, WORKERS, CPU = 128, 12, 32, 2, torch.device("cpu")


@pytest.fixture(scope="module")
def files(jpeg_paths) -> ImageFiles:
    return ImageFiles(jpeg_paths, RES)


def _rotation_steps(images, gen):
    """STEPS steps of rotation pretraining through ``images.batches`` (either placement)."""
    task = Rotation()
    torch.manual_seed(0)
    backbone = to_device(SmallCNN(), CPU)
    head = to_device(task.build_head(backbone), CPU)
    opt = make_optimizer([backbone, head], 0.05, 5e-4, CPU)
    order = images.order_generator(gen)
    index = list(epoch_batches(len(images), BATCH, order, images.index_device))[:STEPS]
    for _, batch in images.batches(index):
        loss = task.pretext_loss(backbone, head, to_float(batch), gen).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("workers", [0, WORKERS])
def test_decode(benchmark, files, workers):
    stream = StreamedImages(files, CPU, workers)
    index = torch.arange(STEPS * BATCH) % len(files)

    def run():
        for _ in stream.batches(index.split(BATCH)):
            pass
    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    record(benchmark, f"stream/decode_workers{workers}", STEPS * BATCH)


def test_resident(benchmark, files):
    images = ResidentImages(decode_all(files, WORKERS))
    gen = make_generator(0, "bench")
    benchmark.pedantic(lambda: _rotation_steps(images, gen), rounds=2, warmup_rounds=1)
    record(benchmark, "stream/resident", STEPS * BATCH)


def test_streamed(benchmark, files):
    images = StreamedImages(files, CPU, WORKERS)
    gen = make_generator(0, "bench")
    benchmark.pedantic(lambda: _rotation_steps(images, gen), rounds=2, warmup_rounds=1)
    record(benchmark, "stream/streamed", STEPS * BATCH)


class NaiveFiles(torch.utils.data.Dataset):
    """Open, resize, flip and rotate one file at a time in PIL, as the classic code did."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            img = Image.fromarray(pil_to_uint8(img, RES).permute(1, 2, 0).numpy())
        if random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        rotated = [TF.normalize(TF.to_tensor(img.rotate(90 * k)), [0.5] * 3, [0.25] * 3)
                   for k in range(4)]
        return torch.stack(rotated), torch.arange(4)


def test_naive_files(benchmark, files):
    torch.manual_seed(0)
    backbone = SmallCNN()
    head = Rotation().build_head(backbone)
    opt = make_optimizer([backbone, head], 0.05, 5e-4, CPU)
    loader = torch.utils.data.DataLoader(NaiveFiles(files.paths), batch_size=BATCH,
                                         shuffle=True, num_workers=WORKERS, drop_last=True)

    def run():
        for step, (x, y) in enumerate(loader):
            if step == STEPS:
                break
            loss = F.cross_entropy(head(backbone(x.flatten(0, 1))), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    record(benchmark, "stream/naive_files", STEPS * BATCH)


def test_stream_ratios(benchmark):
    """Not a timing: the streamed path over the resident one and over the naive one."""
    keys = ["stream/streamed", "stream/resident", "stream/naive_files"]
    if not all(k in FIGURES for k in keys):
        pytest.skip("run the whole file to get the ratios")
    benchmark.extra_info["streamed_over_resident"] = FIGURES[keys[0]] / FIGURES[keys[1]]
    benchmark.extra_info["streamed_over_naive_files"] = FIGURES[keys[0]] / FIGURES[keys[2]]
    benchmark.pedantic(lambda: None, rounds=1)
