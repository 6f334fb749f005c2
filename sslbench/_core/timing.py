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
``OUT/time/RUN.json`` (:mod:`sslbench._core.time_accounts`; this module is the clock alone
and imports nothing of sslbench, so every layer can charge its time), one file per run of
the command: per unit, per cell, and in total
against the run's wall time; ``sslbench report OUT --time`` shows them. It is written after
each pretraining and each cell and marked ``complete`` at the end, so a run that is killed
or preempted loses from its account only the piece of work it was in. With an
engine (Ray, Slurm) the units' charges come back from the workers and add up to more than
the driver's wall time when units run side by side, so ``other`` is left out there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

CATEGORIES = ("startup", "data", "pretraining", "features", "probes", "finetuning",
              "evaluation", "io", "other")
MODEL_WORK = ("pretraining", "features", "probes", "finetuning")

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
