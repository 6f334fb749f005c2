"""Linear probe on cached features against re-running the frozen backbone at every probe
epoch (each L-BFGS function evaluation), the classic way. Same optimiser, same data, same
frozen network: the accuracies must agree; only the feature computation differs.

And the linear protocol's L2 grid solved independently (each from zeros) against walked
with warm starts (``fit_l2_path``): the same choice, in fewer L-BFGS iterations."""

from __future__ import annotations

import pytest
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


def _l2_path_choice(feats, ytr, yval, yte, ntr, nval, warm: bool):
    """The linear protocol's choice over every stage and the default L2 grid (from the
    protocol's defaults), cold (every solve from zeros) or warm-started along the grid."""
    from sslbench_plugins.protocols.linear import LinearProbe, fit_l2_path
    grid, max_iter = LinearProbe.defaults["l2"], LinearProbe.defaults["max_iter"]
    best, iterations = None, 0
    for stage, f in enumerate(feats):
        norm = Standardiser(f[:ntr])
        for fit in fit_l2_path(norm(f[:ntr]), ytr, 5, grid, max_iter, warm):
            iterations += fit["iterations"]
            val = ((norm(f[ntr:ntr + nval]) @ fit["w"] + fit["b"]).argmax(1) == yval)
            val = val.float().mean().item()
            if best is None or val > best[0]:
                test = ((norm(f[ntr + nval:]) @ fit["w"] + fit["b"]).argmax(1) == yte)
                best = (val, stage + 1, fit["l2"], test.float().mean().item())
    return best, iterations


@pytest.mark.parametrize("warm", [False, True], ids=["independent", "warm-started"])
def test_probe_l2_path(benchmark, flowers32, warm):
    """The linear protocol's fits (4 stages x 5 L2 values, L-BFGS up to 500 iterations) on
    the flowers features of a randomly initialised small CNN (what the scratch row probes):
    each solve from zeros, or the grid walked strongest-first from the previous solution.
    The chosen stage and L2 (on validation) and the chosen probe's test accuracy must agree."""
    backbone, xtr, ytr, xte, yte = setup(flowers32)
    ntr, nval = len(xtr) * 4 // 5, len(xtr) - len(xtr) * 4 // 5
    feats = extract_features(backbone, torch.cat([xtr, xte]), DEVICE, None)
    result = benchmark.pedantic(
        lambda: _l2_path_choice(feats, ytr[:ntr], ytr[ntr:], yte, ntr, nval, warm),
        rounds=1, warmup_rounds=0)
    (val, stage, l2, test), iterations = result
    name = "warm" if warm else "cold"
    benchmark.extra_info.update(chosen_stage=stage, chosen_l2=f"{l2:g}", val_accuracy=100 * val,
                                test_accuracy=100 * test, lbfgs_iterations=iterations)
    if benchmark.stats is None:
        return
    FIGURES[f"probe/path_{name}_s"] = benchmark.stats.stats.mean
    FIGURES[f"probe/path_{name}"] = (stage, l2, test)
    if warm and "probe/path_cold_s" in FIGURES:
        benchmark.extra_info["speedup"] = FIGURES["probe/path_cold_s"] / FIGURES["probe/path_warm_s"]
        benchmark.extra_info["same_choice"] = FIGURES["probe/path_cold"] == (stage, l2, test)
