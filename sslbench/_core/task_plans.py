"""The rows of a sweep's grid: ``--tasks`` turned into :class:`TaskPlan` s (a pretraining
task, consistency losses during fine-tuning, or neither: scratch), and ``--opt`` routed to
the plugin kind each option belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import SweepConfig
from ..errors import SSLBenchError
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
