"""Compute time of a finished sweep, summed from its records: every cell's wall time plus
each checkpoint's pretraining time (counted once, however many cells reuse it).

    python benchmarks/sweep_compute_time.py results/flowers-quick
"""

from __future__ import annotations

import sys
from collections import defaultdict

from sslbench._core.records import load_records


def main(directory: str) -> None:
    records = load_records(directory)
    cells = sum(r.get("wall_time_s") or 0 for r in records)
    pretraining = {r["pretraining"]["checkpoint"]: r["pretraining"]["seconds"]
                   for r in records if r.get("pretraining")}
    by_task = defaultdict(float)
    for r in records:
        by_task[r["task"]] += r.get("wall_time_s") or 0
    for checkpoint, seconds in pretraining.items():
        by_task[checkpoint.split("-")[0]] += seconds
    failed = sum(r["status"] != "ok" for r in records)
    print(f"{len(records)} records, {failed} failed; cells {cells / 60:.1f} min + pretraining "
          f"{sum(pretraining.values()) / 60:.1f} min = {(cells + sum(pretraining.values())) / 60:.1f} min")
    for task, seconds in sorted(by_task.items()):
        print(f"  {task}: {seconds / 60:.1f} min")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/flowers-quick")
