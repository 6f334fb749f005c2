"""How long a sweep will take, before it runs: ``sslbench run --dry-run``.

A sweep's time is almost all model work (benchmarks/RESULTS.md: 92-100% of each process's
wall time in the flowers sweep), so the estimate is a cost model of it:

* **work**, in images through the network, from the grid and the data set's sizes (loaded,
  not decoded): a unit's pretraining is its pretraining images times its schedule's epochs;
  its frozen features are one forward pass over the pool, validation and test images; each
  cell's work is what its protocol declares (:meth:`sslbench.protocol.EvaluationProtocol.work`:
  fine-tuning's step budget, checks and test split), plus each consistency task's unlabeled
  batch on every step;
* **rates**, in images per second on this machine: a few real training steps of each
  (backbone, resolution, task) on random images, timed, and forward passes in eval mode;
  measured once and kept in ``CACHE/calibration/`` (keyed by the device, torch's threads and
  version, the backbone and its options, the task and its options, batch sizes and
  resolution; the file is data, validated on reading, remeasured when it is not usable);
* **what already ran**: a finished record of the same data set, backbone, task, protocol and
  fraction gives its cell's measured time instead (the median over seeds), and a cached
  checkpoint costs no pretraining.

The estimate is a range: from the calibration's fastest timed step and the earliest a cell
can stop (a protocol that stops early says after how much of its budget it can), to its
slowest step, the whole budget and a margin for what the model leaves out (data loading and
checks, I/O, probes' solvers: 1-8% of a sweep).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write_json
from .checkpoints import cache_key
from .grid import units_of
from .budgets import Budget
from .records import load_records
from .unit_run import labeled_positions

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Sweep

CALIBRATION_DIR = "calibration"
TIMED_STEPS = 3                  # after one warm-up step
OUTSIDE_MODEL = (1.0, 1.10)      # what the model leaves out: at least nothing, at most 10%


@dataclass(frozen=True)
class Rate:
    """Images per second of one kind of step, the fastest and slowest timed one."""

    fast: float
    slow: float

    def seconds(self, images: float) -> tuple[float, float]:
        return images / self.fast, images / self.slow


def _timed(step, repeats: int = TIMED_STEPS) -> list[float]:
    step()                                        # warm-up: allocations, kernels chosen
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def _rate(images: int, times: list[float]) -> Rate:
    return Rate(fast=images / max(min(times), 1e-9), slow=images / max(max(times), 1e-9))


def _valid(entry: Any) -> bool:
    return (isinstance(entry, dict) and all(
        isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
        and math.isfinite(entry[k]) and entry[k] > 0 for k in ("fast", "slow")))


class Calibration:
    """Measured rates of this machine, kept in ``CACHE/calibration/KEY.json``."""

    def __init__(self, sweep: "Sweep") -> None:
        self.sweep = sweep
        self.folder = sweep.cache_dir / CALIBRATION_DIR
        self.measured = 0          # how many rates this run had to measure (for tests)
        self._known: dict[str, Rate] = {}      # read or measured once per run

    def _cached(self, what: dict[str, Any], measure) -> Rate:
        from .records import device_description
        key = cache_key({**what, "device": device_description(self.sweep.device),
                         "torch": __import__("torch").__version__})
        if key in self._known:
            return self._known[key]
        path = self.folder / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entry = None
        if _valid(entry):
            rate = Rate(float(entry["fast"]), float(entry["slow"]))
        else:
            rate = measure()
            self.measured += 1
            atomic_write_json(path, {"fast": rate.fast, "slow": rate.slow, "what": what})
        self._known[key] = rate
        return rate

    def _backbone(self, name: str):
        import torch
        torch.manual_seed(0)
        spec = self.sweep.backbone_specs[name]
        backbone = spec.build(int(self.sweep.settings["resolution"]),
                              self.sweep.backbone_options[name])
        return backbone.to(self.sweep.device)

    def _images(self, n: int):
        import torch
        res = int(self.sweep.settings["resolution"])
        g = torch.Generator().manual_seed(0)
        return (torch.randint(0, 256, (n, 3, res, res), generator=g, dtype=torch.uint8)
                .to(self.sweep.device).float() / 255)

    def _step(self, optimizer, loss):
        """One training step as the sweep takes it: the loss under autocast, then backward
        and the optimiser."""
        from ..training import autocast

        def step() -> None:
            with autocast(self.sweep.device, self.sweep.dtype):
                value = loss()
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
        return step

    def pretraining(self, backbone: str, task, batch: int) -> Rate:
        """Source images per second of the task's training step."""
        def measure() -> Rate:
            import torch

            from .seeding import make_generator
            net = self._backbone(backbone)
            head = task.build_head(net).to(self.sweep.device)
            params = list(net.parameters()) + list(head.parameters())
            optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
            x = self._images(batch)
            extra = {"index": torch.arange(batch, device=self.sweep.device)} \
                if task.uses_index else {}
            prepared = task.prepare(x.mul(255).to(torch.uint8), make_generator(0, "estimate"))
            del prepared                          # some tasks keep state from prepare()
            gen = make_generator(0, "estimate-steps")
            return _rate(batch, _timed(self._step(
                optimizer, lambda: task.pretext_loss(net, head, x, gen, **extra).loss)))
        return self._cached({"kind": "pretraining", "backbone": backbone,
                             "options": self.sweep.backbone_options[backbone],
                             "task": task.config(), "batch": batch,
                             "resolution": self.sweep.settings["resolution"]}, measure)

    def supervised(self, backbone: str, batch: int, classes: int) -> Rate:
        """Images per second of a supervised training step (fine-tuning's)."""
        def measure() -> Rate:
            import torch
            import torch.nn.functional as F
            net = self._backbone(backbone)
            fc = torch.nn.Linear(net.feature_dim, classes).to(self.sweep.device)
            optimizer = torch.optim.SGD(list(net.parameters()) + list(fc.parameters()),
                                        lr=1e-3, momentum=0.9)
            x = self._images(batch)
            y = torch.arange(batch, device=self.sweep.device) % classes
            return _rate(batch, _timed(self._step(
                optimizer, lambda: F.cross_entropy(fc(net(x)).float(), y))))
        return self._cached({"kind": "supervised", "backbone": backbone,
                             "options": self.sweep.backbone_options[backbone],
                             "batch": batch, "classes": classes,
                             "resolution": self.sweep.settings["resolution"]}, measure)

    def forward(self, backbone: str, batch: int = 256) -> Rate:
        """Images per second of an eval-mode forward pass (features, predictions)."""
        def measure() -> Rate:
            import torch

            from ..training import autocast
            net = self._backbone(backbone).eval()
            x = self._images(batch)

            def step() -> None:
                with torch.no_grad(), autocast(self.sweep.device, self.sweep.dtype):
                    net.forward_stages(x)
            return _rate(batch, _timed(step))
        return self._cached({"kind": "forward", "backbone": backbone,
                             "options": self.sweep.backbone_options[backbone],
                             "batch": batch, "resolution": self.sweep.settings["resolution"]},
                            measure)


@dataclass
class UnitEstimate:
    unit: Any
    pretraining: tuple[float, float] | None     # None: no pretraining (or cached: 0, 0)
    cells: tuple[float, float]
    source: str                                 # "model", "records" or "model+records"

    @property
    def total(self) -> tuple[float, float]:
        pre = self.pretraining or (0.0, 0.0)
        return pre[0] + self.cells[0], pre[1] + self.cells[1]


def _records_by_cell(sweep: "Sweep") -> tuple[dict, dict, dict]:
    """Finished records of ``--out``: cell times and pretraining times by what they measure,
    and the checkpoints they name (a record is data: only checked fields are read)."""
    cell_times: dict[tuple, list[float]] = defaultdict(list)
    pretrain_times: dict[tuple, list[float]] = defaultdict(list)
    checkpoints: dict[tuple, set[str]] = defaultdict(set)
    for r in load_records(sweep.out):
        if r["status"] != "ok":
            continue
        key = (r["dataset"], r["backbone"], r["task"])
        if isinstance(r.get("wall_time_s"), (int, float)):
            cell_times[key + (r["protocol"], Budget.of_record(r))].append(r["wall_time_s"])
        info = r.get("pretraining") or {}
        if info.get("checkpoint"):
            checkpoints[key + (r["seed"],)].add(info["checkpoint"])
        if not info.get("cached") and isinstance(info.get("seconds"), (int, float)):
            pretrain_times[key].append(info["seconds"])
    return cell_times, pretrain_times, checkpoints


def estimate(sweep: "Sweep") -> list[UnitEstimate]:
    """Every pending unit's estimated seconds, (low, high). Loads each data set (as the run
    would first: a missing folder or a download not allowed is the run's own one-line
    error, here too), without decoding its images."""
    from ..data import DatasetRequest, make_splits
    from ..training import effective_schedule
    cell_times, pretrain_times, checkpoints = _records_by_cell(sweep)
    calibration = Calibration(sweep)
    pending = units_of([c for c in sweep.cells if not c.done])
    sizes: dict[tuple[str, int], Any] = {}
    out = []
    for unit in pending:
        where = (unit.dataset, unit.split_seed)
        if where not in sizes:
            spec, argument = sweep.dataset_specs[unit.dataset]
            data = spec.load(DatasetRequest(argument, sweep.settings["resolution"],
                                            sweep.config.data_dir, sweep.config.download,
                                            unit.split_seed, sweep.dataset_options[unit.dataset]))
            s = sweep.settings
            sizes[where] = make_splits(data, s["validation"], s["val_fraction"],
                                       s["pretext_holdout"], unit.split_seed)
        splits = sizes[where]
        n_unlabeled = 0 if splits.data.unlabeled_images is None \
            else len(splits.data.unlabeled_images)
        n_pretrain = len(splits.pool_index) - len(splits.holdout) + n_unlabeled
        n_test = len(splits.data.test_labels)
        plan = sweep.plan_of[unit.task]
        key = (unit.dataset, unit.backbone, unit.task)
        source = set()
        # pretraining: none, cached, from earlier records, or the model
        pretraining = None
        if plan.pretext is not None:
            cached = any(sweep.checkpoints.path(c).is_file()
                         for c in checkpoints[key + (unit.seed,)])
            if cached:
                pretraining = (0.0, 0.0)
            elif pretrain_times[key]:
                median = statistics.median(pretrain_times[key])
                pretraining, _ = (median, median), source.add("records")
            else:
                schedule = effective_schedule(plan.pretext, sweep.settings)
                rate = calibration.pretraining(unit.backbone, plan.pretext,
                                               min(schedule["batch_size"], n_pretrain))
                held = calibration.forward(unit.backbone).seconds(len(splits.holdout))
                train = rate.seconds(n_pretrain * schedule["epochs"])
                pretraining = (train[0] + held[0], train[1] + held[1])
                source.add("model")
        # frozen features: one forward pass over pool, validation and test per checkpoint
        low = high = 0.0
        if any(not sweep.protocols[c.protocol].trains_backbone for c in unit.cells):
            feats = calibration.forward(unit.backbone).seconds(
                len(splits.pool_index) + len(splits.val_index) + n_test)
            low, high = low + feats[0], high + feats[1]
        for cell in unit.cells:
            measured = cell_times[key + (cell.protocol, cell.budget)]
            if measured:
                t = statistics.median(measured)
                low, high = low + t, high + t
                source.add("records")
                continue
            train_pos, val_pos = labeled_positions(sweep.context, splits, cell.budget, cell.seed)
            work = sweep.protocols[cell.protocol].work(len(train_pos), len(val_pos), n_test)
            cost = [0.0, 0.0]
            if work.train:
                rate = calibration.supervised(unit.backbone, max(1, work.batch),
                                              splits.data.num_classes)
                for i, t in enumerate(rate.seconds(work.train)):
                    cost[i] += t
                for task in plan.consistency:   # their unlabeled batch on every step
                    u = task.unlabeled_batch_size(work.batch, work.unlabeled_batch)
                    for i, t in enumerate(rate.seconds(work.steps * u)):
                        cost[i] += t
                    for i, t in enumerate(calibration.forward(unit.backbone).seconds(
                            work.steps * u)):
                        cost[i] += t
            if work.predict:
                for i, t in enumerate(calibration.forward(unit.backbone).seconds(work.predict)):
                    cost[i] += t
            # an early stop may end the cell after this share of its work, and no sooner
            low, high = low + cost[0] * work.earliest, high + cost[1]
            source.add("model")
        margin = (lambda t: (t[0] * OUTSIDE_MODEL[0], t[1] * OUTSIDE_MODEL[1]))  # noqa: E731
        out.append(UnitEstimate(unit, margin(pretraining) if pretraining else None,
                                margin((low, high)), "+".join(sorted(source)) or "model"))
    return out


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``: never "0.0 min" for a real amount of work."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def span(low: float, high: float) -> str:
    return duration(low) if duration(low) == duration(high) else \
        f"{duration(low)} to {duration(high)}"
