"""Several models per step (issue 15): does training the seeds of one cell together beat
training them one after another on this CPU?

The workload is a fine-tuning step of the quick preset: the small CNN (24-48-96-192) and a
linear classifier, batch 64 at 32 px, cross-entropy, SGD with Nesterov momentum, K = 3
models (three seeds), each with its own batch. Three ways, timed in one run:

* ``sequential``: K ordinary models, each a forward, backward and step in turn (what
  sslbench does today);
* ``vmap``: the K models' parameters and buffers stacked (``torch.func.stack_module_state``)
  and one ``torch.func.vmap`` of ``functional_call`` over them and their K batches; one
  backward, one optimiser step over the stacked tensors (SGD is elementwise, so this is K
  independent SGDs);
* ``grouped``: the K models as one network whose convolutions have ``groups=K`` (K x the
  channels, batch norm over all of them, which is per-channel and so per-model), the K
  batches side by side in the channel dimension; the classifiers as one batched matmul.

Each result is checked against sequential training before it is timed: after 3 steps from
the same weights and batches, every model's logits agree within float tolerance.
``python benchmarks/run.py -k batched_models``.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import FIGURES
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

K, BATCH, SIDE, CLASSES, WIDTHS = 3, 64, 32, 5, (24, 48, 96, 192)
STEPS_PER_ROUND = 10


class Net(nn.Module):
    """The small CNN (sslbench_plugins.backbones.smallcnn's layout) with a classifier;
    ``groups`` > 1 makes it K side-by-side copies of that network."""

    def __init__(self, groups: int = 1) -> None:
        super().__init__()
        chans = (3,) + WIDTHS
        layers = []
        for i in range(len(WIDTHS)):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(chans[i] * groups, chans[i + 1] * groups, 3, padding=1,
                                 bias=False, groups=groups),
                       nn.BatchNorm2d(chans[i + 1] * groups), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.groups = groups
        self.fc_weight = nn.Parameter(torch.randn(groups, CLASSES, WIDTHS[-1]) * 0.05)
        self.fc_bias = nn.Parameter(torch.zeros(groups, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3*groups, H, W) -> logits (groups, B, classes)."""
        f = self.features(x).mean((2, 3)).view(len(x), self.groups, -1).transpose(0, 1)
        return torch.baddbmm(self.fc_bias[:, None], f, self.fc_weight.transpose(1, 2))


def single_models(seed: int = 0) -> list[Net]:
    torch.manual_seed(seed)
    return [Net() for _ in range(K)]


def grouped_from(models: list[Net]) -> Net:
    """One groups=K network holding exactly the K models' weights."""
    g = Net(groups=K)
    singles = [dict(m.named_parameters()) | dict(m.named_buffers()) for m in models]
    with torch.no_grad():
        for name, value in list(g.named_parameters()) + list(g.named_buffers()):
            parts = [s[name] for s in singles]
            if name.startswith("fc_"):
                value.copy_(torch.cat(parts))
            elif value.ndim == 0:                      # num_batches_tracked
                value.copy_(parts[0])
            else:
                value.copy_(torch.cat(parts))
    return g


def batches(n: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(K, BATCH, 3, SIDE, SIDE, generator=g),
             torch.randint(0, CLASSES, (K, BATCH), generator=g)) for _ in range(n)]


def sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


def summed_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The sum of the K models' mean cross-entropies, from (K, B, classes) logits: each
    model's gradient is that of its own mean loss."""
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    return loss.view(K, BATCH).mean(1).sum()


class Sequential:
    def __init__(self, models: list[Net]) -> None:
        self.models = [copy.deepcopy(m) for m in models]
        self.opts = [sgd(m.parameters()) for m in self.models]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for k, (m, o) in enumerate(zip(self.models, self.opts)):
            loss = F.cross_entropy(m(x[k])[0], y[k])
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([m.eval()(x[k])[0] for k, m in enumerate(self.models)])


class VMapped:
    def __init__(self, models: list[Net]) -> None:
        self.base = copy.deepcopy(models[0]).to("meta")
        params, buffers = stack_module_state([copy.deepcopy(m) for m in models])
        self.params = {k: v.detach().requires_grad_() for k, v in params.items()}
        self.buffers = buffers
        self.opt = sgd(list(self.params.values()))

        def one(p, b, x):
            return functional_call(self.base, (p, b), (x,))[0]
        self.forward = vmap(one, in_dims=(0, 0, 0))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        loss = summed_losses(self.forward(self.params, self.buffers, x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        base = self.base
        base.eval()
        with torch.no_grad():
            out = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,))[0])(
                self.params, self.buffers, x)
        base.train()
        return out


class Grouped:
    def __init__(self, models: list[Net]) -> None:
        self.model = grouped_from(models)
        self.opt = sgd(self.model.parameters())

    @staticmethod
    def side_by_side(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(BATCH, K * 3, SIDE, SIDE)      # (B, K*3, H, W)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        loss = summed_losses(self.model(self.side_by_side(x)), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model.eval()(self.side_by_side(x))


WAYS = {"sequential": Sequential, "vmap": VMapped, "grouped": Grouped}


def test_each_way_trains_the_same_models():
    """Not a benchmark: the check that makes the timings comparable."""
    models, data = single_models(), batches(3)
    probe = batches(1, seed=2)[0][0]
    reference = Sequential(models)
    for x, y in data:
        reference.step(x, y)
    for name in ("vmap", "grouped"):
        way = WAYS[name](models)
        for x, y in data:
            way.step(x, y)
        torch.testing.assert_close(way.logits(probe), reference.logits(probe),
                                   rtol=1e-3, atol=1e-3, msg=f"{name} differs")


@pytest.mark.parametrize("way", list(WAYS))
def test_batched_models(benchmark, way):
    trainer = WAYS[way](single_models())
    data = batches(STEPS_PER_ROUND)
    trainer.step(*data[0])                                            # warm-up

    def run():
        for x, y in data:
            trainer.step(x, y)
    benchmark.pedantic(run, rounds=5, iterations=1)
    if getattr(benchmark, "stats", None) is None:
        return
    rate = K * BATCH * STEPS_PER_ROUND / benchmark.stats.stats.mean
    benchmark.extra_info["images_per_s"] = rate
    FIGURES[f"batched_models/{way}"] = rate
    if way != "sequential" and "batched_models/sequential" in FIGURES:
        benchmark.extra_info["vs_sequential"] = rate / FIGURES["batched_models/sequential"]
