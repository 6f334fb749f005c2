"""Experiment trackers: what a logging plugin needs (TensorBoard, MLflow, Weights & Biases).

A tracker is a plugin that contributes a :class:`TrackerSpec` through
:func:`~sslbench.hookspecs.sslbench_trackers` (so that ``--log-to NAME`` can be checked
before a sweep starts) and logs from the lifecycle hooks, usually
:func:`~sslbench.hookspecs.sslbench_cell_finish`, which runs where the cell ran (the driver, or
a Ray or Slurm worker) with the cell's record and the results folder. Everything a tracker
logs is in the record; the helpers below read it:

* :func:`enabled`: whether the sweep asked for this tracker (``--log-to``);
* :func:`params`: the cell's configuration as flat ``{name: text}`` pairs;
* :func:`series`: its curves, ``{name: [(step, value), ...]}``: the pretraining's loss and
  pretext accuracy per epoch, the fine-tuning's training loss and validation accuracy per
  check;
* :func:`final_metrics`: test and validation accuracy, held-out pretext accuracy.

The built-in ``tensorboard`` and ``mlflow`` trackers are the worked example in
docs/plugins.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ['TrackerSpec', 'enabled', 'params', 'series', 'final_metrics']


@dataclass
class TrackerSpec:
    """A tracker offered by a plugin, for ``--log-to NAME``. ``check`` is called before the
    sweep starts and raises :class:`~sslbench.errors.SSLBenchError` (one line) when the
    tracker cannot work here, e.g. its package is not installed."""

    name: str
    description: str = ""
    check: Callable[[], None] | None = None


def enabled(name: str, record: Mapping[str, Any]) -> bool:
    """Whether the sweep that wrote ``record`` asked to log to ``name``."""
    return name in ((record.get("sweep") or {}).get("log_to") or [])


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in sorted(value.items()):
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value if isinstance(value, str) else json.dumps(value)


def params(record: Mapping[str, Any]) -> dict[str, str]:
    """The cell's configuration: data set, backbone, task, protocol, budget, seeds, preset,
    every setting (``settings.resolution``) and option (``options.tasks.rotation.crop``)."""
    out: dict[str, str] = {}
    for key in ("dataset", "backbone", "task", "task_plan", "protocol", "budget", "fraction", "seed",
                "split_seed", "preset", "precision", "n_train", "n_val"):
        if record.get(key) is not None:
            _flat(key, record[key], out)
    _flat("settings", record.get("settings") or {}, out)
    _flat("options", record.get("options") or {}, out)
    return out


def series(record: Mapping[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """The cell's curves, each a list of (step, value)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for h in (record.get("pretraining") or {}).get("history") or []:
        for key in ("loss", "pretext_accuracy"):
            if isinstance(h.get(key), (int, float)):
                out.setdefault(f"pretraining/{key}", []).append((int(h["epoch"]), float(h[key])))
    for point in (record.get("details") or {}).get("curve") or []:
        for key, value in point.items():
            if key != "step" and isinstance(value, (int, float)):
                out.setdefault(f"{record.get('protocol', 'protocol')}/{key}", []).append(
                    (int(point["step"]), float(value)))
    return out


def final_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """Test and validation accuracy (empty for a failed cell), held-out pretext accuracy."""
    out: dict[str, float] = {}
    metrics = record.get("metrics") or {}
    for key in ("test_accuracy", "val_accuracy"):
        if isinstance(metrics.get(key), (int, float)):
            out[key] = float(metrics[key])
    held = (record.get("pretraining") or {}).get("heldout") or {}
    if isinstance(held.get("accuracy"), (int, float)):
        out["pretext_heldout_accuracy"] = float(held["accuracy"])
    return out
