"""Resumable training: a snapshot of a run in progress, so that a killed, preempted or
timed-out job continues where it stopped instead of starting again from epoch 0.

A long pretraining writes a snapshot (weights, head, optimiser, learning-rate schedule, every
random generator it draws from, the history so far) at the end of an epoch once
``checkpoint_every_min`` minutes have passed since the last one, atomically, beside its
checkpoint in the cache (``CACHE/checkpoints/ID.resume.pt``), and removes it when the run
ends. The next run that needs the same checkpoint (a rerun of the sweep, Slurm's requeue of
the job) finds it and continues from that epoch: with every generator restored, the resumed
run takes exactly the steps the uninterrupted one would have, and ends with the same weights
on the CPU. The snapshot is read like any cache file (``weights_only=True``): a damaged one
is named and the run starts from the beginning.

A task's training state must live in its head or its backbone (BYOL's target network is in
its head) for its run to resume exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_torch_save, safe_torch_load


class ResumeFile:
    """Where one run's snapshot lives, and when the next one is due."""

    def __init__(self, path: Path, every_s: float, warn: Callable[[str], None]) -> None:
        self.path = Path(path)
        self.every_s = float(every_s)
        self.warn = warn
        self._last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        snapshot = safe_torch_load(self.path, self.warn)
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("epoch"), int):
            if snapshot is not None:
                self.warn(f"ignoring resume file {str(self.path)!r} (starting again): "
                          "not a snapshot of this sslbench")
            return None
        return snapshot

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def save(self, snapshot: dict[str, Any]) -> None:
        atomic_torch_save(snapshot, self.path)
        self._last = time.monotonic()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
