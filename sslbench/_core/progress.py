"""Progress: the sweep (cells done of total, the cell running, time left) and each training
run (epoch, loss, images/s, time left). Training loops report once per epoch (or validation
check), after the one host-device synchronisation that reading the loss needs.

Three ways to show it: :class:`RichReporter` draws bars on a terminal; :class:`LogReporter`
writes plain, timestamped lines, for a run whose output goes to a file or a CI log (where
bars would show nothing until the end); :class:`TeeReporter` sends the same progress to
two of them: every run of the command line also writes its log under ``OUT/logs/``."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class Reporter:
    """Receives progress; the base class shows nothing (used by the Python API and tests)."""

    console: Console | None = None

    def sweep_started(self, total_cells: int) -> None: ...

    def cell_started(self, label: str) -> None: ...

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


def rates(images_per_s: float, inputs_per_s: float | None = None) -> str:
    """``112 source img/s, 448 inputs/s``: what each rate counts, said (the same words as
    the README, ``sslbench list`` and benchmarks/)."""
    text = f"{images_per_s:,.0f} source img/s"
    if inputs_per_s is not None and abs(inputs_per_s - images_per_s) > 0.5:
        text += f", {inputs_per_s:,.0f} inputs/s"
    return text


class TrainingProgress:
    """One training run's (or probe's) progress: ``epoch_done`` after each epoch, validation
    check or probed stage, with its loss (``None`` where there is none to show), throughput
    and any metrics."""

    def epoch_done(self, epoch: int, loss: float | None, images_per_s: float,
                   inputs_per_s: float | None = None, **metrics: float) -> None:
        """``images_per_s``: source images of the data set per second; ``inputs_per_s``,
        where a task builds several inputs from each (rotated copies, tiles, views): the
        images the network trained on per second."""


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

    def cell_started(self, label: str) -> None:
        if self._sweep is not None:
            self._progress.update(self._sweep, info=f"running {label}")

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
            def epoch_done(self, epoch, loss, images_per_s, inputs_per_s=None, **metrics):
                extra = " ".join(f"{k} {v:.3f}" for k, v in metrics.items() if v is not None)
                shown = "" if loss is None else f"loss {loss:.3f} "
                progress.update(task, completed=epoch,
                                info=f"{shown}{rates(images_per_s, inputs_per_s)} {extra}")
        try:
            yield _Rich()
        finally:
            progress.remove_task(task)

    def close(self) -> None:
        self._progress.stop()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, m, sec = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s" if m else f"{sec}s"


class LogReporter(Reporter):
    """Plain lines, each with the time of day: the sweep's start, each cell's start and end
    (with how many are done and the time left at the rate so far), every training epoch or
    validation check (loss, throughput, metrics, time left), information and warnings."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._total = 0
        self._done = 0
        self._started = time.monotonic()
        self._counted = 0          # cells done by this process (the rate of time left)

    def _line(self, text: str) -> None:
        try:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self.stream.flush()
        except (OSError, ValueError):      # a closed or full log must not stop the sweep
            pass

    def sweep_started(self, total_cells: int) -> None:
        self._total, self._started = total_cells, time.monotonic()
        self._line(f"sweep: {total_cells} cells")

    def cell_started(self, label: str) -> None:
        self._line(f"cell {label}: started")

    def cell_done(self, label: str) -> None:
        self._done += 1
        cached = label.endswith("(cached)")
        if not cached:
            self._counted += 1
        left = ""
        if self._counted and self._done < self._total:
            rate = (time.monotonic() - self._started) / self._counted
            left = f", about {_duration(rate * (self._total - self._done))} left"
        self._line(f"cell {label}: done ({self._done}/{self._total}{left})")

    def log(self, message: str) -> None:
        self._line(message)

    def warn(self, message: str) -> None:
        self._line(f"sslbench: warning: {message}")

    @contextlib.contextmanager
    def training(self, label: str, total_epochs: int) -> Iterator[TrainingProgress]:
        line, started = self._line, time.monotonic()

        class _Lines(TrainingProgress):
            def epoch_done(self, epoch, loss, images_per_s, inputs_per_s=None, **metrics):
                extra = "".join(f" {k} {v:.3f}" for k, v in metrics.items() if v is not None)
                spent = time.monotonic() - started
                left = spent / max(epoch, 1) * (total_epochs - epoch)
                shown = "" if loss is None else f"loss {loss:.3f} "
                line(f"  {label}: {epoch}/{total_epochs} {shown}"
                     f"{rates(images_per_s, inputs_per_s)}{extra}, {_duration(left)} left")
        yield _Lines()


class TeeReporter(Reporter):
    """The same progress to two reporters (the screen's and the log file's)."""

    def __init__(self, first: Reporter, second: Reporter) -> None:
        self.first, self.second = first, second
        self.console = first.console

    def sweep_started(self, total_cells: int) -> None:
        self.first.sweep_started(total_cells)
        self.second.sweep_started(total_cells)

    def cell_started(self, label: str) -> None:
        self.first.cell_started(label)
        self.second.cell_started(label)

    def cell_done(self, label: str) -> None:
        self.first.cell_done(label)
        self.second.cell_done(label)

    def log(self, message: str) -> None:
        self.first.log(message)
        self.second.log(message)

    def warn(self, message: str) -> None:
        self.first.warn(message)
        self.second.warn(message)

    @contextlib.contextmanager
    def training(self, label: str, total_epochs: int) -> Iterator[TrainingProgress]:
        with self.first.training(label, total_epochs) as a, \
                self.second.training(label, total_epochs) as b:
            class _Both(TrainingProgress):
                def epoch_done(self, *args, **kwargs):
                    a.epoch_done(*args, **kwargs)
                    b.epoch_done(*args, **kwargs)
            yield _Both()

    def close(self) -> None:
        self.first.close()
        self.second.close()
