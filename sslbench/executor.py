"""Executors: where a sweep's units of work run. A plugin kind like tasks and protocols.

sslbench schedules nothing itself. It cuts its grid into units (:class:`Unit`: one
pretraining and the cells that use it) and hands each, as a :class:`UnitJob`, to an
executor, which runs it somewhere (this process, worker processes, a Ray cluster, Slurm) and
says when it ended (:class:`Finished`). The built-in ``local``, ``ray`` and ``slurm`` are
plugins of this kind, registered as a third party's would be; ``sslbench list executors``
shows what is installed. A plugin contributes executor classes::

    @sslbench.hookimpl
    def sslbench_executors():
        return [ThreadExecutor]

and a user picks one with ``--executor NAME`` and sets its options with ``--opt
NAME.KEY=VALUE`` (or a sweep file's ``[options.NAME]``), declared in ``defaults`` and
``ranges`` as every kind declares them (:mod:`sslbench.options`).

The core calls, in this order: :meth:`Executor.check` (before anything runs: the engine
installed, its options acceptable), :meth:`Executor.start` (early, to overlap a slow
start-up with the sweep's preparation), :meth:`Executor.submit` with every job, then reads
:meth:`Executor.finished` to its end, and :meth:`Executor.close` (always, also after an
error). A job is a picklable callable: ``job()`` runs its unit in the calling process and
returns a :class:`UnitOutcome`, the same records whatever process calls it (a fresh worker
rebuilds the sweep from ``job.config`` and refuses, with :class:`~sslbench.SSLBenchError`,
to compute other cells than the driver). An executor that loses a unit (a killed worker, a
job over its time limit) yields ``Finished(unit, None, reason)``: the core records the
unit's cells that have no record since ``since`` as failed with the reason, and a rerun
retries them. An :class:`~sslbench.SSLBenchError` raised by ``job()`` is a wrong set-up, not a
lost unit: the executor lets it out of :meth:`Executor.finished`, which stops the run.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ._core.grid import Unit
from .options import Configurable

if TYPE_CHECKING:  # pragma: no cover - for annotations only
    from .progress import Reporter

__all__ = ["Executor", "UnitJob", "UnitOutcome", "Finished", "Unit", "one_line"]


@dataclass(frozen=True)
class UnitOutcome:
    """What running a unit returns to the driver.

    ``cells``: cell id -> ``"ok"``, ``"failed"`` or ``"skipped"`` (another process held the
    unit); ``warnings``: the worker's warnings, for the driver to show once; ``time``: where
    the unit's time went (``{"units": {...}, "cells": {...}}``, :mod:`sslbench._core.timing`);
    ``progress_shown``: whether the driver's own reporter already showed the cells (the unit
    ran in the driver's process)."""

    cells: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    time: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress_shown: bool = False


@dataclass(frozen=True)
class UnitJob:
    """One unit, ready to run anywhere: ``job()`` runs it and returns its
    :class:`UnitOutcome`. Picklable (Ray, submitit and process pools send it as it is).

    ``config`` is the sweep's configuration (:meth:`sslbench.sweep.SweepConfig.to_dict`),
    ``cwd`` the driver's working directory (relative paths in ``config`` are relative to
    it), ``threads`` the torch threads the job uses (``None``: torch's default; set it with
    :meth:`with_threads` to what the engine granted). ``run`` is what ``job()`` calls, set
    by the core (a module-level function, so a pickled job names it and the process that
    unpickles it imports it: this module never imports the machinery that runs units)."""

    config: dict[str, Any]
    unit: Unit
    cwd: str
    threads: int | None = None
    run: Callable[[UnitJob], UnitOutcome] = field(kw_only=True, repr=False)

    def __call__(self) -> UnitOutcome:
        return self.run(self)

    def with_threads(self, threads: int | None) -> "UnitJob":
        return dataclasses.replace(self, threads=threads)

    @property
    def out(self) -> Path:
        """The sweep's results folder, as the driver sees it."""
        out = self.config.get("out")
        return Path(self.cwd) / out if out else Path(self.cwd)


@dataclass(frozen=True)
class Finished:
    """A unit's end, as an executor learnt it: its ``outcome``, or ``None`` and the
    engine's ``error`` (one line) when the unit was lost. ``since`` is when the unit was
    sent: a record its worker wrote after that stands, finished or failed."""

    unit: Unit
    outcome: UnitOutcome | None
    error: str | None = None
    since: float = 0.0


class Executor(Configurable):
    """Runs :class:`UnitJob` s somewhere. Subclass it, give it a ``name`` (``--executor
    NAME``), a one-line ``description``, its options (``defaults``, ``ranges``), and
    implement :meth:`submit` and :meth:`finished`; the rest is optional.

    ``self.options`` holds the resolved options; the core constructs the class once per
    command (``cls(**options)``)."""

    kind: ClassVar[str] = "executor"
    description: ClassVar[str] = ""
    # the executor of a sweep that names none; exactly one installed executor says so
    default: ClassVar[bool] = False
    # flags of earlier sslbench versions that set an option of this executor: a SweepConfig
    # field -> the option (``{"ray_address": "address"}``); another executor refuses them
    former_flags: ClassVar[dict[str, str]] = {}

    @property
    def in_process(self) -> bool:
        """Whether units run in the calling process, one at a time (what torchrun's
        processes need: each runs the sweep itself). ``False`` by default."""
        return False

    def check(self, out: Path) -> None:
        """Refuse, with one :class:`~sslbench.SSLBenchError` line, what cannot work (the
        engine not installed, an option it rejects) before anything runs. ``out`` is the
        results folder. Nothing by default."""

    def start(self) -> None:
        """Begin what takes time before the first unit can be sent (connecting to a
        cluster); the core calls it early. Nothing by default."""

    def submit(self, jobs: Sequence[UnitJob], reporter: Reporter) -> None:
        """Hand every job to the engine (or keep them to run in :meth:`finished`).
        ``reporter.log`` / ``reporter.warn`` reach the user."""
        raise NotImplementedError

    def finished(self) -> Iterator[Finished]:
        """Yield each submitted unit's end as it comes; return when every unit has ended,
        or when nothing more will be learnt here (units left running on an engine: then
        :meth:`still_running` says so)."""
        raise NotImplementedError

    def still_running(self) -> str | None:
        """A sentence for the user when :meth:`finished` returned with units still running
        on the engine (submitted, not awaited); ``None`` when every unit ended."""
        return None

    def close(self) -> None:
        """Release the engine (stop a cluster this executor started). Called once, also
        after an error. Nothing by default."""


def one_line(exc: BaseException) -> str:
    """An exception as one line, ``TypeName: first line of its message``: how an engine's
    error becomes a failed cell's reason."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_in_turn(jobs: Sequence[UnitJob]) -> Iterator[Finished]:
    """Each job called here, one after another: the simplest :meth:`Executor.finished`."""
    for job in jobs:
        since = time.time()
        yield Finished(job.unit, job(), None, since)


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


__all__ += ["run_in_turn", "cores"]

