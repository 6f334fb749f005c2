"""Linear probe on cached features against re-running the frozen backbone at every probe
epoch (each L-BFGS function evaluation), the classic way. Same optimiser, same data, same
frozen network: the accuracies must agree; only the feature computation differs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import FIGURES
from sslbench_plugins.backbones.smallcnn import SmallCNN
from sslbench_plugins.protocols.linear import Standardiser, fit_logistic_regression

from sslbench.augment import to_float
from sslbench._core.features import extract_features

MAX_ITER = 50
L2 = 1e-3
DEVICE = torch.device("cpu")


def setup(flowers32):
    images, labels, _ = flowers32
    torch.manual_seed(0)
    backbone = SmallCNN().eval()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    images, labels = images[order], labels[order]      # the loader's order is class by class
    n = len(images) * 4 // 5
    return backbone, images[:n], labels[:n], images[n:], labels[n:]


def test_probe_on_cached_features(benchmark, flowers32):
    backbone, xtr, ytr, xte, yte = setup(flowers32)

    def run():
        ftr = extract_features(backbone, xtr, DEVICE, None)[-1]
        norm = Standardiser(ftr)
        w, b, _ = fit_logistic_regression(norm(ftr), ytr, 5, L2, MAX_ITER)
        fte = extract_features(backbone, xte, DEVICE, None)[-1]
        return ((norm(fte) @ w + b).argmax(1) == yte).float().mean().item()
    accuracy = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    if benchmark.stats is None:
        return
    FIGURES["probe/cached_s"] = benchmark.stats.stats.mean
    FIGURES["probe/cached_accuracy"] = 100 * accuracy
    benchmark.extra_info["test_accuracy"] = 100 * accuracy


def test_probe_rerunning_the_backbone(benchmark, flowers32):
    backbone, xtr, ytr, xte, yte = setup(flowers32)

    def features(images):
        with torch.no_grad():
            return torch.cat([backbone(to_float(images[i:i + 512]))
                              for i in range(0, len(images), 512)])

    def run():
        norm = Standardiser(features(xtr))
        w = torch.zeros(192, 5, requires_grad=True)
        b = torch.zeros(5, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=MAX_ITER, history_size=20,
                                tolerance_grad=1e-7, tolerance_change=1e-9,
                                line_search_fn="strong_wolfe")

        def closure():      # one "epoch": the frozen network runs over the data again
            opt.zero_grad()
            x = norm(features(xtr))
            loss = F.cross_entropy(x @ w + b, ytr) + 0.5 * L2 * (w * w).sum()
            loss.backward()
            return loss
        opt.step(closure)
        return ((norm(features(xte)) @ w + b).argmax(1) == yte).float().mean().item()
    accuracy = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    if benchmark.stats is None:
        return
    FIGURES["probe/rerun_s"] = benchmark.stats.stats.mean
    FIGURES["probe/rerun_accuracy"] = 100 * accuracy
    FIGURES["probe/speedup"] = FIGURES["probe/rerun_s"] / FIGURES.get("probe/cached_s", float("nan"))
    benchmark.extra_info.update(test_accuracy=100 * accuracy, speedup=FIGURES["probe/speedup"])
