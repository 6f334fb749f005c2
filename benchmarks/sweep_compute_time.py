"""Compute time of a finished sweep, summed from its records: every cell's wall time plus
each checkpoint's pretraining time (counted once, however many cells reuse it).

    python benchmarks/sweep_compute_time.py results/flowers-quick

A fine-tuning cell that resumed from a snapshot (``details.resumed_at_step``) has in its
``wall_time_s`` only the process that finished it; the time before the snapshot is in
``details.seconds`` (the snapshot carries it), so such a cell counts its wall time plus the
part of ``details.seconds`` that the finishing process did not spend. Work done after a
snapshot by a process that was then killed was redone and is in no record: it is the cost of
the interruption, not of the grid.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from sslbench._core.records import load_records


def cell_seconds(record: dict) -> float:
    """The cell's compute time, the time before its resume snapshot included."""
    seconds = record.get("wall_time_s") or 0.0
    details = record.get("details") or {}
    if details.get("resumed_at_step") and isinstance(details.get("seconds"), (int, float)):
        this_process = (record.get("time_s") or {}).get("finetuning", 0.0)
        seconds += max(details["seconds"] - this_process, 0.0)
    return seconds


def main(directory: str) -> None:
    records = load_records(directory)
    cells = sum(cell_seconds(r) for r in records)
    resumed = [r for r in records if (r.get("details") or {}).get("resumed_at_step")]
    pretraining = {r["pretraining"]["checkpoint"]: r["pretraining"]["seconds"]
                   for r in records if r.get("pretraining")}
    by_task = defaultdict(float)
    for r in records:
        by_task[r["task"]] += cell_seconds(r)
    for checkpoint, seconds in pretraining.items():
        by_task[checkpoint.split("-")[0]] += seconds
    failed = sum(r["status"] != "ok" for r in records)
    print(f"{len(records)} records, {failed} failed; cells {cells / 60:.1f} min + pretraining "
          f"{sum(pretraining.values()) / 60:.1f} min = {(cells + sum(pretraining.values())) / 60:.1f} min")
    if resumed:
        before = sum(cell_seconds(r) - (r.get("wall_time_s") or 0.0) for r in resumed)
        print(f"  {len(resumed)} cells resumed from a snapshot; {before / 60:.1f} min of the "
              f"cells' time was spent before their snapshots")
    for task, seconds in sorted(by_task.items()):
        print(f"  {task}: {seconds / 60:.1f} min")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/flowers-quick")
