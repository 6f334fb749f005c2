"""Resumable training: a snapshot of a run in progress, so that a killed, preempted or
timed-out job continues where it stopped instead of starting again from the beginning.

A long pretraining writes a snapshot (weights, head, optimiser, learning-rate schedule, every
random generator it draws from, the history so far) at the end of an epoch once
``checkpoint_every_min`` minutes have passed since the last one, atomically, beside its
checkpoint in the cache (``CACHE/checkpoints/ID.resume.pt``), and removes it when the run
ends. A training protocol (fine-tuning) does the same at its validation checks, in
``CACHE/resume/CELL-HASH.pt``, through :attr:`sslbench.protocol.EvalContext.resume`; the
runner removes it once the cell's record is written. The next run of the same pretraining or
cell (a rerun of the sweep, Slurm's requeue of the job) finds it and continues from there:
with every generator restored, the resumed run takes exactly the steps the uninterrupted one
would have, and ends with the same weights on the CPU. The snapshot is read like any cache
file (``weights_only=True``): a damaged one is named and the run starts from the beginning.

A task's training state must live in its head or its backbone (BYOL's target network is in
its head) for its run to resume exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_torch_save, safe_torch_load

if TYPE_CHECKING:
    import torch


class ResumeFile:
    """Where one run's snapshot lives, and when the next one is due.

    ``kind`` names what the snapshot is of (``"pretraining"``, a protocol's name): a file of
    another kind, or of an earlier layout, is ignored with a warning rather than misread.
    A snapshot is a dict of tensors and plain containers (it is loaded with
    ``weights_only=True``); under torchrun only the first process writes it, and every process
    reads the same file."""

    def __init__(self, path: Path, every_s: float, warn: Callable[[str], None],
                 kind: str = "pretraining") -> None:
        self.path = Path(path)
        self.every_s = float(every_s)
        self.warn = warn
        self.kind = kind
        self._last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        """The last snapshot, or ``None`` (none written, unreadable, or not of this kind)."""
        if not self.path.is_file():
            return None
        snapshot = safe_torch_load(self.path, self.warn)
        if not isinstance(snapshot, dict) or snapshot.get("kind") != self.kind:
            if snapshot is not None:
                self.warn(f"ignoring resume file {str(self.path)!r} (starting again): "
                          f"not a {self.kind} snapshot of this sslbench")
            return None
        return snapshot

    def due(self) -> bool:
        """Whether ``checkpoint_every_min`` has passed since the last snapshot (or the start)."""
        return time.monotonic() - self._last >= self.every_s

    def save(self, snapshot: dict[str, Any]) -> None:
        atomic_torch_save({**snapshot, "kind": self.kind}, self.path)
        self._last = time.monotonic()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def random_states(*generators: torch.Generator | None) -> dict[str, Any]:
    """Every random stream a training run draws from: its own ``generators`` (in order;
    ``None`` and repeats are skipped) and torch's global ones (dropout and other layers)."""
    import torch
    states: dict[str, Any] = {"cpu": torch.get_rng_state(),
                              "generators": [g.get_state() for g in _distinct(generators)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def set_random_states(states: dict[str, Any], *generators: torch.Generator | None) -> None:
    """Restore what :func:`random_states` saved, given the same generators in the same order."""
    import torch
    seen = _distinct(generators)
    if len(seen) != len(states["generators"]):
        raise ValueError(f"{len(states['generators'])} generator states saved, "
                         f"{len(seen)} generators given")
    for g, state in zip(seen, states["generators"]):
        g.set_state(state)
    torch.set_rng_state(states["cpu"])
    if "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"])


def _distinct(generators) -> list:
    """The generators given, without ``None`` and without repeats (one object passed twice,
    as a resident data set's batch order shares the caller's generator), in order."""
    seen: list = []
    for g in generators:
        if g is not None and not any(g is s for s in seen):
            seen.append(g)
    return seen
