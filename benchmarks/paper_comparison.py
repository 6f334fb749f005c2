"""sslbench's CIFAR-10 numbers beside the papers', in the papers' units (accuracy %, labels
per class), from a results folder:

    python benchmarks/paper_comparison.py results/cifar10-quick results/cifar10-quick-uda \
        results/cifar10-quick-vs-papers

writes ``...-vs-papers.md`` (the tables) and ``...-vs-papers.png`` (rotation's gain over
scratch against labels per class, with RotNet's points).

**RotNet** (Gidaris et al. 2018, the semi-supervised CIFAR-10 figure; its values as tabulated
in Qi & Luo, "Small Data Challenges in Big Data Era", TPAMI 2022, Table 1, quoted from
sslbench's issue 26 and not re-read from the paper on this machine): "supervised" is NIN
trained from scratch on the K labels per class; "RotNet + conv" is the conv classifier on the
frozen block 2 of a RotNet pretrained on all 50,000 images. Its gain is therefore the frozen
pretrained network with a conv head *against a network trained from scratch*. sslbench's
counterpart pairs, seed by seed, rotation under the ``nonlinear`` protocol against scratch
under ``finetune`` (same labeled subsets, same test images); the leaderboard's own columns
compare each protocol with itself, and both are shown.

**UDA** (USB's classic CV table, CIFAR-10 with 40, 250 and 4,000 labels, 3 seeds;
WideResNet-28-2, about a million steps): supervised and UDA error rates, beside sslbench's
scratch and ``uda`` rows under ``finetune`` at the same numbers of labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from sslbench.leaderboard import Leaderboard
from sslbench._core.budgets import Budget
from sslbench._core.records import load_results_dirs
from sslbench._core.stats import compare

# error % of RotNet's semi-supervised CIFAR-10 figure, by labels per class
ROTNET_ERROR = {"supervised": {20: 66.34, 100: 52.74, 400: 25.81, 1000: 16.53, 5000: 6.93},
                "RotNet + conv": {20: 35.37, 100: 24.72, 400: 17.16, 1000: 13.57, 5000: 8.05}}
# USB classic CV, CIFAR-10, error % (mean of 3 seeds), by number of labels
USB_ERROR = {"supervised": {40: 77.58, 250: 55.96, 4000: 15.51},
             "UDA": {40: 8.01, 250: 5.12, 4000: 4.32}}


def _cells(records: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """Finished records by (task, protocol, labels per class)."""
    out: dict[tuple[str, str, int], list[dict]] = {}
    for r in records:
        budget = Budget.of_record(r)
        if r["status"] == "ok" and budget.kind == "per_class":
            out.setdefault((r["task"], r["protocol"], int(budget.value)), []).append(r)
    return out


def _mean(records: list[dict]) -> str:
    if not records:
        return "—"
    accs = pd.Series([100 * r["metrics"]["test_accuracy"] for r in records])
    sd = f" ± {accs.std():.1f}" if len(accs) > 1 else ""
    return f"{accs.mean():.1f}{sd} (n={len(accs)})"


def _gain(result) -> str:
    if result is None:
        return "—"
    if not result.tested:
        return f"{result.mean:+.1f} (1 seed, not tested)"
    return (f"{result.mean:+.1f} [{result.ci_low:+.1f}, {result.ci_high:+.1f}], "
            f"p_t {result.p_t:.3g}, p_boot {result.p_boot:.3g} (n={result.n})")


def rotnet_table(records: list[dict]) -> tuple[pd.DataFrame, dict]:
    cells = _cells(records)
    rows, gains = [], {}
    for k in sorted(ROTNET_ERROR["supervised"]):
        paper_sup = 100 - ROTNET_ERROR["supervised"][k]
        paper_rot = 100 - ROTNET_ERROR["RotNet + conv"][k]
        scratch_ft = cells.get(("scratch", "finetune", k), [])
        rot_nl = cells.get(("rotation", "nonlinear", k), [])
        scratch_nl = cells.get(("scratch", "nonlinear", k), [])
        across = compare(rot_nl, scratch_ft) if rot_nl and scratch_ft else None
        same = compare(rot_nl, scratch_nl) if rot_nl and scratch_nl else None
        gains[k] = (paper_rot - paper_sup, across)
        rows.append({"labels per class": k,
                     "RotNet: supervised NIN": f"{paper_sup:.2f}",
                     "RotNet: RotNet + conv": f"{paper_rot:.2f}",
                     "RotNet: gain": f"{paper_rot - paper_sup:+.2f}",
                     "sslbench: scratch, finetune": _mean(scratch_ft),
                     "sslbench: rotation, nonlinear": _mean(rot_nl),
                     "sslbench: gain (rotation nonlinear - scratch finetune)": _gain(across),
                     "sslbench: gain (rotation - scratch, both nonlinear)": _gain(same)})
    return pd.DataFrame(rows), gains


def uda_table(records: list[dict]) -> pd.DataFrame:
    cells = _cells(records)
    rows = []
    for labels in sorted(USB_ERROR["supervised"]):
        k = labels // 10
        scratch = cells.get(("scratch", "finetune", k), [])
        uda = cells.get(("uda", "finetune", k), [])
        rows.append({"labels (per class)": f"{labels} ({k})",
                     "USB: supervised": f"{100 - USB_ERROR['supervised'][labels]:.2f}",
                     "USB: UDA": f"{100 - USB_ERROR['UDA'][labels]:.2f}",
                     "sslbench: scratch, finetune": _mean(scratch),
                     "sslbench: uda, finetune": _mean(uda),
                     "sslbench: gain": _gain(compare(uda, scratch) if uda and scratch
                                             else None)})
    return pd.DataFrame(rows)


def plot(gains: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ks = sorted(gains)
    ax.plot(ks, [gains[k][0] for k in ks], "s--", color="black",
            label="RotNet + conv - supervised (paper)")
    have = [k for k in ks if gains[k][1] is not None]
    if have:
        means = [gains[k][1].mean for k in have]
        low = [gains[k][1].mean - gains[k][1].ci_low if gains[k][1].tested else 0 for k in have]
        high = [gains[k][1].ci_high - gains[k][1].mean if gains[k][1].tested else 0 for k in have]
        ax.errorbar(have, means, yerr=[low, high], fmt="o-", capsize=3,
                    label="rotation nonlinear - scratch finetune (sslbench, 95% t)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("labels per class")
    ax.set_ylabel("gain over scratch (points)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(folders: list[str], stem: str) -> None:
    records = load_results_dirs(folders)     # a cell in two folders counts once
    if not records:
        raise SystemExit(f"paper_comparison: no records in {', '.join(folders)}")
    rotnet, gains = rotnet_table(records)
    uda = uda_table(records)
    board = Leaderboard(records)
    seeds = sorted({r["seed"] for r in records if r["status"] == "ok"})
    text = ["# sslbench on CIFAR-10 beside the papers\n",
            f"From `python benchmarks/paper_comparison.py {' '.join(folders)} {stem}` over "
            f"{len(records)} records (seeds {', '.join(map(str, seeds))}); test accuracy %, "
            "mean ± std over seeds; gains with their 95% t interval and the paired t-test "
            "and bootstrap p-values (not corrected for multiplicity here; the leaderboard "
            "corrects). The papers ran NIN or WideResNet-28-2 at full length on the "
            "original CIFAR-10 files; sslbench here runs the quick preset (SmallCNN, 15 "
            "pretraining epochs) on a JPEG re-encoding of them: the comparison is of "
            "shapes (where the gain is, how it falls with labels), not of values.\n",
            "## RotNet's semi-supervised figure\n",
            rotnet.to_markdown(index=False), "",
            f"![rotation's gain over scratch against labels per class]({Path(stem).name}.png)\n",
            "## UDA (USB, classic CV)\n", uda.to_markdown(index=False), "",
            f"Budgets present: {', '.join(board.budgets)}.\n"]
    Path(f"{stem}.md").write_text("\n".join(text))
    plot(gains, Path(f"{stem}.png"))
    print(f"wrote {stem}.md and {stem}.png")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__.split("\n\n")[1])
    main(sys.argv[1:-1], sys.argv[-1])
