"""``sslbench new-plugin``: the skeleton of a pip-installable plugin package.

The generated package declares its plugin in the ``sslbench`` entry-point group, holds one
working example of the chosen kind (to edit), and a test that runs sslbench's conformance
check on it, so ``pip install -e . && pytest`` passes as generated.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from .atomic import atomic_write_text
from ..errors import SSLBenchError
from .contracts import KINDS as CONTRACT_KINDS

KINDS = tuple(name for name, kind in CONTRACT_KINDS.items() if kind.scaffold)

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "sslbench-{name}"
version = "0.1.0"
description = "An sslbench {kind} plugin: {name}"
requires-python = ">=3.10"
dependencies = ["sslbench"]

[project.optional-dependencies]
test = ["pytest"]

# This line is what makes sslbench find the plugin.
[project.entry-points.sslbench]
{name} = "{module}.plugin"

[tool.setuptools]
packages = ["{module}"]
'''

PLUGINS = {
    "task": '''\
"""The {name} pretext task. Edit build_head and pretext_loss; keep the hook at the bottom."""

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.task import PretextTask, PreviewRow, TaskStep


class {cls}(PretextTask):
    name = "{name}"
    description = "predict whether each image was mirrored (replace with your task)"
    defaults = {{"share": 0.5}}        # options: --opt {name}.share=0.3
    ranges = {{"share": Range(gt=0, lt=1)}}   # every numeric option's allowed values

    def build_head(self, backbone):
        return nn.Linear(backbone.feature_dim, 2)

    def pretext_loss(self, backbone, head, images, generator):
        # images: a whole batch, float in [0, 1], (N, 3, H, W), on the run's device.
        # Build inputs and targets with tensor ops (no loop over images); draw randomness
        # from `generator` so that runs are reproducible.
        flip = torch.rand(len(images), device=images.device, generator=generator)
        targets = (flip < self.options["share"]).long()
        inputs = torch.where(targets.bool()[:, None, None, None], images.flip(3), images)
        logits = head(backbone(inputs))
        return TaskStep(F.cross_entropy(logits.float(), targets), logits, targets)

    def preview(self, images, generator):
        # what `sslbench show {name}` draws: per image, the inputs the task builds and targets
        return [PreviewRow([image, image.flip(2)], ["0: as is", "1: mirrored"])
                for image in images]


@sslbench.hookimpl
def sslbench_tasks():
    return [{cls}]
''',
    "backbone": '''\
"""The {name} backbone. Edit the stages; keep stage_dims in step with them."""

from torch import nn

import sslbench
from sslbench.backbone import Backbone, BackboneSpec


class {cls}(Backbone):
    def __init__(self):
        super().__init__()              # registers the input normalisation buffers
        self.stage_dims = [16, 32]
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()),
            nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                          nn.ReLU()),
        ])

    def stage_maps(self, x):
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


@sslbench.hookimpl
def sslbench_backbones():
    return [BackboneSpec("{name}", lambda resolution: {cls}(), "a two-stage CNN (edit me)")]
''',
    "dataset": '''\
"""The {name} data set. Replace the synthetic images with your loader; use it as
`--dataset {name}` (or set takes_argument=True for `{name}:PATH`)."""

import torch

import sslbench
from sslbench.data import DatasetRequest, DatasetSpec, ImageData, resize_uint8


def load(request: DatasetRequest) -> ImageData:
    g = torch.Generator().manual_seed(request.split_seed)
    labels = torch.arange(4).repeat(25)
    colour = torch.tensor([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])
    base = colour[labels].to(torch.float32)[:, :, None, None].expand(-1, 3, 16, 16)
    noise = torch.randint(-30, 30, base.shape, generator=g)
    images = resize_uint8((base + noise).clamp(0, 255).to(torch.uint8), request.resolution)
    return ImageData("{name}", ["red", "green", "blue", "yellow"],
                     images[:80], labels[:80], images[80:], labels[80:],
                     provenance={{"source": "synthetic colours (replace me)"}})


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("{name}", load, "synthetic coloured squares (edit me)")]
''',
    "protocol": '''\
"""The {name} protocol: nearest class mean on cached frozen features (edit me)."""

import torch
import torch.nn.functional as F

import sslbench
from sslbench.protocol import EvaluationProtocol, ProtocolResult


class {cls}(EvaluationProtocol):
    name = "{name}"
    description = "nearest class mean on the last stage's cached features"

    def evaluate(self, ctx):
        feats = F.normalize(ctx.labeled.features()[-1], dim=1)
        means = torch.stack([feats[ctx.labeled.labels == c].mean(0)
                             if (ctx.labeled.labels == c).any() else torch.zeros_like(feats[0])
                             for c in range(ctx.num_classes)])

        def predict(split):
            return (F.normalize(split.features()[-1], dim=1) @ means.T).argmax(1)

        val_acc = float((predict(ctx.val) == ctx.val.labels).float().mean())
        return ProtocolResult(predict, val_acc)


@sslbench.hookimpl
def sslbench_protocols():
    return [{cls}]
''',
    "executor": '''\
"""The {name} executor: where a sweep's units run. This one runs them in a thread pool of
the driver's process; replace submit and finished with your engine's calls (send each job,
a picklable callable, to a worker; yield a Finished as each ends). Keep the hook at the
bottom. Use it with: sslbench run --executor {name} --opt {name}.threads=2"""

import concurrent.futures as futures
import time

import sslbench
from sslbench.executor import Executor, Finished, one_line
from sslbench.options import Range


class {cls}(Executor):
    name = "{name}"
    description = "units in a thread pool of this process"
    defaults = {{"threads": 2}}
    ranges = {{"threads": Range(ge=1)}}

    def submit(self, jobs, reporter):
        self.jobs = list(jobs)

    def finished(self):
        since = time.time()
        with futures.ThreadPoolExecutor(self.options["threads"]) as pool:
            pending = {{pool.submit(job): job.unit for job in self.jobs}}
            for future in futures.as_completed(pending):
                try:
                    outcome, error = future.result(), None
                except sslbench.SSLBenchError:
                    raise                  # a wrong set-up: stops the run
                except Exception as exc:   # the unit is lost: its cells fail, a rerun retries
                    outcome, error = None, f"worker failed: {{one_line(exc)}}"
                yield Finished(pending[future], outcome, error, since)


@sslbench.hookimpl
def sslbench_executors():
    return [{cls}]
''',
}

# every kind's generated test calls the same kit: what the hooks return, then each contribution
_TEST = ("import {module}.plugin\nfrom sslbench.testing import check_plugin\n{imports}\n\n"
         "def test_conforms():\n    check_plugin({module}.plugin{args})\n")
TESTS = {
    kind: _TEST.replace("{imports}", imports).replace("{args}", args)
    for kind, imports, args in [
        ("task", "", ""), ("backbone", "", ""), ("protocol", "", ""),
        # the generated data set loads without files; a real one points this at test data
        ("dataset", "from sslbench.data import DatasetRequest\n",
         ", dataset_request=DatasetRequest(None, 32, \"data\")"),
    ]
}
# an executor's test also hands it stand-in jobs (they run only in this process)
TESTS["executor"] = TESTS["task"] + (
    "\n\ndef test_it_hands_back_every_unit():\n"
    "    from sslbench.testing import check_executor\n"
    "    check_executor({module}.plugin.{cls}, in_process_jobs=True)\n")

README = '''\
# sslbench-{name}

An sslbench {kind} plugin.

    pip install -e '.[test]'
    sslbench list {kind}s          # shows {name}, from this plugin
    pytest                          # sslbench's conformance check
'''


def new_plugin(name: str, kind: str, directory: Path) -> Path:
    """Write the package ``sslbench-NAME`` under ``directory``; returns its folder."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SSLBenchError(f"plugin name {name!r} must be lower-case letters, digits and _, "
                            "starting with a letter")
    if kind not in KINDS:
        raise SSLBenchError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    root = Path(directory) / f"sslbench-{name}"
    if root.exists():
        raise SSLBenchError(f"{str(root)!r} already exists")
    module = f"sslbench_{name}"
    fields = {"name": name, "kind": kind, "module": module,
              "cls": "".join(part.capitalize() for part in name.split("_")) + kind.capitalize()}
    files = {
        "pyproject.toml": PYPROJECT.format(**fields),
        "README.md": README.format(**fields),
        f"{module}/__init__.py": f'"""sslbench plugin package {name}."""\n',
        f"{module}/plugin.py": PLUGINS[kind].format(**fields),
        "tests/test_plugin.py": TESTS[kind].format(**fields),
    }
    for rel, text in files.items():
        atomic_write_text(root / rel, textwrap.dedent(text))
    return root
