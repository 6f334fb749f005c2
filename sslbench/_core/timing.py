"""The time account: where a sweep's wall time went.

Every stretch of a sweep's work is charged to one category while it runs (:func:`timed`):

======================  =============================================================
``startup``             from the command's start to the sweep's first unit: imports,
                        plugins, the grid (and, for an engine, starting it)
``data``                loading, checking and splitting a data set, placing its images
``pretraining``         pretext training steps
``features``            extracting frozen features for the probes
``probes``              fitting a protocol that does not train the backbone (linear, kNN)
``finetuning``          fitting one that does (its validation checks included)
``evaluation``          the test predictions, the pretext and shortcut checks
``io``                  reading and writing checkpoints, features, records, split files
``other``               what nothing above claimed: waiting for a claim, building
                        backbones, bookkeeping (the wall time minus the rest)
======================  =============================================================

Charges are exclusive: features extracted inside a probe's fit count as ``features``, not
``probes``. The model's own work is ``pretraining + finetuning + probes + features``.

Each cell's record keeps its own charges (``time_s``); a unit's shared work (data,
pretraining, its checks and checkpoint I/O) is charged to the unit. Every sweep writes
``OUT/time/RUN.json``, one file per run of the command: per unit, per cell, and in total
against the run's wall time; ``sslbench report OUT --time`` shows them. It is written after
each pretraining and each cell and marked ``complete`` at the end, so a run that is killed
or preempted loses from its account only the piece of work it was in. With an
engine (Ray, Slurm) the units' charges come back from the workers and add up to more than
the driver's wall time when units run side by side, so ``other`` is left out there.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CATEGORIES = ("startup", "data", "pretraining", "features", "probes", "finetuning",
              "evaluation", "io", "other")
MODEL_WORK = ("pretraining", "features", "probes", "finetuning")
TIME_DIR = "time"

# when the command started (set by the CLI as its first act); else the account's creation
COMMAND_STARTED: float | None = None


class TimeAccount:
    """Exclusive wall-clock charges per category, with marks to read one cell's or unit's
    share. One per process; :func:`timed` charges the current one."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
        self._open: list[list[Any]] = []       # [category, started, time of nested charges]

    @contextlib.contextmanager
    def charge(self, category: str) -> Iterator[None]:
        if category not in self.totals:
            raise ValueError(f"unknown time category {category!r}")
        entry = [category, time.perf_counter(), 0.0]
        self._open.append(entry)
        try:
            yield
        finally:
            self._open.pop()
            elapsed = time.perf_counter() - entry[1]
            self.totals[category] += elapsed - entry[2]
            if self._open:
                self._open[-1][2] += elapsed

    def mark(self) -> dict[str, float]:
        """The totals now, to subtract later (:meth:`since`)."""
        return dict(self.totals)

    def since(self, mark: dict[str, float]) -> dict[str, float]:
        """The charges made since ``mark`` (closed ones: a charge still open counts when it
        closes), rounded, without the empty categories."""
        return {k: round(v - mark.get(k, 0.0), 3) for k, v in self.totals.items()
                if v - mark.get(k, 0.0) > 0.0005}


_CURRENT = TimeAccount()


def account() -> TimeAccount:
    return _CURRENT


def reset() -> TimeAccount:
    """A fresh account for this process (a new sweep in a reused worker)."""
    global _CURRENT
    _CURRENT = TimeAccount()
    return _CURRENT


def timed(category: str) -> contextlib.AbstractContextManager[None]:
    """Charge the body's wall time to ``category`` of this process's account."""
    return _CURRENT.charge(category)


def add(into: dict[str, float], charges: dict[str, float]) -> None:
    for key, value in charges.items():
        into[key] = into.get(key, 0.0) + value


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
    from .atomic import atomic_write_json
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
    import math

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
