"""What a task's options do: pretrain each variant on a data set and report its held-out
pretext accuracy, its shortcut control and the linear probe at 10% labels.

    python benchmarks/task_variants.py                     # the variants docs/tasks.md cites
    python benchmarks/task_variants.py relpatch relpatch:color_drop=false --seeds 0,1

A variant is ``TASK`` or ``TASK:KEY=VALUE,KEY=VALUE`` (task options). Every variant runs the
quick preset on the same splits and seeds through ``sslbench.run_sweep`` (results under
``--out``, checkpoints in ``--cache-dir``), and the table printed is what docs/tasks.md quotes,
with this command above it. The linear probe's number is one protocol at one label budget:
a variant's effect on it within a few points is noise at one seed (the published leaderboard
has the statistics).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_VARIANTS = [
    "rotation", "rotation:crop=0",
    "jigsaw", "jigsaw:min_gap=0,channel_jitter=0",
    "relpatch", "relpatch:color_drop=false", "relpatch:pixelate=0",
    "relpatch:color_drop=false,pixelate=0", "relpatch:grids_per_image=4",
    "relpatch:grid=centred,normalise=false,color_drop=false,pixelate=0",
    "exemplar", "exemplar:num_exemplars=500", "exemplar:num_exemplars=8000,fill_epoch=false",
]


def parse(variant: str) -> tuple[str, dict[str, str]]:
    task, _, rest = variant.partition(":")
    options = dict(item.split("=", 1) for item in rest.split(",") if item)
    return task, options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=DEFAULT_VARIANTS)
    parser.add_argument("--dataset", default="imagefolder:../shared/data/flowers")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", default="/tmp/sslbench-task-variants")
    parser.add_argument("--cache-dir", default="/tmp/sslbench-task-variants/cache")
    args = parser.parse_args()
    import sslbench
    from sslbench._core.progress import Reporter

    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"`python benchmarks/task_variants.py {' '.join(sys.argv[1:])}`".replace("  ", " "))
    print()
    print("| variant | held-out pretext accuracy (chance) | held-out loss / target entropy "
          "| control (chance) | linear 10% | scratch linear 10% | pretraining s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for variant in args.variants:
        task, options = parse(variant)
        out = Path(args.out) / variant.replace(":", "_").replace(",", "_").replace("=", "-")
        sslbench.run_sweep(datasets=[args.dataset], tasks=[task], fractions=[0.1],
                           protocols=["linear"], seeds=seeds, task_options={task: options},
                           out=str(out), cache_dir=args.cache_dir, reporter=Reporter())
        records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
        mine = [r for r in records if r["task"] == task]
        base = [r for r in records if r["task"] == "scratch"]
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        held = [r["pretraining"]["heldout"] for r in mine]
        controls = [r["pretraining"].get("control") for r in mine]
        control = "—" if not controls[0] else (
            f"{controls[0]['name']}: {100 * mean([c['accuracy'] for c in controls]):.1f}% "
            f"({100 * mean([c['chance'] for c in controls]):.1f}%)")
        print(f"| `{variant}` | {100 * mean([h['accuracy'] for h in held]):.1f}% "
              f"({100 * mean([h['chance'] for h in held]):.1f}%) "
              f"| {mean([h['loss'] for h in held]):.2f} / {mean([h['entropy'] for h in held]):.2f}"
              + (" (near chance)" if any(h["near_chance"] for h in held) else "")
              + f" | {control} "
              f"| {100 * mean([r['metrics']['test_accuracy'] for r in mine]):.1f} "
              f"| {100 * mean([r['metrics']['test_accuracy'] for r in base]):.1f} "
              f"| {mean([r['pretraining']['seconds'] for r in mine]):.0f} |", flush=True)


if __name__ == "__main__":
    main()
