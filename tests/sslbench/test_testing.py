"""sslbench.testing: every built-in plugin passes; a broken one is told what to change."""

import pytest
import torch
from torch import nn

from sslbench.data import DatasetRequest
from sslbench._core.plugins import PluginHost
from sslbench.task import PretextTask, TaskStep
from sslbench.testing import (ConformanceError, check_backbone, check_dataset, check_protocol,
                              check_task)
from sslbench.training import maybe_compile

HOST = PluginHost.from_environment()


@pytest.mark.parametrize("name", sorted(HOST.registry("task")))
def test_builtin_tasks_conform(name):
    task = HOST.task(name)
    check_task(task(permutations=10) if name == "jigsaw" else task,
               backbones=("smallcnn", "resnet18"), resolutions=(32,))


@pytest.mark.parametrize("name", ["smallcnn", "resnet18"])
def test_builtin_backbones_conform(name):
    check_backbone(HOST.backbone(name))


@pytest.mark.parametrize("name", sorted(HOST.registry("protocol")))
def test_builtin_protocols_conform(name):
    check_protocol(HOST.protocol(name))


def test_builtin_digits_conforms():
    spec, _ = HOST.dataset("digits")
    check_dataset(spec, DatasetRequest(None, 16, "data"))


class Sloppy(PretextTask):
    name = "sloppy task"
    defaults = {"fn": print}

    def build_head(self, backbone):
        return nn.Linear(backbone.feature_dim, 3)

    def pretext_loss(self, backbone, head, images, generator):
        logits = head(backbone(images))
        targets = torch.randint(0, 5, (len(images),)).int()      # global RNG, wrong dtype, range
        return TaskStep(logits.sum().detach(), logits, targets)


def test_a_broken_task_is_told_what_to_change():
    with pytest.raises(ConformanceError) as err:
        check_task(Sloppy, backbones=("smallcnn",), resolutions=(32,))
    message = str(err.value)
    for expected in ("set the class attribute `name` to a word", "set `description`",
                     "config() must serialise to JSON", "targets must be int64",
                     "do not detach it"):
        assert expected in message, expected


def test_compile_wraps_without_copying_parameters():
    net = HOST.backbone("smallcnn").create(16)
    compiled = maybe_compile(net, True)
    assert compiled is not net and compiled.feature_dim == net.feature_dim
    assert maybe_compile(net, False) is net


def test_builtin_imagefolder_conforms(image_folder):
    spec, _ = HOST.dataset("imagefolder:x")
    data = check_dataset(spec, DatasetRequest(str(image_folder), 16, "data"))
    assert data.classes == ["cat", "dog", "fox"]


def test_plugins_command_names_distribution_and_contributions(cli):
    status, out, err = cli("plugins")
    assert status == 0, err
    assert "sslbench" in out and "task rotation" in out and "format csv" in out
