"""The sweep runner: a grid (:mod:`sslbench._core.grid`) checked, planned, and run unit by unit.

:class:`Sweep` validates every name and option and lists the grid's cells on construction,
each with the hash of its configuration (a cell whose finished record has the same hash is
skipped, so an interrupted sweep resumes). :func:`sslbench._core.dispatch.run` hands its
unfinished units to an executor, and each unit, wherever it runs, goes through
:meth:`Sweep.run_here`: the unit claimed (another process may hold it), its data set
prepared once per process (:meth:`Sweep.prepare`: loaded, checked, split, its images
placed), then :func:`sslbench._core.unit_run.run_unit` with the sweep's
:class:`~sslbench._core.unit_run.UnitContext`. On the driver the sweep also keeps the run's
time account and records the cells of units an engine lost (:meth:`Sweep.collect`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import torch

from .atomic import atomic_write_json
from ..backbone import Backbone, BackboneSpec
from .config import SweepConfig
from ..data import DatasetRequest, ImageData, Splits, make_splits
from .contracts import KINDS, backbone_problem, dataset_problem
from ..errors import MalformedPlugin, SSLBenchError, did_you_mean
from .checkpoints import CheckpointStore, cache_key
from .claims import Claim
from .presets import apply_preset
from .distributed import from_first, is_writer, world_size_from_environment
from . import timing
from .time_accounts import write_run
from .timing import timed
from .features import FeatureCache
from .decoded import DecodedImages
from ..executor import Executor, Finished
from .adopted import adopted_cells
from .identity import numeric_identity, without_versions
from .grid import Cell, Unit, grid_cells, split_file_stem, units_of
from .names import slug
from .task_plans import TaskPlan, build_plans, route_options
from .unit_run import (Prepared, Ran, UnitContext, charge, finish, labeled_positions, options_of,
                       plugins_of, record_head, run_unit)
from .hygiene import HygieneReport, deduplicate, find_duplicates
from ..images import default_workers
from .placement import held_whole, place
from .plugins import PluginHost
from .progress import Reporter
from ..protocol import EvaluationProtocol
from ..record import Record
from .records import (RECORDS_DIR, read_record)
from ..training import (autocast_dtype_for, effective_schedule, resolve_device)

__all__ = ["Sweep"]


CLAIMS_DIR = ".claims"


def _json_or_none(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or ``None`` when it is missing or not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _finished(record: Record | None, cell: Cell) -> bool:
    """Whether ``record`` is a finished result of ``cell`` as configured now (resume skips it)."""
    return record is not None and record.ok and record.config_hash == cell.config_hash


def default_out(config: SweepConfig) -> Path:
    return Path("results") / f"{'+'.join(map(slug, config.datasets))}-{'+'.join(config.backbones)}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sslbench"


class Sweep:
    """One :class:`SweepConfig`, checked and planned. Construct it (which validates every
    name), then run it with :func:`sslbench._core.dispatch.run`."""

    def __init__(self, config: SweepConfig, host: PluginHost, reporter: Reporter | None = None):
        self.given = config                        # as given: what workers rebuild from
        self.config = apply_preset(config, host)   # settings, backbone, axes left empty
        self.host = host
        self.reporter = reporter or Reporter()
        self.created = time.time()
        # the run's account, on the process that writes it (set by open_account(); an engine's
        # workers have none and send their charges back instead)
        self.account: dict[str, dict[str, dict[str, float]]] | None = None
        self._account_run: dict[str, Any] = {}
        # an executor may call jobs in threads of this process while the driver collects
        self._account_lock = threading.RLock()
        self.device = resolve_device(config.device)
        self.dtype = autocast_dtype_for(self.device)
        self.out = Path(config.out) if config.out else default_out(config)
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        self.settings = config.settings
        if self.settings["sync_bn"] and world_size_from_environment() > 1 \
                and self.device.type != "cuda":
            raise SSLBenchError("sync_bn needs CUDA: torch's SyncBatchNorm has no CPU kernels "
                                "(on the CPU each process normalises its own share)")
        # validate every name and option before anything runs
        self.routed = route_options(config, host)
        self.plans = build_plans(config, host, self.routed["task"])
        self.plan_of = {plan.label: plan for plan in self.plans}
        for plan in self.plans:
            for task in ([plan.pretext] if plan.pretext else []) + plan.consistency:
                task.validate(int(self.settings["resolution"]))
            if plan.pretext is not None:
                effective_schedule(plan.pretext, self.settings)   # a bad schedule: one line now
        self.protocols: dict[str, EvaluationProtocol] = {
            name: host.protocol(name).for_preset(config.preset,
                                                 **self.routed["protocol"].get(name, {}))
            for name in config.protocols}
        for name, opts in self.routed["protocol"].items():   # options of a protocol not in
            if name not in self.protocols:                   # the grid are checked too
                host.protocol(name).for_preset(config.preset, **opts)
        self.backbone_specs: dict[str, BackboneSpec] = {
            name: host.backbone(name) for name in config.backbones}
        self.backbone_options = {
            name: spec.resolve(config.preset, self.routed["backbone"].get(name, {}))
            for name, spec in self.backbone_specs.items()}
        self.dataset_specs = {name: host.dataset(name) for name in config.datasets}
        self.dataset_options = {
            name: spec.resolve(config.preset, self.routed["dataset"].get(name.partition(":")[0],
                                                                          {}))
            for name, (spec, _) in self.dataset_specs.items()}
        self.code = self._code_identities()
        built: dict[str, Backbone] = {}
        for name, spec in self.backbone_specs.items():
            def create(r: int, spec=spec, name=name) -> Backbone:
                built[name] = spec.build(r, self.backbone_options[name])
                return built[name]
            self._check_contract("backbone", name, backbone_problem(
                name, create, int(self.settings["resolution"])))
            for protocol in self.protocols.values():     # a stage the backbone lacks: now
                protocol.check_backbone(name, list(built[name].stage_dims))
        names: dict[str, str] = {}
        for name in config.datasets:
            other = names.setdefault(slug(name), name)
            if other != name:
                raise SSLBenchError(f"data sets {other!r} and {name!r} would share the name "
                                    f"{slug(name)!r} in the results; give their folders "
                                    "different names or run them with different --out")
        self.features = FeatureCache(self.cache_dir / "features", warn=self._warn_once)
        self.decoded = DecodedImages(self.cache_dir / "decoded", warn=self._warn_once)
        self.checkpoints = CheckpointStore(self.cache_dir, self._warn_once)
        self.checkpoints_trained = 0     # by this process (the tests count them)
        self.workers = config.workers if config.workers is not None else default_workers()
        self._warned: set[str] = set()
        self._check_trackers()
        self.cells = self._grid()

    @property
    def context(self) -> UnitContext:
        """What running a unit needs (:func:`~sslbench._core.unit_run.run_unit`), made when
        asked: the command line replaces the reporter once its log file is open."""
        return UnitContext(
            config=self.config, settings=self.settings, device=self.device, dtype=self.dtype,
            out=self.out, cache_dir=self.cache_dir, host=self.host, plan_of=self.plan_of,
            protocols=self.protocols, backbone_specs=self.backbone_specs,
            backbone_options=self.backbone_options, dataset_options=self.dataset_options,
            code=self.code, checkpoints=self.checkpoints, features=self.features,
            reporter=self.reporter, warn=self._warn_once, account=self._into_account)

    # ------------------------------------------------------------------ the grid
    def _grid(self) -> list[Cell]:
        """The grid's cells (:func:`~sslbench._core.grid.grid_cells`), each with the hash of
        its configuration now and whether a finished record of it exists."""
        c = self.config
        cells = grid_cells(c.datasets, c.split_seeds, c.backbones, self.plans, c.seeds,
                           c.budgets, self.protocols)
        # with --against, the leaderboard's records copied here unchanged are its cells'
        # results whatever code identity made them (the run verified them first)
        adopted = adopted_cells(self.out) if c.against else set()
        for cell in cells:
            cell.config_hash = self._cellcache_key(cell, self.plan_of[cell.task])
            rec = read_record(self.out, cell.id)
            if cell.id in adopted and rec is not None and rec.ok:
                cell.done = True
                continue
            if rec is not None and rec.dataset != cell.dataset:
                raise SSLBenchError(f"{str(self.out)!r} holds results of data set "
                                    f"{rec.dataset!r} under the name {slug(cell.dataset)!r}; "
                                    f"use another --out for {cell.dataset!r}")
            cell.done = _finished(rec, cell)
        return cells

    def _cellcache_key(self, cell: Cell, plan: TaskPlan) -> str:
        return cache_key({"cell": cell.describe(), "plan": plan.config(), "settings": self.settings,
                      "dedup": self.config.dedup, "device": self.device.type,
                      "stream": self.config.stream, "sslbench": numeric_identity(),
                      "code": without_versions(plugins_of(self.context, cell.dataset,
                                                          cell.backbone, plan, cell.protocol)),
                      "options": options_of(self.context, cell)})


    def _check_contract(self, kind: str, name: str, problem: str | None) -> None:
        """A contribution that cannot be used: one line naming it and its plugin, exit 2."""
        if problem:
            plugin = self.host.describe_plugin(self.code[(kind, name)]["plugin"])
            label = KINDS[kind].label
            raise SSLBenchError(f"{label} {name!r} from plugin {plugin}: {problem}")

    def _code_identities(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(kind, name) -> the code identity of every contribution this sweep uses."""
        used = [("dataset", d) for d in self.config.datasets]
        used += [("backbone", b) for b in self.config.backbones]
        used += [("protocol", p) for p in self.config.protocols]
        used += [("task", t.name) for plan in self.plans
                 for t in ([plan.pretext] if plan.pretext else []) + plan.consistency]
        return {(kind, name): self.host.identity(kind, name) for kind, name in used}


    # ------------------------------------------------------------------ running
    # (the run from start to end, handing units to an executor: sslbench._core.dispatch)
    def unfinished_units(self) -> list[Unit]:
        """The grid's cells without a finished record, grouped into units, in grid order."""
        return units_of([c for c in self.cells if not c.done])

    def notify(self, hook: str, **kw: Any) -> None:
        """Call a lifecycle hook (of several torchrun processes, on the first only)."""
        if is_writer():
            self.host.notify(hook, self._warn_once, **kw)

    def open_account(self, executor: Executor, sweep_started: float) -> None:
        """Start this run's time account (written by :meth:`write_time_account`)."""
        self.account = {"units": {}, "cells": {}}
        self._account_run = {"executor": executor.name, "sweep_started": sweep_started,
                             "in_process": executor.in_process}

    def records(self) -> list[Record]:
        """The records of the grid's cells that have one."""
        found = [read_record(self.out, c.id) for c in self.cells]
        return [r for r in found if r is not None]

    def collect(self, done: Finished) -> None:
        """A unit's end on the driver: its worker's warnings and time, its cells shown; a
        lost unit's cells without a record since it was sent are recorded as failed with
        the engine's reason."""
        shown = set(self.fail_unit(done.unit, done.error, done.since)) \
            if done.error is not None else set()
        outcome = done.outcome
        if outcome is not None:
            with self._account_lock:
                for table in ("units", "cells"):
                    self.account[table].update(outcome.time.get(table, {}))
            for message in outcome.warnings:
                self._warn_once(message)
        if outcome is None or not outcome.progress_shown:
            for cell in done.unit.cells:
                if cell.id not in shown:      # a failed one was shown when it was recorded
                    self.reporter.cell_done(cell.id)
        self.write_time_account(complete=False)

    def without_record(self) -> tuple[list[Cell], dict[str, dict[str, Any]]]:
        """The cells of the grid that have no record of their configuration now (neither
        finished nor failed: skipped because another process claimed their unit, or lost),
        and the units among them that a live process holds (unit id -> what its claim says:
        host, pid, since). What a run checks at its end before it says it is done."""
        from .claims import live_claims
        lacking = [c for c in self.cells
                   if getattr(read_record(self.out, c.id), "config_hash", None) != c.config_hash]
        claimed = live_claims(self.out / CLAIMS_DIR) if lacking else {}
        held = {u.id: claimed[u.id] for u in units_of(lacking) if u.id in claimed}
        return lacking, held

    def run_here(self, units: list[Unit], prepared: dict | None = None) -> Ran:
        """Run units in this process, one after another (what every
        :class:`~sslbench.executor.UnitJob` does, :mod:`sslbench._core.worker`): each data
        set and split seed is prepared once (and kept in ``prepared``, when given, for the
        next call). Returns the records made and where the time went."""
        prepared = {} if prepared is None else prepared
        ran = Ran({}, {"units": {}, "cells": {}})
        for unit in units:
            with self.unit_claim(unit) as mine:
                if not mine:
                    continue
                # another process may have run it since this sweep listed its cells: run
                # only what still has no finished record of this configuration
                left = tuple(c for c in unit.cells
                             if not _finished(read_record(self.out, c.id), c))
                if not from_first(bool(left)):
                    continue
                unit = dataclasses.replace(unit, cells=left)
                key = (unit.dataset, unit.split_seed)
                if key not in prepared:
                    prepared.clear()            # one data set in memory at a time
                    mark = timing.account().mark()
                    with timed("data"):
                        prepared[key] = self.prepare(*key)
                    charge(self.context, ran.time, "units",
                           f"prepare {unit.dataset} split {unit.split_seed}",
                           timing.account().since(mark))
                done = run_unit(self.context, unit, prepared[key])
                ran.records.update(done.records)
                for table in ("units", "cells"):
                    ran.time[table].update(done.time[table])
                self.checkpoints_trained += done.pretrained
        return ran

    def _into_account(self, table: str, key: str, spent: dict[str, float]) -> None:
        """On the process that writes the run's account, book a unit's (``table="units"``)
        or a cell's time in it and write it at once (a run killed midway then loses only the
        piece of work it was in); elsewhere nothing (workers send their time back)."""
        if self.account is not None:
            with self._account_lock:
                self.account[table][key] = spent
            self.write_time_account(complete=False)

    def write_time_account(self, complete: bool) -> None:
        """Write (again) this run's time account, ``OUT/time/RUN.json``: after each unit's
        pretraining and each cell, so that a run killed or preempted midway loses from its
        account only the piece of work it was in (the file is marked incomplete), and once
        at the end. Only the process that runs the sweep
        writes it (an engine's workers send their charges back instead)."""
        with self._account_lock:
            self._write_time_account(complete)

    def _write_time_account(self, complete: bool) -> None:
        if self.account is None or not is_writer() \
                or not (self.account["units"] or self.account["cells"]):
            return
        write_run(self.out, started=timing.COMMAND_STARTED or self.created,
                  executor=self._account_run["executor"],
                  sweep_started=self._account_run["sweep_started"],
                  units=self.account["units"], cells=self.account["cells"],
                  local=self._account_run["in_process"], complete=complete)

    @contextlib.contextmanager
    def unit_claim(self, unit: Unit) -> Iterator[bool]:
        """Claim a unit in ``OUT/.claims`` for the body (:mod:`sslbench._core.claims`): a unit
        that a live process (another driver on the same ``--out``, a worker) is running is
        skipped with a warning; a dead holder's claim is taken over. Of several torchrun
        processes, the first claims and the others follow its decision."""
        if not is_writer():
            yield from_first(None)
            return
        claim = Claim(self.out / CLAIMS_DIR / f"{unit.id}.claim", f"unit {unit.id}")
        if not claim.try_acquire():
            self._warn_once(f"unit {unit.id} is being run by "
                            f"{claim.describe(claim.holder())}; skipped here")
            yield from_first(False)
            return
        try:
            yield from_first(True)
        finally:
            claim.release()


    def fail_unit(self, unit: Unit, reason: str, since: float = 0.0) -> list[str]:
        """Record the cells of a unit that an engine lost (a killed worker, a job over its
        time limit) as failed with the reason. A cell keeps the record its worker wrote
        since ``since`` (when the unit was sent), finished or failed with its own reason.
        Returns the ids of the cells recorded as failed."""
        failed = []
        for cell in unit.cells:
            path = self.out / RECORDS_DIR / f"{cell.id}.json"
            record = read_record(self.out, cell.id)
            if _finished(record, cell) or (record is not None
                                           and record.config_hash == cell.config_hash
                                           and path.stat().st_mtime >= since):
                continue
            finish(self.context, cell, record_head(self.context, cell, self.plan_of[cell.task]),
                   error=reason)
            failed.append(cell.id)
        # the lost worker's claim: tidy it once its holder is gone (an engine may report a
        # worker lost a moment before the killed process has finished exiting)
        claim = Claim(self.out / CLAIMS_DIR / f"{unit.id}.claim")
        for _ in range(50):
            if claim.holder() is None or claim.stale():
                break
            time.sleep(0.1)
        if claim.holder() is not None and claim.stale():
            with contextlib.suppress(OSError):
                claim.path.unlink()
        return failed

    def _check_trackers(self) -> None:
        """``--log-to``: every name a tracker some plugin offers, usable here (its check)."""
        if not self.config.log_to:
            return
        trackers = self.host.trackers()
        for problem in self.host.tracker_problems:
            self._warn_once(problem)
        for name in self.config.log_to:
            if name not in trackers:
                raise SSLBenchError(f"unknown tracker {name!r} in --log-to; known: "
                                    f"{', '.join(sorted(trackers)) or 'none installed'}."
                                    f"{did_you_mean(name, trackers)}")
            if trackers[name].check is not None:
                trackers[name].check()

    def prepare(self, ds: str, split_seed: int) -> Prepared:
        """A data set ready for its units: loaded and checked, split (the split files
        written), and its images placed on the device or set up to stream."""
        data, hygiene = self._load(ds, split_seed)
        s = self.settings
        splits = make_splits(data, s["validation"], s["val_fraction"], s["pretext_holdout"],
                             split_seed)
        self._write_split_files(ds, splits, hygiene)
        placed = place(splits, self.device, self.config.stream, self.workers, self.decoded)
        self.decoded.release()
        if placed.streamed:
            self.reporter.log(f"streaming {ds} through {self.workers} DataLoader workers "
                              f"({placed.notes['reason']})")
        return Prepared(splits, placed, hygiene)

    def _load(self, name: str, split_seed: int) -> tuple[ImageData, HygieneReport]:
        """The data set, checked for duplicates (and deduplicated with ``--dedup``)."""
        spec, argument = self.dataset_specs[name]
        self.reporter.log(f"loading data set {name} at {self.settings['resolution']} px"
                          + (f" (split seed {split_seed})" if split_seed else ""))
        request = DatasetRequest(argument=argument, resolution=self.settings["resolution"],
                                 data_dir=self.config.data_dir, download=self.config.download,
                                 split_seed=split_seed, options=self.dataset_options[name])
        try:
            data = spec.load(request)
        except MalformedPlugin as exc:
            self._check_contract("dataset", name, str(exc))
        self._check_contract("dataset", name, dataset_problem(data, int(self.settings["resolution"])))
        if data.num_classes < 2:
            raise SSLBenchError(f"data set {name!r} has {data.num_classes} class; "
                                "classification needs at least 2")
        train = torch.bincount(data.train_labels, minlength=data.num_classes).tolist()
        test = torch.bincount(data.test_labels, minlength=data.num_classes).tolist()
        for c, (n_train, n_test) in enumerate(zip(train, test)):
            if n_train < 2 or n_test < 1:
                raise SSLBenchError(
                    f"data set {name!r}: class {data.classes[c]!r} has {n_train} training and "
                    f"{n_test} test images; each class needs at least 2 to train and choose "
                    "with and 1 to test (3 images in a folder split 80/20)")
        if len(self.config.split_seeds) > 1 and "split_seed" not in data.provenance:
            self._warn_once(f"{name} has a fixed test split: its split seeds differ only in "
                            "the pretext hold-out (and a fixed validation split)")
        # a data set held whole is decoded once, through the disk cache, for the duplicate
        # check and the placement alike
        whole = held_whole(data, self.device, self.config.stream)
        hygiene = find_duplicates(data, self.workers, decoded=self.decoded if whole else None)
        hygiene.dataset = name
        if self.config.dedup and hygiene.groups:
            data = deduplicate(data, hygiene)
        if hygiene.message():
            self._warn_once(hygiene.message())
        return data, hygiene

    def _write_split_files(self, ds: str, splits: Splits, hygiene: HygieneReport) -> None:
        """The fixed splits, the duplicates found and, per seed, the labeled subsets (with
        each cell's validation images): anyone can reuse them."""
        data = splits.data
        base = self.out / "splits"
        stem = split_file_stem(ds, splits.seed)
        # a sweep of some budgets keeps the subsets an earlier sweep of the same data wrote
        same_data = (_json_or_none(base / f"{stem}.json") or {}).get("fingerprint") \
            == data.fingerprint()
        atomic_write_json(base / f"{stem}.json", {
            "dataset": ds, "fingerprint": data.fingerprint(), "content": hygiene.content,
            "classes": data.classes,
            "split_seed": splits.seed, "validation": self.settings["validation"],
            "val_fraction": (self.settings["val_fraction"]
                             if not splits.per_cell_validation else None),
            "note": ("indices are positions in the data set's training split; "
                     "pretext_holdout_index: pool images kept out of pretraining"),
            "pool_index": splits.pool_index.tolist(), "val_index": splits.val_index.tolist(),
            "pretext_holdout_index": splits.pool_index[splits.holdout].tolist(),
            "n_test": len(data.test_labels),
            "n_unlabeled": 0 if data.unlabeled_images is None else len(data.unlabeled_images),
            "hygiene": hygiene.to_json(), "provenance": data.provenance})
        for seed in self.config.seeds:
            earlier = (_json_or_none(base / f"{stem}-seed{seed}.json") or {}) if same_data else {}
            subsets = dict(earlier.get("labeled_index") or {})
            vals = dict(earlier.get("val_index") or {})
            for budget in self.config.budgets:
                train, val = labeled_positions(self.context, splits, budget, seed)
                subsets[budget.key] = splits.pool_index[train].tolist()
                vals[budget.key] = splits.pool_index[val].tolist()
            atomic_write_json(base / f"{stem}-seed{seed}.json", {
                "dataset": ds, "seed": seed, "split_seed": splits.seed,
                "note": ("training-split indices per budget (0.1: 10%, c20: 20 per class, "
                         "n250: 250 labels; nested, stratified): "
                         "labeled_index trains, val_index makes the cell's choices"
                         + ("" if splits.per_cell_validation else
                            " (empty: the fixed validation split does)")),
                "labeled_index": subsets, "val_index": vals})


    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.reporter.warn(message)

    # ------------------------------------------------------------------ one (task, seed)









