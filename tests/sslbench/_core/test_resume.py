"""A pretraining or a fine-tuning killed halfway continues from its last snapshot
(sslbench._core.resume) and ends exactly as an uninterrupted run does (CPU, same seed)."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from conftest import FAST_FLAGS

from sslbench._core.atomic import safe_torch_load

PLUGIN = '''
import os
import signal
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.data import DatasetSpec, ImageData
from sslbench.task import PretextTask, TaskStep


def load(request):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, request.resolution, request.resolution),
                      dtype=torch.uint8, generator=g)
    y = torch.arange(40) // 20
    return ImageData("tiny40", ["a", "b"], x, y, x[::4], y[::4])


class Quarter(PretextTask):
    """Which quarter-turn was applied, with dropout in its head (a global random stream);
    kills its process (SIGKILL) at step ``die_at`` while the marker file exists."""
    name = "quarter"
    description = "rotation by k x 90 degrees, killed once mid-run (test plugin)"
    defaults = {"marker": "", "die_at": 0}
    steps = 0

    def build_head(self, backbone):
        return nn.Sequential(nn.Dropout(0.5), nn.Linear(backbone.feature_dim, 4))

    def pretext_loss(self, backbone, head, images, generator):
        Quarter.steps += 1
        marker = self.options["marker"]
        if marker and Quarter.steps == self.options["die_at"] and Path(marker).exists():
            Path(marker).unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        k = torch.randint(0, 4, (len(images),), generator=generator, device=images.device)
        x = torch.stack([torch.rot90(im, int(r), dims=(1, 2)) for im, r in zip(images, k)])
        logits = head(backbone(x))
        return TaskStep(F.cross_entropy(logits, k), logits, k)


class FlipLoss(PretextTask):
    """A consistency loss for fine-tuning (which horizontal flip was applied to unlabeled
    images, dropout in its head): exercises the unlabeled batch stream, a head, and both
    random streams; kills its process at its ``die_at``-th step while the marker exists."""
    name = "fliploss"
    description = "flip prediction on unlabeled images during fine-tuning (test plugin)"
    pretrains = False
    consistency = True
    defaults = {"marker": "", "die_at": 0}
    steps = 0

    def build_head(self, backbone):
        return nn.Sequential(nn.Dropout(0.5), nn.Linear(backbone.feature_dim, 2))

    def pretext_loss(self, backbone, head, images, generator):
        FlipLoss.steps += 1
        marker = self.options["marker"]
        if marker and FlipLoss.steps == self.options["die_at"] and Path(marker).exists():
            Path(marker).unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        k = torch.randint(0, 2, (len(images),), generator=generator, device=images.device)
        x = torch.where(k.bool()[:, None, None, None], images.flip(-1), images)
        logits = head(backbone(x))
        return TaskStep(F.cross_entropy(logits, k), logits, k)


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("tiny40", load, "random pixels")]


@sslbench.hookimpl
def sslbench_tasks():
    return [Quarter, FlipLoss]
'''


def run(tmp_path, cache: str, marker):
    args = [sys.executable, "-m", "sslbench", "run", "--quiet", "--plugin",
            str(tmp_path / "quarter.py"), "--dataset", "tiny40", "--tasks", "quarter",
            "--fractions", "1.0", "--protocols", "linear", "--resolution", "16",
            *FAST_FLAGS, "--set", "pretrain_epochs=6", "--set", "pretrain_batch_size=8",
            "--opt", f"quarter.marker={marker}", "--opt", "quarter.die_at=11",
            "--checkpoint-every-min", "0", "--out", str(tmp_path / f"out-{cache}"),
            "--cache-dir", str(tmp_path / cache)]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def checkpoint(cache_dir):
    files = [p for p in (cache_dir / "checkpoints").glob("quarter-*.pt")
             if not p.name.endswith(".resume.pt")]
    assert len(files) == 1, files
    return safe_torch_load(files[0])


def test_a_killed_pretraining_resumes_and_ends_with_the_uninterrupted_weights(tmp_path):
    (tmp_path / "quarter.py").write_text(PLUGIN)
    marker = tmp_path / "kill-once"
    marker.touch()
    killed = run(tmp_path, "resumed", marker)
    assert killed.returncode == -9, killed.stderr        # SIGKILL in epoch 3 (steps 9-12)
    snapshots = list((tmp_path / "resumed" / "checkpoints").glob("*.resume.pt"))
    assert len(snapshots) == 1
    assert safe_torch_load(snapshots[0])["epoch"] == 2
    resumed = run(tmp_path, "resumed", marker)           # the marker is gone: no kill
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "resumed" / "checkpoints").glob("*.resume.pt"))
    whole = run(tmp_path, "whole", marker)
    assert whole.returncode == 0, whole.stderr
    a, b = checkpoint(tmp_path / "resumed"), checkpoint(tmp_path / "whole")
    assert a["backbone"].keys() == b["backbone"].keys()
    for name in a["backbone"]:
        assert torch.equal(a["backbone"][name], b["backbone"][name]), name
    assert [h["loss"] for h in a["info"]["history"]] == [h["loss"] for h in b["info"]["history"]]
    assert len(a["info"]["history"]) == 6
    assert a["info"]["resumed_after_epoch"] == 2 and b["info"]["resumed_after_epoch"] is None


def finetune(tmp_path, name: str, marker):
    args = [sys.executable, "-m", "sslbench", "run", "--quiet", "--plugin",
            str(tmp_path / "quarter.py"), "--dataset", "tiny40", "--tasks", "fliploss",
            "--fractions", "1.0", "--protocols", "finetune", "--resolution", "16",
            *FAST_FLAGS, "--opt", "finetune.steps=24", "--opt", "finetune.evals=6",
            "--opt", "finetune.batch_size=8", "--opt", "finetune.unlabeled_batch_size=8",
            "--opt", f"fliploss.marker={marker}", "--opt", "fliploss.die_at=14",
            "--checkpoint-every-min", "0", "--out", str(tmp_path / f"out-{name}"),
            "--cache-dir", str(tmp_path / name)]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def finetune_record(tmp_path, name: str):
    files = list((tmp_path / f"out-{name}" / "records").glob("*fliploss__finetune*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_a_killed_finetuning_resumes_and_ends_as_the_uninterrupted_run(tmp_path):
    (tmp_path / "quarter.py").write_text(PLUGIN)
    marker = tmp_path / "kill-once"
    marker.touch()
    killed = finetune(tmp_path, "resumed", marker)
    assert killed.returncode == -9, killed.stderr   # SIGKILL at step 14; checks every 4 steps
    snapshots = list((tmp_path / "resumed" / "resume").glob("*.pt"))
    assert len(snapshots) == 1
    assert safe_torch_load(snapshots[0])["step"] == 12
    resumed = finetune(tmp_path, "resumed", marker)    # the marker is gone: no kill
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "resumed" / "resume").glob("*.pt"))   # removed with the record
    whole = finetune(tmp_path, "whole", marker)
    assert whole.returncode == 0, whole.stderr
    a, b = finetune_record(tmp_path, "resumed"), finetune_record(tmp_path, "whole")
    assert a["status"] == b["status"] == "ok"
    assert a["details"]["resumed_at_step"] == 12 and b["details"]["resumed_at_step"] is None
    # the same curve (losses and validation accuracies at all 6 checks, float for float),
    # the same chosen step and the same predictions on every test image
    assert a["details"]["curve"] == b["details"]["curve"] and len(a["details"]["curve"]) == 6
    assert a["details"]["chosen_step"] == b["details"]["chosen_step"]
    assert a["metrics"]["test_accuracy"] == b["metrics"]["test_accuracy"]
    assert a["metrics"]["test_predictions"] == b["metrics"]["test_predictions"]
