"""Shortcut controls: each task's control gives what a task without the shortcut gives
(chance), on data built so that the answer is known. Relpatch's control, which trains a
network of its own, is in test_task_relpatch.py."""

import math

import pytest
import torch
from conftest import FAST
from sslbench_plugins.backbones.smallcnn import SmallCNN
from sslbench_plugins.tasks.jigsaw import Jigsaw
from sslbench_plugins.tasks.rotation import Rotation

from sslbench.images import ResidentImages
from sslbench._core.progress import Reporter
from sslbench._core.pretraining import evaluate_pretext, pretrain

CPU = torch.device("cpu")
SETTINGS = {**FAST, "pretrain_batch_size": 64, "pretrain_lr": 0.05, "weight_decay": 5e-4}


def uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).to(torch.uint8)


def test_rotation_control_is_exactly_chance_on_symmetric_images():
    """The four rotations of a rotation-symmetric image are the same input: whatever the
    network learned, it gives them the same answer, right once in four."""
    torch.manual_seed(0)
    images = uint8(torch.rand(256, 3, 32, 32))
    task = Rotation()
    backbone = SmallCNN()
    out = pretrain(task, backbone, images[:192], {**SETTINGS, "pretrain_epochs": 1}, CPU, None,
                   0, Reporter(), "rotation")
    control = task.control()
    assert not control.retrain and control.task.options["symmetrise"]
    result = evaluate_pretext(control.task, backbone, out["head"], ResidentImages(images[192:]),
                              False, CPU, None, 0)
    assert result["accuracy"] == 0.25 and result["chance"] == 0.25


def gratings(n: int, size: int = 30, seed: int = 0) -> torch.Tensor:
    """Gray images whose 3x3 cells each hold a grating of their own orientation and period
    (random phase): a cell's content says where it belongs; every cell has the same histogram
    of values, so shuffling a tile's pixels leaves nothing to go on."""
    g = torch.Generator().manual_seed(seed)
    cell = size // 3
    y, x = torch.meshgrid(torch.arange(cell, dtype=torch.float32),
                          torch.arange(cell, dtype=torch.float32), indexing="ij")
    out = torch.zeros(n, 1, size, size)
    for k in range(9):
        angle, period = math.pi * (k % 3) / 3, (3.0, 5.0, 8.0)[k // 3]
        phase = torch.rand(n, 1, 1, generator=g) * 2 * math.pi
        wave = torch.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period
                         + phase)
        r, c = divmod(k, 3)
        out[:, 0, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 0.5 + 0.4 * wave
    return out.expand(n, 3, size, size)


@pytest.mark.slow
def test_jigsaw_control_is_at_chance_when_only_content_solves_the_puzzle():
    torch.manual_seed(0)
    task = Jigsaw(permutations=10, min_gap=1, grayscale=0.0)
    backbone = SmallCNN()
    out = pretrain(task, backbone, uint8(gratings(1024)), {**SETTINGS, "pretrain_epochs": 6},
                   CPU, None, 0, Reporter(), "jigsaw")
    held = ResidentImages(uint8(gratings(256, seed=1)))
    solved = evaluate_pretext(task, backbone, out["head"], held, False, CPU, None, 0)
    control = evaluate_pretext(task.control().task, backbone, out["head"], held, False, CPU,
                               None, 0)
    assert solved["accuracy"] > solved["chance"] + 0.3         # content solves the puzzle
    assert control["accuracy"] < control["chance"] + 0.06      # shuffled pixels do not


def test_show_check_prints_the_held_out_accuracy_and_the_control(cli):
    status, out, err = cli("show", "rotation", "--check", "--dataset", "digits",
                           "--resolution", "16", "--epochs", "1")
    assert status == 0, err
    assert "held-out pretext accuracy" in out
    assert "control 'symmetric input'" in out and "25.0% (chance 25.0%): at chance" in out
    status, _, err = cli("show", "uda", "--check")
    assert status == 2 and "has no pretraining to check" in err
