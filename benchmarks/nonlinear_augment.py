"""What the quick preset's departure from RotNet's classifier training costs: the nonlinear
protocol without augmentation (maps computed once per cell) against the authors' crop and
flip of every batch before the frozen network, on the published CIFAR-10 sweep's own
checkpoints, labeled subsets and validation images.

A ``--plugin`` for the sweep's checkout: it registers ``nonlinear_aug``, the nonlinear
protocol of THIS checkout (loaded from its file, whatever version of sslbench runs the sweep)
with the quick preset's values and ``augment = true``. Being a local plugin, it leaves the
identity of the built-in plugins, and so the sweep's checkpoints, untouched: the cells reuse
the published sweep's pretrained rotation network.

    cd ../wt-c10       # the checkout that made results/cifar10-quick (its README names it)
    sslbench run --dataset imagefolder:../shared/data/cifar10 --tasks rotation \\
        --labels-per-class 20,100,400,1000 --protocols nonlinear_aug --seeds 0 \\
        --plugin ../main/benchmarks/nonlinear_augment.py --out ../main/results/cifar10-quick-augment \\
        --cache-dir CACHE_OF_THE_SWEEP
    python benchmarks/nonlinear_augment.py results/cifar10-quick results/cifar10-quick-augment

The second command prints, per budget, the two protocols' test accuracies and their paired
difference (one seed: a bootstrap over the test images only).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import sslbench

_spec = importlib.util.spec_from_file_location(
    "sslbench_nonlinear_of_this_checkout",
    Path(__file__).resolve().parents[1] / "plugins" / "sslbench_plugins" / "protocols"
    / "nonlinear.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


class AugmentedNonLinear(_module.NonLinearProbe):
    name = "nonlinear_aug"
    description = "nonlinear, each batch cropped and flipped before the frozen network"
    presets = {"quick": {**_module.NonLinearProbe.presets["quick"], "augment": True}}


@sslbench.hookimpl
def sslbench_protocols():
    return [AugmentedNonLinear]


def compare_folders(plain: str, augmented: str) -> None:
    """Per budget: nonlinear (plain) and nonlinear_aug test accuracy, paired over test
    images."""
    import numpy as np

    from sslbench._core.budgets import Budget
    from sslbench._core.records import load_records
    from sslbench._core.stats import correctness_differences, paired_bootstrap
    ours = {}
    for r in load_records(plain) + load_records(augmented):
        if r["status"] == "ok" and r["task"] == "rotation" and r["protocol"] in (
                "nonlinear", "nonlinear_aug"):
            ours[(r["protocol"], Budget.of_record(r).label, r["seed"])] = r
    print("| budget | seed | nonlinear (maps once) | nonlinear_aug (crop+flip) | "
          "difference [95% bootstrap over test images] |")
    print("| --- | --- | ---: | ---: | --- |")
    for (proto, budget, seed), r in sorted(ours.items()):
        other = ours.get(("nonlinear_aug", budget, seed))
        if proto != "nonlinear" or other is None:
            continue
        diff = correctness_differences(other, r)
        mean, low, high, _ = paired_bootstrap([diff.astype(np.float64)])
        print(f"| {budget} | {seed} | {100 * r['metrics']['test_accuracy']:.1f} | "
              f"{100 * other['metrics']['test_accuracy']:.1f} | {mean:+.1f} "
              f"[{low:+.1f}, {high:+.1f}] |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.split("\n\n")[2])
    compare_folders(sys.argv[1], sys.argv[2])
