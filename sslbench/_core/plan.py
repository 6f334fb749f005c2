"""``sslbench run --dry-run``: what a sweep would run, and roughly how long, before spending.

The estimate comes from records already in ``--out``: a pending cell's time is the median
``wall_time_s`` of finished records of the same data set, backbone, task, protocol and
fraction (any seed, any earlier configuration), and a unit's pretraining the median of their
``pretraining.seconds`` (counted once per unit, and not at all where the checkpoint is
cached: a record of the same unit names a checkpoint file that is in the cache). Where no such record exists the estimate says "?": sslbench does not guess.
"""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .grid import units_of
from .records import load_records

if TYPE_CHECKING:
    from .runner import Sweep


def _minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def describe_plan(sweep: "Sweep") -> str:
    """A table of the units that would run, each with its cells and estimated time."""
    cell_times: dict[tuple, list[float]] = defaultdict(list)
    checkpoints: dict[tuple, set[str]] = defaultdict(set)
    pretrain_times: dict[tuple, list[float]] = defaultdict(list)
    for r in load_records(sweep.out):
        if r.get("status") != "ok":
            continue
        key = (r["dataset"], r["backbone"], r["task"])
        if isinstance(r.get("wall_time_s"), (int, float)):
            cell_times[key + (r["protocol"], float(r["fraction"]))].append(r["wall_time_s"])
        info = r.get("pretraining") or {}
        if isinstance(info.get("checkpoint"), str):
            checkpoints[key + (r["seed"],)].add(info["checkpoint"])
        if not info.get("cached") and isinstance(info.get("seconds"), (int, float)):
            pretrain_times[key].append(info["seconds"])

    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    pending = [c for c in sweep.cells if not c.done]
    units = units_of(pending)
    table = Table(title=f"sslbench run --dry-run: {len(units)} units, {len(pending)} of "
                        f"{len(sweep.cells)} cells to run ({len(sweep.cells) - len(pending)} "
                        "finished)", title_justify="left")
    for column in ("unit", "cells", "pretraining", "cells' time", "estimate"):
        table.add_column(column, justify="left" if column in ("unit", "cells") else "right")
    total, unknown = 0.0, 0
    for unit in units:
        plan = sweep.plan_of[unit.task]
        key = (unit.dataset, unit.backbone, unit.task)
        cached = any(sweep.checkpoints.path(c).is_file()
                     for c in checkpoints[key + (unit.seed,)])
        pre = 0.0 if plan.pretext is None or cached else median(pretrain_times[key])
        per_cell = [median(cell_times[key + (c.protocol, float(c.fraction))])
                    for c in unit.cells]
        cells_s = None if None in per_cell else sum(per_cell)
        estimate = None if pre is None or cells_s is None else pre + cells_s
        if estimate is None:
            unknown += 1
        else:
            total += estimate
        table.add_row(unit.id, ", ".join(f"{c.protocol} {c.fraction:g}" for c in unit.cells),
                      "cached" if pre == 0.0 and plan.pretext is not None else
                      ("—" if plan.pretext is None else _minutes(pre)),
                      _minutes(cells_s), _minutes(estimate))
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(table)
    summary = (f"estimated {total / 60:.1f} min on this device for {len(units) - unknown} "
               f"units" + (f"; {unknown} without a finished record of the same cell to "
                           "estimate from" if unknown else ""))
    return console.export_text().rstrip() + "\n" + summary
