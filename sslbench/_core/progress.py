"""Progress display: the sweep (cells done of total, time left) and each training run
(epoch, loss, images/s), drawn with rich. Training loops report once per epoch, after the
one host-device synchronisation that reading the epoch's loss needs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class Reporter:
    """Receives progress; the base class shows nothing (used by the Python API and tests)."""

    console: Console | None = None

    def sweep_started(self, total_cells: int) -> None: ...

    def cell_done(self, label: str) -> None: ...

    def log(self, message: str) -> None:
        """Information (shown with progress, silent when quiet)."""

    def warn(self, message: str) -> None:
        """A warning: always shown, on stderr."""
        print(f"sslbench: warning: {message}", file=sys.stderr)

    @contextlib.contextmanager
    def training(self, label: str, total_epochs: int) -> Iterator["TrainingProgress"]:
        yield TrainingProgress()

    def close(self) -> None: ...


class TrainingProgress:
    def epoch_done(self, epoch: int, loss: float, images_per_s: float, **metrics: float) -> None:
        ...


class RichReporter(Reporter):
    """rich progress bars on the given console (stderr by default)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=self.console, transient=False,
        )
        self._sweep = None
        self._progress.start()

    def sweep_started(self, total_cells: int) -> None:
        self._sweep = self._progress.add_task("sweep cells", total=total_cells, info="")

    def cell_done(self, label: str) -> None:
        if self._sweep is not None:
            self._progress.update(self._sweep, advance=1, info=label)

    def log(self, message: str) -> None:
        self._progress.console.print(message, highlight=False, markup=False)

    def warn(self, message: str) -> None:
        self._progress.console.print(f"sslbench: warning: {message}", highlight=False,
                                     markup=False)

    @contextlib.contextmanager
    def training(self, label: str, total_epochs: int) -> Iterator[TrainingProgress]:
        task = self._progress.add_task(label, total=total_epochs, info="")
        progress = self._progress

        class _Rich(TrainingProgress):
            def epoch_done(self, epoch, loss, images_per_s, **metrics):
                extra = " ".join(f"{k} {v:.3f}" for k, v in metrics.items())
                progress.update(task, completed=epoch,
                                info=f"loss {loss:.3f} {images_per_s:,.0f} img/s {extra}")
        try:
            yield _Rich()
        finally:
            progress.remove_task(task)

    def close(self) -> None:
        self._progress.stop()
