"""``sslbench run --dry-run``: what a sweep would run, and how long it would take, before
spending anything: the units and cells, each unit's estimated time as a range
(:mod:`sslbench._core.estimate`: a cost model calibrated on this machine, refined by the
finished records already in ``--out``), and the checks a run makes first (the data sets are
loaded, so a missing folder or a download not allowed is the same one-line error, exit 2).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .estimate import estimate, span
from .records import device_description

if TYPE_CHECKING:
    from .runner import Sweep


def describe_plan(sweep: "Sweep") -> str:
    """A table of the units that would run, each with its cells and estimated time."""
    pending = [c for c in sweep.cells if not c.done]
    if not pending:
        return (f"sslbench run --dry-run: nothing to run: all {len(sweep.cells)} cells have a "
                f"finished record in {sweep.out}")
    units = estimate(sweep)
    table = Table(title=f"sslbench run --dry-run: {len(units)} units, {len(pending)} of "
                        f"{len(sweep.cells)} cells to run ({len(sweep.cells) - len(pending)} "
                        "finished)", title_justify="left")
    for column in ("unit", "cells", "pretraining", "cells' time", "estimate", "from"):
        table.add_column(column, justify="left" if column in ("unit", "cells", "from")
                         else "right")
    low = high = 0.0
    for u in units:
        plan = sweep.plan_of[u.unit.task]
        pre = ("—" if plan.pretext is None else "cached" if u.pretraining == (0.0, 0.0)
               else span(*u.pretraining))
        total = u.total
        low, high = low + total[0], high + total[1]
        table.add_row(u.unit.id, ", ".join(f"{c.protocol} {c.budget.label}" for c in u.unit.cells),
                      pre, span(*u.cells), span(*total), u.source)
    console = Console(width=170, record=True, file=io.StringIO())
    console.print(table)
    summary = (f"estimated {span(low, high)} on this device ({device_description(sweep.device)}) "
               f"for {len(units)} units; \"model\": this machine's measured step rates times "
               "each unit's images and epochs; \"records\": the times of finished cells of "
               "the same data set, backbone, task, protocol and label budget")
    return console.export_text().rstrip() + "\n" + summary
