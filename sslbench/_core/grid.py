"""The grid of a sweep and its units of work.

A sweep is the grid data set x split seed x backbone x task plan x seed x budget x
protocol. Its :class:`Cell` is one point of that grid, one record. Cells that share a data
set, split seed, backbone, task plan and seed share one pretraining: together they are a
:class:`Unit`, the piece of work an executor runs (load the data, pretrain or take the
checkpoint from the cache, evaluate every (budget, protocol) cell, write their records).
A unit is plain data (names and numbers), so it can be sent to another process.

This module also turns the user's ``--tasks`` and ``--opt`` into :class:`TaskPlan` rows and
per-kind options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import SweepConfig
from ..errors import SSLBenchError
from .budgets import Budget
from .names import slug
from .contracts import KINDS
from .plugins import PluginHost
from ..task import PretextTask

SCRATCH = "scratch"


@dataclass
class TaskPlan:
    """One leaderboard row: an optional pretraining task, then optional consistency tasks
    used as extra losses during fine-tuning (``rotation+uda``). ``scratch`` has neither."""

    label: str
    pretext: PretextTask | None
    consistency: list[PretextTask] = field(default_factory=list)

    def config(self) -> dict[str, Any]:
        return {"label": self.label,
                "pretext": self.pretext.config() if self.pretext else None,
                "consistency": [t.config() for t in self.consistency]}


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


OPTION_KINDS = tuple(name for name, kind in KINDS.items() if kind.options)


def route_options(config: SweepConfig, host: PluginHost) -> dict[str, dict[str, dict]]:
    """``--opt NAME.KEY=VALUE`` by kind: kind -> name -> options. ``NAME`` is a task, a
    protocol, a backbone or a data set (its name before the colon); a name that is none of
    them, or more than one, is one line saying so."""
    dataset_names = {d.partition(":")[0] for d in config.datasets}
    routed: dict[str, dict[str, dict]] = {kind: {} for kind in OPTION_KINDS}
    for name, opts in config.options.items():
        kinds = [kind for kind in OPTION_KINDS
                 if name in host.registry(kind)
                 or (kind == "backbone" and name in config.backbones)
                 or (kind == "dataset" and name in dataset_names)]
        if not kinds:
            raise SSLBenchError(f"--opt {name}.{next(iter(opts), 'KEY')}: no task, protocol, "
                                f"backbone or data set is named {name!r}")
        if len(kinds) > 1:
            raise SSLBenchError(f"--opt {name}: {name!r} names a {' and a '.join(kinds)}; "
                                "give those plugins different names")
        routed[kinds[0]][name] = dict(opts)
    return routed


def build_plans(config: SweepConfig, host: PluginHost,
                task_options: dict[str, dict] | None = None) -> list[TaskPlan]:
    """Turn ``--tasks`` into task plans, validating names and options (bad input raises)."""
    task_options = config.options if task_options is None else task_options
    instances: dict[str, PretextTask] = {}
    for task_name, opts in task_options.items():   # options of a task not in the grid: checked too
        instances[task_name] = host.task(task_name).for_preset(config.preset, **opts)

    def instance(name: str) -> PretextTask:
        if name not in instances:
            instances[name] = host.task(name).for_preset(config.preset)
        return instances[name]

    plans = [TaskPlan(SCRATCH, None)]
    for label in config.tasks:
        if label == SCRATCH:
            continue
        parts = [p.strip() for p in label.split("+")]
        if any(not p for p in parts):
            raise SSLBenchError(f"task {label!r} has an empty part")
        first, rest = parts[0], parts[1:]
        pretext = None
        consistency: list[PretextTask] = []
        if first != SCRATCH:
            task = instance(first)
            if task.pretrains:
                pretext = task
            else:
                rest = [first] + rest
        for name in rest:
            task = instance(name)
            if not task.consistency:
                raise SSLBenchError(f"task {name!r} cannot act as a loss during fine-tuning, "
                                    f"so it cannot follow '+' in {label!r}")
            consistency.append(task)
        if pretext is None and not consistency:
            raise SSLBenchError(f"task {label!r} neither pretrains nor adds a loss")
        plans.append(TaskPlan(label, pretext, consistency))
    return plans


def task_configs(plan: TaskPlan) -> list[dict[str, Any]]:
    return [t.config() for t in ([plan.pretext] if plan.pretext else []) + plan.consistency]


def references_of(plan: TaskPlan) -> list[dict[str, Any]]:
    tasks = ([plan.pretext] if plan.pretext else []) + plan.consistency
    return [dict(r) for r in tasks[0].references] if len(tasks) == 1 else []


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
