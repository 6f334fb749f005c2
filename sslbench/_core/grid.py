"""The grid of a sweep and its units of work.

A sweep is the grid data set x split seed x backbone x task plan x seed x budget x
protocol. Its :class:`Cell` is one point of that grid, one record; :func:`grid_cells` lists
them in the order they run. Cells that share a data set, split seed, backbone, task plan and
seed share one pretraining: together they are a :class:`Unit`, the piece of work an executor
runs (load the data, pretrain or take the checkpoint from the cache, evaluate every (budget,
protocol) cell, write their records). A unit is plain data (names and numbers), so it can be
sent to another process; this module imports nothing heavier than the budgets.

The rows of the grid (``--tasks`` turned into task plans) are :mod:`sslbench._core.task_plans`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .budgets import Budget
from .names import slug


class _Row(Protocol):          # a TaskPlan, as far as the grid needs one
    label: str
    consistency: list


class _Evaluation(Protocol):   # an EvaluationProtocol, as far as the grid needs one
    trains_backbone: bool


@dataclass
class Cell:
    """One point of the grid. ``done`` is set when a finished record already exists."""

    dataset: str
    backbone: str
    task: str
    budget: Budget
    protocol: str
    seed: int
    split_seed: int = 0
    config_hash: str = ""
    done: bool = False

    @property
    def id(self) -> str:
        return (f"{slug(self.dataset)}__{self.backbone}__{self.task}__{self.protocol}"
                f"__{self.budget.id_part}__s{self.seed}"
                + (f"__p{self.split_seed}" if self.split_seed else ""))

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "backbone": self.backbone, "task": self.task,
                **budget_fields(self.budget), "protocol": self.protocol, "seed": self.seed,
                "split_seed": self.split_seed}

    @property
    def fraction(self) -> float | None:
        """The budget's fraction, ``None`` for a budget in labels (kept for plugins written
        for sslbench 0.4, whose cells had only fractions)."""
        return self.budget.value if self.budget.kind == "fraction" else None


def budget_fields(budget: Budget) -> dict[str, Any]:
    """A record's budget: ``budget`` as given, and ``fraction`` where it is one (the field
    that records before sslbench 0.5 hold)."""
    return {"budget": budget.to_json(),
            **({"fraction": budget.value} if budget.kind == "fraction" else {})}


def split_file_stem(dataset: str, split_seed: int) -> str:
    """``flowers`` for split seed 0, ``flowers-p3`` for split seed 3."""
    return slug(dataset) + (f"-p{split_seed}" if split_seed else "")


def grid_cells(datasets: Sequence[str], split_seeds: Sequence[int], backbones: Sequence[str],
               plans: Sequence[_Row], seeds: Sequence[int], budgets: Sequence[Budget],
               protocols: Mapping[str, _Evaluation]) -> list[Cell]:
    """Every cell of the grid, in the order a sweep runs them: a unit's cells (one data
    set, split seed, backbone, plan and seed) together, its budgets and protocols inside. A
    plan with a consistency loss (``rotation+uda``) has no cell under a protocol that trains
    no backbone: a frozen probe ignores fine-tuning losses ("n/a" in reports)."""
    return [Cell(ds, bb, plan.label, budget, name, seed, split_seed)
            for ds, split_seed, bb, plan, seed, budget, (name, protocol) in itertools.product(
                datasets, split_seeds, backbones, plans, seeds, budgets, protocols.items())
            if protocol.trains_backbone or not plan.consistency]


@dataclass(frozen=True)
class Unit:
    """Cells that share one pretraining: one data set and split seed, backbone, task plan
    (by its label) and seed. An executor runs a unit as a whole."""

    dataset: str
    split_seed: int
    backbone: str
    task: str
    seed: int
    cells: tuple[Cell, ...]

    @property
    def id(self) -> str:
        return (f"{slug(self.dataset)}__{self.backbone}__{self.task}__s{self.seed}"
                + (f"__p{self.split_seed}" if self.split_seed else ""))


def units_of(cells: list[Cell]) -> list[Unit]:
    """The cells that still have to run, grouped into units, in grid order."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        key = (cell.dataset, cell.split_seed, cell.backbone, cell.task, cell.seed)
        groups.setdefault(key, []).append(cell)
    return [Unit(*key, tuple(group)) for key, group in groups.items()]
