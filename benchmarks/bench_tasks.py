"""Pretraining throughput of every built-in task on the CPU, three ways, same backbone
(SmallCNN), same batch (128 source images), same run:

* ``model_only``: the training step alone, on task inputs built before timing (the ceiling);
* ``sslbench``: sslbench's path: uint8 images in memory, index a batch, the task builds its
  inputs from the whole batch as tensors, train;
* ``naive``: the classic code's path: per-image PIL transforms in ``Dataset.__getitem__``
  (4 rotations, 9 tile crops, 2 patch crops, per-view affine and colour jitter, per-image
  RandAugment), a DataLoader, NCHW fp32. Measured with 0 and 2 workers; the faster counts.

``batch`` times only sslbench's batch construction. ``test_ratios`` stores
sslbench/model_only and sslbench/naive per task for RESULTS.md.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from conftest import FIGURES, record
from PIL import Image
from sslbench_plugins.backbones.smallcnn import SmallCNN
from sslbench_plugins.tasks.exemplar import Exemplar
from sslbench_plugins.tasks.jigsaw import GRID, Jigsaw, normalise_each, tile_geometry
from sslbench_plugins.tasks.relpatch import RelativePatch, drop_colours, patch_geometry
from sslbench_plugins.tasks.rotation import Rotation, rotate_batch
from sslbench_plugins.tasks.uda import UDA

from sslbench.augment import grayscale, random_flip, resize_to, to_float
from sslbench.randaugment import rand_augment
from sslbench._core.seeding import make_generator
from sslbench.task import ConsistencyContext
from sslbench.training import epoch_batches, make_optimizer, to_device

BATCH, STEPS, CPU = 128, 6, torch.device("cpu")
TASKS = ["rotation", "exemplar", "jigsaw", "relpatch", "uda"]
MEAN, STD = [0.5] * 3, [0.25] * 3


# ----------------------------------------------------------------------------- tasks
def make_task(name: str, images: torch.Tensor):
    task = {"rotation": Rotation, "exemplar": Exemplar, "jigsaw": Jigsaw,
            "relpatch": RelativePatch, "uda": UDA}[name]()
    pool = task.prepare(images, make_generator(0, "prepare"))
    return task, pool


def new_model(task, channels_last=True):
    torch.manual_seed(0)
    backbone = SmallCNN()
    head = task.build_head(backbone) if task.name != "uda" else torch.nn.Linear(192, 5)
    if channels_last:
        backbone, head = to_device(backbone, CPU), to_device(head, CPU)
    return backbone, head, make_optimizer([backbone, head], 0.05, 5e-4, CPU)


def build_inputs(task, backbone, x, index, gen):
    """The task's inputs and targets for a float batch, with sslbench's batched code."""
    if task.name == "rotation":
        return rotate_batch(random_flip(x, gen))
    if task.name == "exemplar":
        return task.make_views(x, index, gen)
    if task.name == "jigsaw":
        tiles, label, _ = task.make_puzzles(x, gen)
        gray = torch.rand(len(x), 9, 1, 1, 1, generator=gen) < 0.66
        tiles = normalise_each(torch.where(gray, grayscale(tiles), tiles), backbone)
        return resize_to(tiles, max(tiles.shape[-1], 8)).flatten(0, 1), label
    if task.name == "relpatch":
        pairs, label, _, _ = task.make_pairs(x, gen)
        pairs = drop_colours(pairs, gen)
        return resize_to(pairs, max(pairs.shape[-1], 8)).flatten(0, 1), label
    return torch.cat([x, rand_augment(x, gen)]), None   # uda: clean + strong copies


def forward_loss(task, backbone, head, inputs, targets, layout=torch.channels_last):
    """The model part of a step, the same for all three pipelines."""
    feats = backbone(inputs.contiguous(memory_format=layout))
    if task.name in ("jigsaw", "relpatch"):
        feats = feats.view(len(targets), -1, feats.shape[-1])
    logits = head(feats)
    if task.name == "uda":
        clean, strong = logits.chunk(2)
        return F.kl_div(F.log_softmax(strong, -1), F.softmax(clean.detach() / 0.4, -1),
                        reduction="batchmean")
    return F.cross_entropy(logits, targets)


def train(backbone, head, opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# ----------------------------------------------------------------------------- sslbench
def _model_only(benchmark, images, name: str, layout: torch.memory_format, key: str) -> None:
    """Time the training step alone on task inputs built before timing."""
    task, pool = make_task(name, images)
    backbone, head, opt = new_model(task, channels_last=layout == torch.channels_last)
    gen = make_generator(0, "bench")
    batches = []
    for idx in list(epoch_batches(len(pool), BATCH, gen, CPU))[:STEPS]:
        batches.append(build_inputs(task, backbone, to_float(pool[idx]), idx, gen))

    def run():
        for inputs, targets in batches:
            train(backbone, head, opt, forward_loss(task, backbone, head, inputs, targets, layout))
    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    record(benchmark, key, STEPS * BATCH)


@pytest.mark.parametrize("name", TASKS)
def test_model_only(benchmark, flowers32, name):
    _model_only(benchmark, flowers32[0], name, torch.channels_last, f"{name}/model_only")


@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
def test_rotation_ceiling_layout(benchmark, flowers32, layout):
    """The rotation ceiling with the network in channels_last (sslbench's) or NCHW (the naive
    pipeline's) layout: how much of the gap to the naive pipeline is the layout."""
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    _model_only(benchmark, flowers32[0], "rotation", fmt, f"rotation/ceiling_{layout}")


@pytest.mark.parametrize("name", TASKS)
def test_sslbench(benchmark, flowers32, name):
    """The real code path: the task's own pretext_loss (uda: its consistency loss)."""
    task, pool = make_task(name, flowers32[0])
    backbone, head, opt = new_model(task)
    gen = make_generator(0, "bench")

    def run():
        for step, idx in enumerate(epoch_batches(len(pool), BATCH, gen, CPU)):
            if step == STEPS:
                break
            x = to_float(pool[idx])
            if name == "uda":
                ctx = ConsistencyContext(backbone, None, head, step, STEPS, 5, gen)
                loss = task.unlabeled_loss(ctx, x)
            else:
                extra = {"index": idx} if task.uses_index else {}
                loss = task.pretext_loss(backbone, head, x, gen, **extra).loss
            train(backbone, head, opt, loss)
    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    record(benchmark, f"{name}/sslbench", STEPS * BATCH)


@pytest.mark.parametrize("name", TASKS)
def test_batch_construction(benchmark, flowers32, name):
    task, pool = make_task(name, flowers32[0])
    backbone, _, _ = new_model(task)
    gen = make_generator(0, "bench")
    idx = torch.arange(BATCH)

    def run():
        for _ in range(STEPS):
            build_inputs(task, backbone, to_float(pool[idx]), idx, gen)
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    record(benchmark, f"{name}/batch", STEPS * BATCH)


# ----------------------------------------------------------------------------- naive
def _tensor(img: Image.Image) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(img), MEAN, STD)


class NaiveDataset(torch.utils.data.Dataset):
    """One image at a time, in PIL and numpy, as in the classic pretext code bases."""

    def __init__(self, name: str, images: torch.Tensor, task) -> None:
        self.name, self.task = name, task
        self.images = [Image.fromarray(i.permute(1, 2, 0).numpy()) for i in images]
        self.randaugment = T.RandAugment(num_ops=2, magnitude=9)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        size = img.size[0]
        if self.name == "rotation":
            if random.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            return torch.stack([_tensor(img.rotate(90 * k)) for k in range(4)]), torch.arange(4)
        if self.name == "jigsaw":
            cell, tile = tile_geometry(size, 64 / 75)
            label = random.randrange(len(self.task.perms))
            tiles = []
            for c in self.task.perms[label].tolist():
                top = (c // GRID) * cell + random.randint(0, cell - tile)
                left = (c % GRID) * cell + random.randint(0, cell - tile)
                t = img.crop((left, top, left + tile, top + tile))
                if random.random() < 0.66:
                    t = t.convert("L").convert("RGB")
                a = TF.to_tensor(t.resize((max(tile, 8),) * 2, Image.BILINEAR))
                tiles.append((a - a.mean()) / a.std().clamp_min(1e-3))
            return torch.stack(tiles), label
        if self.name == "relpatch":
            p, g, j = patch_geometry(size, 96 / 398, 48 / 398, 7 / 398)
            origin = (size - (3 * p + 2 * g)) // 2
            label = random.randrange(8)
            r, c = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)][label]
            out = []
            for rr, cc in ((1, 1), (r, c)):
                top = origin + rr * (p + g) + random.randint(-j, j)
                left = origin + cc * (p + g) + random.randint(-j, j)
                a = np.asarray(img.crop((left, top, left + p, top + p)), dtype=np.float32) / 255
                keep = random.randrange(3)
                for ch in range(3):
                    if ch != keep:
                        a[..., ch] = a[..., keep].mean() + np.random.randn(p, p) * a[..., keep].std() / 100
                out.append(_tensor(Image.fromarray((a.clip(0, 1) * 255).astype(np.uint8)).resize(
                    (max(p, 8),) * 2, Image.BILINEAR)))
            return torch.stack(out), label
        if self.name == "exemplar":
            views = []
            for _ in range(2):
                v = TF.affine(img, angle=random.uniform(-20, 20),
                              translate=[int(random.uniform(-0.2, 0.2) * size)] * 2,
                              scale=random.uniform(0.7, 1.4), shear=[0.0])
                hsv = np.asarray(v.convert("HSV"), dtype=np.float32) / 255
                for ch in (1, 2):
                    hsv[..., ch] = (hsv[..., ch] ** np.exp(random.uniform(np.log(0.25), np.log(4)))
                                    * random.uniform(0.7, 1.4) + random.uniform(-0.1, 0.1))
                hsv[..., 0] = (hsv[..., 0] + random.uniform(-0.1, 0.1)) % 1
                v = Image.fromarray((hsv.clip(0, 1) * 255).astype(np.uint8), "HSV").convert("RGB")
                views.append(_tensor(v))
            return torch.stack(views), torch.tensor([i, i])
        return torch.stack([_tensor(img), _tensor(self.randaugment(img))]), 0   # uda


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("name", TASKS)
def test_naive(benchmark, flowers32, name, workers):
    task, pool = make_task(name, flowers32[0])
    backbone, head, opt = new_model(task, channels_last=False)
    loader = torch.utils.data.DataLoader(NaiveDataset(name, pool, task), batch_size=BATCH,
                                         shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)

    def run():
        for step, (x, y) in enumerate(loader):
            if step == STEPS:
                break
            inputs = x.flatten(0, 1)
            if name == "uda":
                inputs = torch.cat([x[:, 0], x[:, 1]])
                targets = None
            elif name in ("rotation", "exemplar"):
                targets = y.flatten()
            else:
                targets = y
            feats = backbone(inputs)
            if name in ("jigsaw", "relpatch"):
                feats = feats.view(len(targets), -1, feats.shape[-1])
            logits = head(feats)
            if name == "uda":
                clean, strong = logits.chunk(2)
                loss = F.kl_div(F.log_softmax(strong, -1), F.softmax(clean.detach() / 0.4, -1),
                                reduction="batchmean")
            else:
                loss = F.cross_entropy(logits, targets)
            train(backbone, head, opt, loss)
    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    record(benchmark, f"{name}/naive_workers{workers}", STEPS * BATCH)


@pytest.mark.parametrize("name", TASKS)
def test_ratios(benchmark, name):
    """Not a timing: sslbench's rate over the ceiling and over the best naive rate."""
    keys = [f"{name}/{k}" for k in ("sslbench", "model_only", "naive_workers0", "naive_workers2")]
    if not all(k in FIGURES for k in keys):
        pytest.skip("run the whole file to get the ratios")
    naive = max(FIGURES[keys[2]], FIGURES[keys[3]])
    benchmark.extra_info["sslbench_over_ceiling"] = FIGURES[keys[0]] / FIGURES[keys[1]]
    benchmark.extra_info["sslbench_over_naive"] = FIGURES[keys[0]] / naive
    benchmark.pedantic(lambda: None, rounds=1)
