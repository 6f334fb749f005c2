"""The result record: what one cell of a sweep measured, and everything needed to trust it.

A sweep writes one :class:`Record` per cell, as ``OUT/records/CELL_ID.json``; reports,
``sslbench status``, ``export``, ``publish`` and :func:`sslbench.load_results` read them back
through one loader (:func:`Record.from_dict`, which checks every field a command reads: a
results folder is input from whoever wrote it). Plugins receive records in
:func:`~sslbench.hookspecs.sslbench_cell_finish` and
:func:`~sslbench.hookspecs.sslbench_sweep_finish`.

A record is a frozen dataclass with one typed field per part of the file, and it reads like
the JSON object it is written as: ``record.status`` and ``record["status"]`` are the same
value, ``record.get("error")``, ``"budget" in record`` and ``dict(record)`` work, so code
written when records were dictionaries keeps working. Its nested tables (``metrics``,
``settings``, ``pretraining``, ...) are plain JSON values, described field by field below
and in docs/architecture.md. :meth:`Record.to_dict` gives the JSON object (with
``"schema"``) to serialise.

Records written by earlier versions load: a field they lack is ``None``; a budget of sslbench
0.4 (``fraction`` only) becomes its ``budget``; a field this version does not know is kept in
:attr:`Record.extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Record", "RECORD_SCHEMA", "RecordError"]

from ._core.budgets import Budget
from ._core.record_checks import RECORD_SCHEMA, record_problem


class RecordError(ValueError):
    """A JSON object that is not a record this version can read; the message says why in
    one line."""


@dataclass(frozen=True, eq=False, kw_only=True)
class Record(Mapping[str, Any]):
    """One cell's result. Fields in the order a cell fills them; ``None`` where a failed cell
    (or an older record) has nothing to say."""

    # -- which cell: the grid point, and the hash of everything that determines its numbers
    cell_id: str
    config_hash: str | None = None
    dataset: str
    backbone: str
    task: str
    budget: dict[str, Any]
    """The label budget as given: ``{"kind": "fraction" | "per_class" | "labels", "value",
    "label"}`` (``label`` as reports show it, e.g. ``"20/class"``)."""
    fraction: float | None = None
    """The budget's fraction where it is one (the only budget field of sslbench 0.4)."""
    protocol: str
    seed: int
    split_seed: int = 0
    # -- how it was configured and computed
    preset: str | None = None
    task_plan: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    """The sweep's configuration (the grid this cell belongs to)."""
    plugins: dict[str, Any] | None = None
    """The distribution, version and source hash of each plugin the cell used."""
    options: dict[str, Any] | None = None
    protocol_summary: str | None = None
    protocol_trains_backbone: bool | None = None
    references: list[dict[str, Any]] | None = None
    """Published numbers for the row (a single task's), so a report needs no plugin."""
    device: str | None = None
    torch_threads: int | None = None
    processes: int | None = None
    precision: str | None = None
    versions: dict[str, str] | None = None
    # -- its data: classes, fingerprint, split sizes and files, hygiene, placement
    data: dict[str, Any] | None = None
    # -- its pretraining: checkpoint id, time, history, held-out pretext accuracy, control
    pretraining: dict[str, Any] | None = None
    # -- its evaluation
    metrics: dict[str, Any] | None = None
    """``test_accuracy`` (in [0, 1]), ``val_accuracy``, ``test_accuracy_by``,
    ``per_class_accuracy``, ``confusion_matrix``, and per test image ``test_predictions``
    and ``test_correct`` (a string of 0 and 1, for paired tests over images)."""
    details: dict[str, Any] | None = None
    validation: Any = None
    chosen_on: str | None = None
    n_labeled: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    # -- what it cost
    wall_time_s: float | None = None
    time_s: dict[str, float] | None = None
    peak_memory_mib: float | None = None
    # -- how it ended
    status: str
    """``"ok"`` or ``"failed"`` (then ``error`` says why in one line)."""
    error: str | None = None
    traceback: str | None = None
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields of the file this version does not know (a later version's), kept as read."""

    # ---------------------------------------------------------------- reading and writing
    @classmethod
    def from_dict(cls, obj: Any) -> Record:
        """The record in a JSON object read from a file, or :class:`RecordError` saying in
        one line why it is not one (every field a command reads is checked: its type, its
        range, names that become file names)."""
        problem = record_problem(obj)
        if problem:
            raise RecordError(problem)
        known = {k: v for k, v in obj.items() if k in _FIELDS}
        if "budget" not in known:                        # sslbench 0.4: a fraction only
            known["budget"] = Budget.fraction(obj["fraction"]).to_json()
        extra = {k: v for k, v in obj.items() if k not in _FIELDS and k != "schema"}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to the record's file: ``schema`` first, then the fields
        (``traceback`` and ``fraction`` only where they hold something, as always)."""
        out: dict[str, Any] = {"schema": RECORD_SCHEMA}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None and name in _WRITTEN_ONLY_WHEN_SET:
                continue
            out[name] = value
        out.update(self.extra)
        return out

    def replace(self, **changes: Any) -> Record:
        """A copy with some fields changed (a record itself never changes)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- derived values
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy in [0, 1], ``None`` for a failed cell."""
        return (self.metrics or {}).get("test_accuracy") if self.ok else None

    @property
    def budget_label(self) -> str:
        """The budget as reports name it, as it was given: ``"10%"``, ``"20/class"``,
        ``"250 labels"``."""
        label = self.budget.get("label")
        return label if isinstance(label, str) else str(self.budget.get("value"))

    # ---------------------------------------------------------------- read as a mapping
    def __getitem__(self, key: str) -> Any:
        if key == "schema":
            return RECORD_SCHEMA
        if key in _FIELDS:
            value = getattr(self, key)
            if value is None and key in _WRITTEN_ONLY_WHEN_SET:
                raise KeyError(key)
            return value
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        accuracy = self.test_accuracy
        shown = f"{accuracy:.4f}" if isinstance(accuracy, float) and math.isfinite(accuracy) \
            else self.error
        return f"Record({self.cell_id!r}, {self.status}: {shown})"


_FIELDS = tuple(f.name for f in dataclasses.fields(Record) if f.name != "extra")
_WRITTEN_ONLY_WHEN_SET = frozenset({"fraction", "traceback"})
