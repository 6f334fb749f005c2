"""The time accounts' files: ``OUT/time/RUN.json``, one per run of the command, written by
the sweep as it goes and read back by ``sslbench report OUT --time``. What the categories
mean and how time is charged to them is :mod:`sslbench._core.timing`, the clock; this
module sits above :mod:`sslbench._core.atomic`, which the clock does not import."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .timing import CATEGORIES, MODEL_WORK, add

TIME_DIR = "time"


def run_name(started: float) -> str:
    """One run of the command, named by when it started, the host and the process: its time
    account (``OUT/time/NAME.json``) and its log (``OUT/logs/NAME.log``) share the name."""
    run = time.strftime("%Y%m%dT%H%M%S", time.localtime(started))
    return f"{run}-{socket.gethostname()}-{os.getpid()}"


def write_run(out: Path, *, started: float, executor: str, sweep_started: float,
              units: dict[str, dict[str, float]], cells: dict[str, dict[str, float]],
              local: bool, complete: bool = True) -> Path:
    """Write this run's account to ``OUT/time/RUN.json`` (atomically) and return the path.

    ``started`` is when the command started (wall clock), ``sweep_started`` when its first
    unit could start; ``units`` and ``cells`` are the charges of what ran. With ``local``
    (every unit ran in this process) ``other`` is the wall time the charges leave over.
    ``complete=False``: written after a pretraining or a cell while the run goes on; if the
    run is killed, the file stays so, an account up to its last finished piece of work."""
    wall = time.time() - started
    total: dict[str, float] = {}
    for charges in [*units.values(), *cells.values()]:
        add(total, charges)
    total["startup"] = total.get("startup", 0.0) + max(0.0, sweep_started - started)
    total.pop("other", None)
    if local:
        total["other"] = max(0.0, wall - sum(total.values()))
    model = sum(total.get(k, 0.0) for k in MODEL_WORK)
    path = Path(out) / TIME_DIR / f"{run_name(started)}.json"
    atomic_write_json(path, {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "executor": executor, "wall_s": round(wall, 3), "complete": complete,
        "total_s": {k: round(v, 3) for k, v in total.items()},
        "model_work_s": round(model, 3),
        "model_work_share": round(model / wall, 4) if local and wall > 0 else None,
        "units": units, "cells": cells})
    return path


def read_runs(out: Path, warn=None) -> list[dict[str, Any]]:
    """Every run's account in ``OUT/time/``, oldest first; an unreadable file is named
    (``warn``) and skipped."""
    runs = []
    for path in sorted((Path(out) / TIME_DIR).glob("*.json")):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            problem = account_problem(run)
            if problem:
                raise ValueError(f"not a time account: {problem}")
        except (OSError, ValueError, RecursionError) as exc:
            if warn is not None:
                warn(f"ignoring {str(path)!r}: {exc}")
            continue
        run["file"] = path.name
        runs.append(run)
    return runs


def account_problem(run: Any) -> str | None:
    """Why ``run`` is not a time account that :func:`render_runs` can show, or None: it is
    a file anyone sharing the results folder may have written, so every field read is
    checked (seconds are finite numbers >= 0, names are strings)."""
    def seconds(value: Any) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0)
    if not isinstance(run, dict):
        return f"a {type(run).__name__}, not an object"
    for key in ("started", "executor"):
        if not isinstance(run.get(key), str):
            return f"no {key!r}"
    for key in ("wall_s", "model_work_s"):
        if not seconds(run.get(key)):
            return f"{key} {run.get(key)!r} is not a number of seconds"
    totals = run.get("total_s")
    if not isinstance(totals, dict) or not all(isinstance(k, str) and seconds(v)
                                               for k, v in totals.items()):
        return "total_s is not a table of seconds"
    share = run.get("model_work_share")
    if share is not None and not seconds(share):
        return f"model_work_share {share!r} is not a number >= 0"
    if not isinstance(run.get("complete", True), bool):
        return "complete is not true or false"
    return None


def render_runs(runs: list[dict[str, Any]]) -> str:
    """A markdown table of the runs' accounts: seconds per category, and the share of the
    wall time where every unit ran in the driver (local)."""
    head = ["run", "executor", "wall s", *CATEGORIES, "model work"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * 2 + " ---: |" * (len(head) - 2)]
    sums: dict[str, float] = {}
    wall_sum = 0.0
    for run in runs:
        wall = float(run["wall_s"])
        wall_sum += wall
        add(sums, run["total_s"])
        share = run.get("model_work_share")
        cells = [f"{run['total_s'][k]:.1f}" if k in run["total_s"] else "—" for k in CATEGORIES]
        # an account a killed run left: up to its last finished pretraining or cell
        started = run["started"] + ("" if run.get("complete", True) else " (unfinished)")
        lines.append(f"| {started} | {run['executor']} | {wall:.1f} | "
                     + " | ".join(cells) + " | "
                     + (f"{run['model_work_s']:.1f} ({share:.0%})" if share is not None
                        else f"{run['model_work_s']:.1f}") + " |")
    if len(runs) > 1:
        model = sum(sums.get(k, 0.0) for k in MODEL_WORK)
        lines.append(f"| all {len(runs)} runs | | {wall_sum:.1f} | "
                     + " | ".join(f"{sums[k]:.1f}" if k in sums else "—" for k in CATEGORIES)
                     + f" | {model:.1f} |")
    return "\n".join(lines)
