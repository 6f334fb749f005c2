"""Shared fixtures: tiny image folders written by the tests, fast settings, and a helper that
runs the CLI in-process and returns (exit status, stdout, stderr)."""

from __future__ import annotations

import os
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sslbench._core.cli import main

REPO = Path(__file__).resolve().parents[1]
FLOWERS = Path(os.environ.get("SSLBENCH_FLOWERS", REPO.parent / "shared" / "data" / "flowers"))

# Settings that make a sweep take seconds: the point of these tests is the machinery.
FAST = {"pretrain_epochs": 1, "pretrain_batch_size": 32}                 # sweep settings
FAST_OPTIONS = {"finetune": {"steps": 6, "batch_size": 16, "evals": 2,   # protocol options
                             "unlabeled_batch_size": 16},
                "linear": {"max_iter": 20, "l2": [1e-3, 1e-1]},
                "nonlinear": {"epochs": 2, "epoch_size": 64, "width": 8}}
FAST_FLAGS = ([arg for k, v in FAST.items() for arg in ("--set", f"{k}={v}")]
              + [arg for name, opts in FAST_OPTIONS.items() for k, v in opts.items()
                 for arg in ("--opt", f"{name}.{k}={v}".replace(" ", ""))])

# The suite runs in two pytest-xdist workers (pyproject's addopts), one per core: each worker
# and every process it starts computes on one thread, so two never share a core.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


def write_image_folder(root: Path, classes=("cat", "dog", "fox"), per_class=10, size=20,
                       seed=0) -> Path:
    """Class-per-folder PNGs whose colour depends on the class (so they are learnable)."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, 3), dtype=np.float64)
            base[..., c % 3] = 180
            pixels = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def isolate_plugins(monkeypatch, base: Path) -> None:
    """Let the ``sslbench`` entry-point group show sslbench's own plugins and those installed
    under ``base`` (pytest's temporary folder), nothing else the environment holds."""
    base = base.resolve()
    everything = metadata.entry_points

    def ours(dist) -> bool:
        if dist is None:
            return True
        if dist.name.replace("_", "-").lower() == "sslbench":
            return True
        try:
            return Path(dist.locate_file("")).resolve().is_relative_to(base)
        except (OSError, ValueError, NotImplementedError):
            return False

    def entry_points(**params):
        found = everything(**params)
        if params.get("group") != "sslbench":
            return found
        return [ep for ep in found if ours(getattr(ep, "dist", None))]

    monkeypatch.setattr(metadata, "entry_points", entry_points)


# ---------------------------------------------------------------------- the fast lane
# `python -m pytest -m "not sweep"`: the tests that run no sweep and start no process (the
# day-to-day lane, under two minutes); the full suite (CI) runs everything. A test is in the
# sweep lane when it runs a sweep (the fast_run or finished_sweep fixtures, the CLI's `run`),
# starts other processes (engines, torchrun, pip, a browser), or is marked slow.
SWEEP_FIXTURES = {"fast_run", "finished_sweep", "site"}
SWEEP_MODULES = {"test_fault_injection", "test_install_layout", "test_third_party_plugin",
                 "test_distributed", "test_executors", "test_resume", "test_reports_browser",
                 "test_images_streaming", "test_end_to_end", "test_tasks_with_backbones",
                 "test_tiny_budgets", "test_pretraining_controls", "test_trackers",
                 "test_cli_progress", "test_cli_status", "test_runner_resume",
                 "test_runner_failed_cells", "test_api", "test_identity", "test_unit_run",
                 "test_against"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if (SWEEP_FIXTURES & set(getattr(item, "fixturenames", ()))
                or module in SWEEP_MODULES or item.get_closest_marker("slow")):
            item.add_marker(pytest.mark.sweep)
    # the long tests first, so that the two xdist workers end together rather than one
    # finishing a minute-long test alone (the order within each lane is kept)
    items.sort(key=lambda item: not item.get_closest_marker("sweep"))


@pytest.fixture(autouse=True)
def only_our_plugins(monkeypatch, tmp_path_factory):
    """The suite sees sslbench's own plugins and those its tests install (under pytest's
    temporary folder), never what else the environment holds: a half-deleted scaffold or a
    user's plugin must not change expected output. (Tests that start a fresh process see the
    environment as it is.)"""
    isolate_plugins(monkeypatch, tmp_path_factory.getbasetemp())


# A plugin with one data set, "tiny": 24 random images of 2 classes, class 0 red (so that it
# is learnable), 12 of them the test split. For the tests of executors, whose plugins add to it.
TINY_DATASET_PLUGIN = '''
import torch
import sslbench
from sslbench.data import DatasetSpec, ImageData


def load(request):
    n = 24
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, request.resolution, request.resolution),
                      dtype=torch.uint8, generator=g)
    x[: n // 2, 0] = 255                       # class 0 is red: learnable
    y = torch.arange(n) // (n // 2)
    return ImageData("tiny", ["a", "b"], x, y, x[::2], y[::2])


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("tiny", load, "random pixels, class 0 red")]
'''


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory):
    """One small finished sweep shared by the tests that only read it (export, publish,
    notebooks): rotation and scratch, linear probe, 50% and 100% of the labels, seeds 0 and
    1, fast settings. Returns (results folder, cache folder). Copy it before changing it."""
    root = tmp_path_factory.mktemp("finished-sweep")
    out, cache = root / "results", root / "cache"
    with pytest.MonkeyPatch.context() as mp:
        isolate_plugins(mp, tmp_path_factory.getbasetemp())
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--quiet", "--out", str(out), "--cache-dir", str(cache),
                  "--resolution", "16", *FAST_FLAGS, "--tasks", "rotation",
                  "--fractions", "0.5,1.0", "--protocols", "linear", "--seeds", "0,1"])
    assert exit_info.value.code in (0, None)
    return out, cache


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "imgs")


FILES_RESOLUTION = 12


@pytest.fixture
def files(image_folder):
    """The 30 PNGs of ``image_folder`` as ``ImageFiles`` decoded at 12 px (streaming tests)."""
    from sslbench.images import ImageFiles
    return ImageFiles(sorted(str(p) for p in image_folder.rglob("*.png")), FILES_RESOLUTION)


@pytest.fixture
def cli(capsys):
    """Run ``sslbench ARGS`` in-process: returns (status, stdout, stderr)."""
    def run(*args: str):
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        out, err = capsys.readouterr()
        code = exit_info.value.code
        return (0 if code is None else code), out, err
    return run


@pytest.fixture
def fast_run(cli, tmp_path):
    """``sslbench run`` with fast settings, results and cache under tmp_path."""
    def run(*args: str, out: Path | None = None):
        out = out or tmp_path / "results"
        return cli("run", "--quiet", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                   "--resolution", "16", *FAST_FLAGS, *args)
    return run


def hand_made_record(task, protocol, fraction, seed, acc, status="ok", seconds=None):
    """A minimal record of a finished (or failed) cell, for leaderboard and report tests."""
    return {"schema": 1, "dataset": "digits", "backbone": "smallcnn", "task": task,
            "protocol": protocol, "fraction": fraction, "seed": seed, "status": status,
            "preset": "quick", "error": None if status == "ok" else "boom",
            "metrics": {"test_accuracy": acc} if status == "ok" else None,
            "pretraining": {"seconds": seconds} if seconds else None,
            "settings": {"resolution": 32, "pretrain_epochs": 15, "finetune_steps": 300},
            "sweep": {"protocols": ["linear", "finetune"]}}


@pytest.fixture
def load(tmp_path):
    """``load(name)``: a data set through the plugin host, at 16 px, data under tmp_path."""
    from sslbench._core.plugins import PluginHost
    from sslbench.data import DatasetRequest
    host = PluginHost.from_environment()

    def run(name, download=False):
        spec, argument = host.dataset(name)
        return spec.load(DatasetRequest(argument, 16, str(tmp_path), download=download))
    return run


# ---------------------------------------------------------------- plugin sources for tests
# written to a file by a test and loaded with --plugin

# a task whose loss is NaN: its cells must fail, with the reason, and the sweep go on
NAN_TASK = textwrap.dedent('''
    import torch
    from torch import nn
    import sslbench
    from sslbench.task import PretextTask, TaskStep

    class Exploding(PretextTask):
        name = "exploding"
        def build_head(self, backbone):
            return nn.Linear(backbone.feature_dim, 2)
        def pretext_loss(self, backbone, head, images, generator):
            return TaskStep(head(backbone(images)).sum() * float("nan"))

    @sslbench.hookimpl
    def sslbench_tasks():
        return [Exploding]
''')

# a small working task with an option, as a user's local plugin file would be
LOCAL_TASK = textwrap.dedent('''
    import torch, torch.nn.functional as F
    from torch import nn
    import sslbench
    from sslbench.task import PretextTask, TaskStep

    class Brightness(PretextTask):
        """Predict which of 3 brightness levels was applied."""
        name = "brightness"
        description = "predict the brightness factor (test plugin)"
        defaults = {"levels": 3}

        def build_head(self, backbone):
            return nn.Linear(backbone.feature_dim, self.options["levels"])

        def pretext_loss(self, backbone, head, images, generator):
            k = self.options["levels"]
            t = torch.randint(0, k, (len(images),), device=images.device, generator=generator)
            x = images * (0.4 + 0.6 * t.float() / (k - 1))[:, None, None, None]
            logits = head(backbone(x))
            return TaskStep(F.cross_entropy(logits, t), logits, t)

    @sslbench.hookimpl
    def sslbench_tasks():
        return [Brightness]
''')
