"""Early stopping of fine-tuning (``--opt finetune.patience=P``) against the full budget.

Two measurements, both written into benchmarks/RESULTS.md with their commands:

``curves``: what each patience would have done to finished sweeps, read from their records.
    python benchmarks/early_stopping.py curves results/flowers-quick results/digits-quick
An early-stopped run is the full run cut short (the same steps, the same random draws up to
the stop), so its validation curve is a prefix of the full run's: for every fine-tuning
record, and every patience, the step where it would stop, the check it would choose and the
validation images that choice loses are exact. Its test accuracy is not in the records when
the choice differs; that is what the second measurement runs.

``run``: the same sweep run with the full budget and with each patience, paired by cell
(``compare OUT`` redoes only the comparison of the folders it wrote).
    python benchmarks/early_stopping.py run --patience 5,8 --seeds 0,1,2 --out /tmp/es \\
        --dataset imagefolder:../shared/data/flowers
Reports, per patience, the fine-tuning steps and seconds against the full budget (a ratio
over all cells, from the records' own timings) and the chosen model's test accuracy minus
the full run's, paired over seeds (Student's t) and over seeds and test images (bootstrap).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from sslbench._core.records import load_records
from sslbench._core.stats import compare as paired_compare, paired_t
from sslbench.training import checks_since_best


def stop_index(accs: list[float], patience: int) -> int:
    """Index of the check at which a run with ``patience`` stops (the last one if never)."""
    for i in range(len(accs)):
        if patience and checks_since_best(accs[:i + 1]) >= patience:
            return i
    return len(accs) - 1


def chosen_index(accs: list[float]) -> int:
    return max(range(len(accs)), key=lambda i: (accs[i], -i))


def curves(directories: list[str], patiences: list[int]) -> None:
    for directory in directories:
        records = [r for r in load_records(directory)
                   if r["status"] == "ok" and r["protocol"] == "finetune"]
        print(f"\n{directory}: {len(records)} fine-tuning records")
        print("| patience (checks) | runs stopped early | choice changed | validation images "
              "lost when changed | steps saved |")
        print("| ---: | ---: | ---: | --- | ---: |")
        for p in patiences:
            stopped = changed = saved = total = 0
            lost: list[int] = []
            for r in records:
                d = r["details"]
                accs = [c["val_accuracy"] for c in d["curve"]]
                steps = [c["step"] for c in d["curve"]]
                stop = stop_index(accs, p)
                stopped += stop < len(accs) - 1
                early = chosen_index(accs[:stop + 1])
                if early != chosen_index(accs):
                    changed += 1
                    lost.append(round((max(accs) - accs[early]) * r["n_val"]))
                saved += d["steps"] - steps[stop]
                total += d["steps"]
            text = (f"median {sorted(lost)[len(lost) // 2]}, max {max(lost)}" if lost else "—")
            print(f"| {p} | {stopped} | {changed} | {text} | {100 * saved / total:.1f}% |")


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    base = [sys.executable, "-m", "sslbench", "run", "--quiet", "--dataset", args.dataset,
            "--tasks", args.tasks, "--protocols", "finetune", "--fractions", args.fractions,
            "--seeds", args.seeds, "--cache-dir", str(out / "cache")]
    patiences = [0] + [int(p) for p in args.patience.split(",")]
    for p in patiences:
        cmd = base + ["--out", str(out / f"patience-{p}"), "--opt", f"finetune.patience={p}"]
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, env=env)
    compare(out)


def compare(out: Path) -> None:
    """The patience-P folders of ``out`` against its patience-0 folder, paired by cell."""
    patiences = sorted(int(d.name.split("-")[1]) for d in Path(out).glob("patience-*"))
    runs = {p: load_records(Path(out) / f"patience-{p}") for p in patiences}
    key = lambda r: (r["task"], r["fraction"], r["seed"])  # noqa: E731
    full = {key(r): r for r in runs[0] if r["status"] == "ok"}
    for p in patiences[1:]:
        mine = {key(r): r for r in runs[p] if r["status"] == "ok"}
        pairs = [(mine[k], full[k]) for k in sorted(mine) if k in full]
        steps = sum(a["details"]["last_step"] for a, _ in pairs)
        full_steps = sum(b["details"]["last_step"] for _, b in pairs)
        secs = sum(a["details"]["seconds"] for a, _ in pairs)
        full_secs = sum(b["details"]["seconds"] for _, b in pairs)
        changed = sum(a["details"]["chosen_step"] != b["details"]["chosen_step"]
                      for a, b in pairs)
        print(f"\npatience {p}: {len(pairs)} paired cells, {changed} chose another check; "
              f"fine-tuning steps {steps}/{full_steps} = {steps / full_steps:.3f}, "
              f"seconds {secs:.0f}/{full_secs:.0f} = {secs / full_secs:.3f}")
        groups = defaultdict(lambda: ([], []))
        for a, b in pairs:
            groups[(a["task"], a["fraction"])][0].append(a)
            groups[(a["task"], a["fraction"])][1].append(b)
        print("| task | fraction | seeds | stopped at (share of budget) | test acc. "
              "(patience - full), points, 95% t | bootstrap 95% |")
        print("| --- | ---: | ---: | --- | --- | --- |")
        every = []
        for (task, fraction), (a, b) in sorted(groups.items()):
            c = paired_compare(a, b)
            every += [100 * (x["metrics"]["test_accuracy"] - y["metrics"]["test_accuracy"])
                      for x, y in zip(a, b)]
            shares = ", ".join(f"{x['details']['last_step'] / x['details']['steps']:.2f}"
                               for x in a)
            print(f"| {task} | {fraction:g} | {c.n} | {shares} | {c.mean:+.2f} "
                  f"[{c.ci_low:+.2f}, {c.ci_high:+.2f}] | [{c.boot_low:+.2f}, {c.boot_high:+.2f}] |")
        m, lo, hi, pv = paired_t(every)
        print(f"all cells: {m:+.2f} points [{lo:+.2f}, {hi:+.2f}], p = {pv:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curves")
    c.add_argument("directories", nargs="+")
    c.add_argument("--patience", default="2,3,4,5,6,8,10")
    r = sub.add_parser("run")
    r.add_argument("--patience", default="5,8")
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--fractions", default="0.1,0.5,1.0")
    r.add_argument("--tasks", default="scratch")
    r.add_argument("--dataset", default="digits")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--out", required=True)
    m = sub.add_parser("compare", help="only the comparison, of the folders a run wrote")
    m.add_argument("out")
    args = parser.parse_args()
    if args.command == "curves":
        curves(args.directories, [int(p) for p in args.patience.split(",")])
    elif args.command == "compare":
        compare(Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
