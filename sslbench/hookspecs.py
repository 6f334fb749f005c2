"""Hook specifications: everything a plugin can contribute to sslbench, or observe.

A plugin is a module (or any object) whose functions are marked with ``@sslbench.hookimpl``
and named like the hooks below. It is found through the ``sslbench`` entry-point group of an
installed distribution::

    [project.entry-points.sslbench]
    my_task = "my_package.my_module"

or, for local unpackaged code, with ``--plugin my_module`` / ``--plugin path/to/file.py``.
The built-in tasks, backbones, data sets, protocols, report formats and executors are plugins registered
in exactly this way (see sslbench's own pyproject.toml); the core imports none of them by name.

Contribution hooks return a list; every implementation is called and the lists are merged. A
name contributed by two plugins is an error that names both. Lifecycle hooks are called for
their side effects (logging, notifications, experiment trackers); their return values are
ignored, and an exception raised in one is reported (one line naming the plugin, once per
plugin and hook) while the sweep goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

__all__ = [
    'sslbench_tasks', 'sslbench_backbones', 'sslbench_resolve_backbone',
    'sslbench_datasets', 'sslbench_protocols', 'sslbench_report_formats',
    'sslbench_presets', 'sslbench_trackers', 'sslbench_executors', 'sslbench_sweep_start', 'sslbench_cell_start',
    'sslbench_cell_finish', 'sslbench_sweep_finish', 'hookspec'
]

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from .backbone import BackboneSpec
    from .data import DatasetSpec
    from .executor import Executor
    from .formats import ReportFormat
    from .preset import Preset
    from .record import Record
    from .protocol import EvaluationProtocol
    from .sweep import Cell, SweepConfig
    from .tracking import TrackerSpec
    from .task import PretextTask

hookspec = pluggy.HookspecMarker("sslbench")


# --------------------------------------------------------------------------- contributions

@hookspec
def sslbench_tasks() -> list[type[PretextTask]]:
    """Return pretext-task classes (subclasses of :class:`sslbench.task.PretextTask`).

    Each class's ``name`` is what users pass to ``--tasks``; its ``defaults`` are the options
    settable with ``--opt NAME.KEY=VALUE`` (:mod:`sslbench.options`). The runner instantiates the class with the
    user's options once per sweep.
    """


@hookspec
def sslbench_backbones() -> list[BackboneSpec]:
    """Return :class:`sslbench.backbone.BackboneSpec` objects: a name and a factory
    ``create(resolution) -> Backbone``. These are the names ``sslbench list backbones`` shows.
    """


@hookspec(firstresult=True)
def sslbench_resolve_backbone(name: str) -> BackboneSpec | None:
    """Resolve a backbone name that no plugin listed in :func:`sslbench_backbones`.

    For open-ended families (every model of timm, say). Return a spec, or ``None`` if the
    name is not yours; the first non-``None`` answer wins.
    """


@hookspec
def sslbench_datasets() -> list[DatasetSpec]:
    """Return :class:`sslbench.data.DatasetSpec` objects.

    A spec's ``load(request)`` returns an :class:`sslbench.data.ImageData` with images at
    ``request.resolution``: decoded uint8 tensors, or :class:`sslbench.images.ImageFiles`
    (paths, decoded on demand) for sets too large to decode up front; the core decides
    whether they are held on the device or streamed. Specs with ``takes_argument=True`` are used as
    ``NAME:ARGUMENT`` (``imagefolder:PATH``). A data set without a fixed test split draws one
    with ``request.split_seed`` and says so in ``provenance["split_seed"]`` (``--split-seeds``
    then resamples it). Raise :class:`sslbench.SSLBenchError` for bad input (missing folder,
    unreadable file): the user sees that one line.
    """


@hookspec
def sslbench_protocols() -> list[type[EvaluationProtocol]]:
    """Return evaluation-protocol classes (subclasses of
    :class:`sslbench.protocol.EvaluationProtocol`), used with ``--protocols NAME``."""


@hookspec
def sslbench_report_formats() -> list[ReportFormat]:
    """Return :class:`sslbench.formats.ReportFormat` objects: a name for
    ``sslbench report --format NAME`` and a function rendering a leaderboard to text. A
    format may claim a role the core needs (``roles``: the terminal's table, the published
    page, its data file; :data:`sslbench.formats.ROLES`), one format per role."""


@hookspec
def sslbench_presets() -> list[Preset]:
    """Return :class:`sslbench.preset.Preset` objects: named sweep settings
    (``--preset NAME``) with the grid a sweep runs when it names no data set, task or
    protocol. Exactly one installed preset says ``default=True``: the preset of a sweep
    that names none. Plugins key their own per-preset option values by these names."""


@hookspec
def sslbench_trackers() -> list[TrackerSpec]:
    """Return :class:`sslbench.tracking.TrackerSpec` objects: the experiment trackers this
    plugin logs to when a sweep asks with ``--log-to NAME``. The logging itself happens in
    the lifecycle hooks below (see :mod:`sslbench.tracking`)."""


@hookspec
def sslbench_executors() -> list[type[Executor]]:
    """Return executor classes (subclasses of :class:`sslbench.executor.Executor`): where a
    sweep's units of work run, used with ``--executor NAME`` and configured with ``--opt
    NAME.KEY=VALUE``. The built-in ``local``, ``ray`` and ``slurm`` come through this hook;
    an executor for another engine (Dask, Kubernetes jobs) is one class in a plugin."""


# --------------------------------------------------------------------------- lifecycle

@hookspec
def sslbench_sweep_start(config: SweepConfig, cells: list[Cell], out: Path) -> None:
    """Called once before the first cell runs, with the resolved configuration, every
    cell of the grid (finished ones included; ``cell.done`` tells which will be skipped) and
    the results folder. Runs on the driver (the ``sslbench run`` process), whatever the
    executor."""


@hookspec
def sslbench_cell_start(cell: Cell) -> None:
    """Called before a cell that is not yet finished runs. Runs where the cell runs: in the
    driver with ``--executor local`` (in its worker processes with ``--jobs N``), in the
    worker process (a Ray task, a Slurm job) with the others, so a plugin must not assume
    the driver's memory."""


@hookspec
def sslbench_cell_finish(cell: Cell, record: Record, out: Path) -> None:
    """Called after a cell ran, with the :class:`~sslbench.record.Record` just written
    (``record.status`` is ``"ok"`` or ``"failed"``, the latter with ``record.error``; the
    record also reads as a mapping, ``record["status"]``) and the results folder
    ``out`` (shared by the driver and the workers). Runs where the cell ran
    (the driver or a worker, as :func:`sslbench_cell_start`); for the cells of a unit an
    engine lost (a killed worker, a job over its time limit) it runs on the driver, with the
    failed record the driver wrote."""


@hookspec
def sslbench_sweep_finish(config: SweepConfig, records: list[Record], out: Path) -> None:
    """Called once after the last cell, with the records of every cell of the grid and the
    results folder. Runs on
    the driver. With ``--executor slurm`` without ``--wait`` the command returns once the
    jobs are submitted: this hook then sees the records that exist at that moment."""
