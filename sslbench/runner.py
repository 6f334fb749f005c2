"""The sweep runner: the grid data set x backbone x task x fraction x protocol x seed.

For each (data set, backbone, task, seed) the backbone is pretrained once (or its checkpoint
is taken from the cache, keyed by a hash of everything that affects it) and then evaluated by
every (fraction, protocol) cell. Every finished cell writes one JSON record; a cell whose
record already exists with the same configuration is skipped, so an interrupted sweep
resumes. A failure inside one cell (a NaN loss, an out-of-memory error) is recorded as that
cell's failure and the sweep goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .atomic import atomic_torch_save, atomic_write_json, safe_torch_load
from .backbone import Backbone, BackboneSpec
from .config import SweepConfig
from .data import DatasetRequest, ImageData, Splits, make_splits
from .door import backbone_problem, dataset_problem
from .errors import MalformedPlugin, SSLBenchError
from .features import FeatureCache, extract_features
from .fractions import fraction_key, labeled_split, labeled_subset
from .hygiene import HygieneReport, deduplicate, find_duplicates
from .images import Images, default_workers
from .placement import PlacedData, place
from .plugins import PluginHost
from .progress import Reporter
from .protocol import EvalContext, EvaluationProtocol, Split
from .records import (RECORD_SCHEMA, device_description, library_versions, peak_memory_mib,
                      read_record, write_record)
from .seeding import derive_seed, seed_everything
from .task import PretextTask
from .checks import pretraining_checks
from .training import (autocast_dtype_for, effective_schedule, pretrain, resolve_device,
                       to_device)

SCRATCH = "scratch"


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def slug(text: str) -> str:
    """A file-name-safe version of a name: ``imagefolder:../data/flowers`` -> ``flowers``."""
    base, _, arg = text.partition(":")
    if arg:
        text = Path(arg.rstrip("/\\")).name or base
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


def default_out(config: SweepConfig) -> Path:
    return Path("results") / f"{'+'.join(map(slug, config.datasets))}-{'+'.join(config.backbones)}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sslbench"


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
    fraction: float
    protocol: str
    seed: int
    split_seed: int = 0
    config_hash: str = ""
    done: bool = False

    @property
    def id(self) -> str:
        return (f"{slug(self.dataset)}__{self.backbone}__{self.task}__{self.protocol}"
                f"__f{fraction_key(self.fraction)}__s{self.seed}"
                + (f"__p{self.split_seed}" if self.split_seed else ""))

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "backbone": self.backbone, "task": self.task,
                "fraction": self.fraction, "protocol": self.protocol, "seed": self.seed,
                "split_seed": self.split_seed}


def split_file_stem(dataset: str, split_seed: int) -> str:
    """``flowers`` for split seed 0, ``flowers-p3`` for split seed 3."""
    return slug(dataset) + (f"-p{split_seed}" if split_seed else "")


OPTION_KINDS = ("task", "protocol", "backbone", "dataset")


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


def _task_configs(plan: TaskPlan) -> list[dict[str, Any]]:
    return [t.config() for t in ([plan.pretext] if plan.pretext else []) + plan.consistency]


def _references(plan: TaskPlan) -> list[dict[str, Any]]:
    tasks = ([plan.pretext] if plan.pretext else []) + plan.consistency
    return [dict(r) for r in tasks[0].references] if len(tasks) == 1 else []


class Sweep:
    """Runs one :class:`SweepConfig`. Construct it (which validates every name), then call
    :meth:`run`."""

    def __init__(self, config: SweepConfig, host: PluginHost, reporter: Reporter | None = None):
        self.config = config
        self.host = host
        self.reporter = reporter or Reporter()
        self.device = resolve_device(config.device)
        self.dtype = autocast_dtype_for(self.device)
        self.out = Path(config.out) if config.out else default_out(config)
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        self.settings = config.settings
        # validate every name and option before anything runs
        self.routed = route_options(config, host)
        self.plans = build_plans(config, host, self.routed["task"])
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
        for name, spec in self.backbone_specs.items():
            self._door("backbone", name, backbone_problem(
                name, lambda r, spec=spec, name=name: spec.build(r, self.backbone_options[name]),
                int(self.settings["resolution"])))
        names: dict[str, str] = {}
        for name in config.datasets:
            other = names.setdefault(slug(name), name)
            if other != name:
                raise SSLBenchError(f"data sets {other!r} and {name!r} would share the name "
                                    f"{slug(name)!r} in the results; give their folders "
                                    "different names or run them with different --out")
        self.features = FeatureCache(self.cache_dir / "features", warn=self._warn_once)
        self.checkpoints_trained = 0
        self.workers = config.workers if config.workers is not None else default_workers()
        self._warned: set[str] = set()
        self.cells = self._grid()

    # ------------------------------------------------------------------ the grid
    def _grid(self) -> list[Cell]:
        cells = []
        for ds in self.config.datasets:
            for split_seed in self.config.split_seeds:
                for bb in self.config.backbones:
                    for plan in self.plans:
                        for seed in self.config.seeds:
                            for fraction in self.config.fractions:
                                for proto_name, proto in self.protocols.items():
                                    if plan.consistency and not proto.trains_backbone:
                                        continue  # "n/a": a frozen probe ignores fine-tuning losses
                                    cell = Cell(ds, bb, plan.label, fraction, proto_name, seed,
                                                split_seed)
                                    cell.config_hash = self._cell_hash(cell, plan)
                                    rec = read_record(self.out, cell.id)
                                    if rec is not None and rec.get("dataset") != ds:
                                        raise SSLBenchError(
                                            f"{str(self.out)!r} holds results of data set "
                                            f"{rec.get('dataset')!r} under the name "
                                            f"{slug(ds)!r}; use another --out for {ds!r}")
                                    cell.done = bool(rec and rec.get("status") == "ok"
                                                     and rec.get("config_hash") == cell.config_hash)
                                    cells.append(cell)
        return cells

    def _cell_hash(self, cell: Cell, plan: TaskPlan) -> str:
        return _hash({"cell": cell.describe(), "plan": plan.config(), "settings": self.settings,
                      "dedup": self.config.dedup, "device": self.device.type,
                      "stream": self.config.stream, "sslbench": __version__,
                      "code": self._plugins_of(cell.dataset, cell.backbone, plan, cell.protocol),
                      "options": self._options_of(cell)})

    def _options_of(self, cell: Cell) -> dict[str, Any]:
        """The resolved options of a cell's protocol, backbone and data set (its tasks'
        are in the task plan)."""
        return {"protocol": dict(self.protocols[cell.protocol].options),
                "backbone": dict(self.backbone_options[cell.backbone]),
                "dataset": dict(self.dataset_options[cell.dataset])}

    def _door(self, kind: str, name: str, problem: str | None) -> None:
        """A contribution that cannot be used: one line naming it and its plugin, exit 2."""
        if problem:
            plugin = self.host.describe_plugin(self.code[(kind, name)]["plugin"])
            label = {"dataset": "data set"}.get(kind, kind)
            raise SSLBenchError(f"{label} {name!r} from plugin {plugin}: {problem}")

    def _code_identities(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(kind, name) -> the code identity of every contribution this sweep uses."""
        used = [("dataset", d) for d in self.config.datasets]
        used += [("backbone", b) for b in self.config.backbones]
        used += [("protocol", p) for p in self.config.protocols]
        used += [("task", t.name) for plan in self.plans
                 for t in ([plan.pretext] if plan.pretext else []) + plan.consistency]
        return {(kind, name): self.host.identity(kind, name) for kind, name in used}

    def _plugins_of(self, dataset: str, backbone: str, plan: TaskPlan,
                    protocol: str | None = None) -> dict[str, Any]:
        """The code identities behind one cell (or, without a protocol, one checkpoint):
        in cache keys, cell hashes and records, so that edited code is never reused."""
        tasks = ([plan.pretext] if plan.pretext else []) + plan.consistency
        out = {"dataset": self.code[("dataset", dataset)],
               "backbone": self.code[("backbone", backbone)],
               "tasks": [self.code[("task", t.name)] for t in tasks]}
        if protocol is not None:
            out["protocol"] = self.code[("protocol", protocol)]
        return out

    # ------------------------------------------------------------------ running
    def run(self) -> list[dict[str, Any]]:
        notify = lambda hook, **kw: self.host.notify(hook, self._warn_once, **kw)  # noqa: E731
        notify("sslbench_sweep_start", config=self.config, cells=self.cells)
        self.reporter.sweep_started(len(self.cells))
        for cell in self.cells:
            if cell.done:
                self.reporter.cell_done(f"{cell.id} (cached)")
        todo = [c for c in self.cells if not c.done]
        for ds in self.config.datasets:
            for split_seed in self.config.split_seeds:
                ds_cells = [c for c in todo if c.dataset == ds and c.split_seed == split_seed]
                if not ds_cells:
                    continue
                data, hygiene = self._load(ds, split_seed)
                s = self.settings
                splits = make_splits(data, s["validation"], s["val_fraction"],
                                     s["pretext_holdout"], split_seed)
                self._write_split_files(ds, splits, hygiene)
                placed = place(splits, self.device, self.config.stream, self.workers)
                if placed.streamed:
                    self.reporter.log(f"streaming {ds} through {self.workers} DataLoader "
                                      f"workers ({placed.notes['reason']})")
                for bb in self.config.backbones:
                    for plan in self.plans:
                        for seed in self.config.seeds:
                            group = [c for c in ds_cells if c.backbone == bb
                                     and c.task == plan.label and c.seed == seed]
                            if group:
                                self._run_group(group, plan, bb, seed, splits, placed, hygiene)
        records = [read_record(self.out, c.id) for c in self.cells]
        records = [r for r in records if r is not None]
        notify("sslbench_sweep_finish", config=self.config, records=records)
        return records

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
            self._door("dataset", name, str(exc))
        self._door("dataset", name, dataset_problem(data, int(self.settings["resolution"])))
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
        hygiene = find_duplicates(data, self.workers)
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
        atomic_write_json(base / f"{stem}.json", {
            "dataset": ds, "fingerprint": data.fingerprint(), "classes": data.classes,
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
            subsets, vals = {}, {}
            for f in self.config.fractions:
                train, val = self._labeled(splits, f, seed)
                subsets[fraction_key(f)] = splits.pool_index[train].tolist()
                vals[fraction_key(f)] = splits.pool_index[val].tolist()
            atomic_write_json(base / f"{stem}-seed{seed}.json", {
                "dataset": ds, "seed": seed, "split_seed": splits.seed,
                "note": ("training-split indices per fraction (nested, stratified): "
                         "labeled_index trains, val_index makes the cell's choices"
                         + ("" if splits.per_cell_validation else
                            " (empty: the fixed validation split does)")),
                "labeled_index": subsets, "val_index": vals})

    def _labeled(self, splits: Splits, fraction: float, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the training pool of the cell's labeled training images and of its
        validation images (empty when a fixed validation split makes the choices)."""
        labels = splits.pool_labels.numpy()
        if splits.per_cell_validation:
            return labeled_split(labels, fraction, seed, self.settings["val_share"],
                                 warn=self._warn_once, class_names=splits.data.classes)
        return (labeled_subset(labels, fraction, seed, warn=self._warn_once,
                               class_names=splits.data.classes),
                np.array([], dtype=np.int64))

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.reporter.warn(message)

    # ------------------------------------------------------------------ one (task, seed)
    def _new_backbone(self, bb: str, seed: int, placed: PlacedData) -> Backbone:
        """The seed's random initialisation, identical for scratch and for pretraining."""
        torch.manual_seed(derive_seed(seed, f"init:{bb}"))
        backbone = self.backbone_specs[bb].build(self.settings["resolution"],
                                                 self.backbone_options[bb])
        mean, std = placed.channel_stats
        backbone.set_input_stats(mean, std)
        return backbone

    def _checkpoint(self, ds: str, plan: TaskPlan, bb: str, seed: int, splits: Splits,
                    placed: PlacedData) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(checkpoint id, backbone state dict, pretraining info): from the cache, or trained.
        The info holds the per-epoch history, the pretext accuracy on held-out pool images
        and the task's shortcut control."""
        backbone = self._new_backbone(bb, seed, placed)
        data_key = {"data": splits.data.fingerprint(), "split_seed": splits.seed,
                    "backbone_options": self.backbone_options[bb],
                    "dataset_options": self.dataset_options[ds],
                    "validation": self.settings["validation"],
                    "val_fraction": self.settings["val_fraction"],
                    "holdout": self.settings["pretext_holdout"]}
        code = self._plugins_of(ds, bb, TaskPlan("", plan.pretext))
        if plan.pretext is None:
            key = _hash({"scratch": bb, "seed": seed, "res": self.settings["resolution"],
                         **data_key, "code": code})
            return f"scratch-{key}", backbone.state_dict(), {}
        task = plan.pretext
        keys = ("resolution", "pretrain_epochs", "pretrain_batch_size", "pretrain_lr",
                "weight_decay")
        key = _hash({"task": task.config(), "backbone": bb, "seed": seed,
                     "settings": {k: self.settings[k] for k in keys}, **data_key,
                     "schedule": effective_schedule(task, self.settings),
                     "device": self.device.type, "dtype": str(self.dtype),
                     "streamed": placed.pretraining.streamed, "sslbench": __version__,
                     "code": code})
        ckpt_id = f"{task.name}-{key}"
        path = self.cache_dir / "checkpoints" / f"{ckpt_id}.pt"
        saved = safe_torch_load(path, self._warn_once) if path.is_file() else None
        if saved is not None:
            if isinstance(saved, dict) and isinstance(saved.get("backbone"), dict) \
                    and isinstance(saved.get("info"), dict):
                return ckpt_id, saved["backbone"], {**saved["info"], "cached": True}
            self._warn_once(f"ignoring cache file {str(path)!r} (recomputing it): not a "
                            "checkpoint of this sslbench")
        backbone = to_device(backbone, self.device)
        seed_everything(seed, f"pretrain:{task.name}")
        result = pretrain(task, backbone, placed.pretraining, self.settings,
                          self.device, self.dtype, seed, self.reporter,
                          label=f"pretrain {task.name} s{seed}", compile=self.config.compile)
        self.checkpoints_trained += 1
        checks = pretraining_checks(
            task, backbone, result["head"], result["prepared"], placed.heldout,
            placed.pretraining, lambda: self._new_backbone(bb, seed, placed), self.settings,
            self.device, self.dtype, seed, self.reporter)
        info = {"checkpoint": ckpt_id, "seconds": result["seconds"],
                "images_per_s": result["images_per_s"], "history": result["history"],
                "n_images": result["n_images"], "schedule": result["schedule"], **checks,
                "cached": False}
        state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
        atomic_torch_save({"backbone": state, "info": info}, path)
        return ckpt_id, state, info

    def _run_group(self, cells: list[Cell], plan: TaskPlan, bb: str, seed: int,
                   splits: Splits, placed: PlacedData, hygiene: HygieneReport) -> None:
        try:
            ckpt_id, state, info = self._checkpoint(cells[0].dataset, plan, bb, seed, splits,
                                                   placed)
        except (KeyboardInterrupt, SSLBenchError):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed pretraining fails its cells only
            reason = f"pretraining failed: {type(exc).__name__}: {exc}"
            for cell in cells:
                self._finish(cell, self._base_record(cell, plan, splits, placed, hygiene),
                             error=reason, trace=traceback.format_exc())
            return
        features = _FeatureSource(self, ckpt_id, state, bb, seed, placed)
        for cell in cells:
            self.host.notify("sslbench_cell_start", self._warn_once, cell=cell)
            record = self._base_record(cell, plan, splits, placed, hygiene)
            record["pretraining"] = info or None
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            started = time.perf_counter()
            try:
                record.update(self._evaluate(cell, plan, state, bb, splits, placed, features))
                error = None
            except (KeyboardInterrupt, SSLBenchError):
                raise
            except Exception as exc:  # noqa: BLE001 - recorded, and the sweep goes on
                error, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
            record["wall_time_s"] = time.perf_counter() - started
            record["peak_memory_mib"] = peak_memory_mib(self.device)
            self._finish(cell, record, error=error, trace=trace if error else None)
        self.features.forget(ckpt_id)

    def _evaluate(self, cell: Cell, plan: TaskPlan, state: dict, bb: str, splits: Splits,
                  placed: PlacedData, features: "_FeatureSource") -> dict[str, Any]:
        seed_everything(cell.seed, cell.id)
        train_pos, val_pos = self._labeled(splits, cell.fraction, cell.seed)
        train_t = torch.from_numpy(train_pos).to(self.device)
        backbone = self._new_backbone(bb, cell.seed, placed)
        backbone.load_state_dict(state)
        backbone = to_device(backbone, self.device)
        labeled = Split("labeled", *placed.labeled(train_t),
                        lambda: [f[train_t] for f in features.get("pool")])
        if splits.per_cell_validation:
            val_t = torch.from_numpy(val_pos).to(self.device)
            val = Split("val", *placed.labeled(val_t),
                        lambda: [f[val_t] for f in features.get("pool")])
        else:
            val = Split("val", placed.val, placed.val_labels, lambda: features.get("val"))
        test = Split("test", placed.test, placed.test_labels, lambda: features.get("test"))
        ctx = EvalContext(backbone=backbone, labeled=labeled, val=val,
                          unlabeled=placed.pool, num_classes=splits.data.num_classes,
                          consistency_tasks=plan.consistency, settings=self.settings,
                          device=self.device, autocast_dtype=self.dtype, seed=cell.seed,
                          reporter=self.reporter, compile=self.config.compile)
        result = self.protocols[cell.protocol].evaluate(ctx)
        predicted = result.predict(test).to("cpu")          # the one look at the test split
        truth = placed.test_labels.to("cpu")
        n = splits.data.num_classes
        confusion = torch.bincount(truth * n + predicted, minlength=n * n).reshape(n, n)
        per_class = confusion.diag().float() / confusion.sum(1).clamp_min(1).float()
        by = {name: float((p(test).to("cpu") == truth).float().mean())
              for name, p in result.extra_predictions.items()}
        n_val = len(val)
        return {"metrics": {
                    "test_accuracy": float((predicted == truth).float().mean()),
                    "test_accuracy_by": by,
                    "val_accuracy": float(result.val_accuracy),
                    "per_class_accuracy": dict(zip(splits.data.classes, per_class.tolist())),
                    "confusion_matrix": confusion.tolist(),
                    # per test image, in test-split order: the predicted class, and whether it
                    # was right ("0"/"1"), for paired tests over images (sslbench.stats)
                    "test_predictions": predicted.tolist(),
                    "test_correct": ((predicted == truth).numpy().astype(np.uint8) + 48)
                                    .tobytes().decode()},
                "details": result.details,
                "validation": self.settings["validation"],
                # the label budget: training images plus, with per-cell validation, the
                # validation images held out of it
                "n_labeled": int(len(train_pos) + (n_val if splits.per_cell_validation else 0)),
                "n_train": int(len(train_pos)), "n_val": int(n_val)}

    def _base_record(self, cell: Cell, plan: TaskPlan, splits: Splits,
                     placed: PlacedData, hygiene: HygieneReport) -> dict[str, Any]:
        stem = split_file_stem(cell.dataset, cell.split_seed)
        return {
            "schema": RECORD_SCHEMA, "cell_id": cell.id, "config_hash": cell.config_hash,
            **cell.describe(), "preset": self.config.preset, "task_plan": plan.config(),
            # the settings that ran: the preset names a default backbone, the cell its own
            "settings": {**self.settings, "backbone": cell.backbone},
            "sweep": self.config.to_dict(),
            "plugins": self._plugins_of(cell.dataset, cell.backbone, plan, cell.protocol),
            "options": {"tasks": {t["name"]: t["options"] for t in _task_configs(plan)},
                        **self._options_of(cell)},
            "protocol_summary": self.protocols[cell.protocol].summary(),
            "protocol_trains_backbone": bool(self.protocols[cell.protocol].trains_backbone),
            # published numbers for this row (a single task's), so reports need no plugin
            "references": _references(plan),
            "data": {"classes": splits.data.classes, "fingerprint": splits.data.fingerprint(),
                     "n_pool": len(splits.pool_index), "n_val_fixed": len(splits.val_index),
                     "n_pretext_holdout": len(splits.holdout),
                     "n_test": len(splits.data.test_labels),
                     "split_file": f"splits/{stem}.json",
                     "labeled_file": f"splits/{stem}-seed{cell.seed}.json",
                     "hygiene": hygiene.summary(),
                     "placement": placed.describe()},
            "device": device_description(self.device),
            "precision": str(self.dtype or "float32").replace("torch.", ""),
            "versions": library_versions(),
        }

    def _finish(self, cell: Cell, record: dict[str, Any], error: str | None,
                trace: str | None = None) -> None:
        record["status"] = "failed" if error else "ok"
        record["error"] = error
        if trace:
            record["traceback"] = trace
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_record(self.out, cell.id, record)
        if error:
            self.reporter.warn(f"cell {cell.id} failed: {error}")
        self.reporter.cell_done(cell.id)
        self.host.notify("sslbench_cell_finish", self._warn_once, cell=cell, record=record)


class _FeatureSource:
    """Frozen features of one checkpoint on the pool, validation and test images, extracted
    on first use and cached (:class:`~sslbench.features.FeatureCache`)."""

    def __init__(self, sweep: Sweep, ckpt_id: str, state: dict, bb: str, seed: int,
                 placed: PlacedData) -> None:
        self.sweep, self.ckpt_id, self.state, self.bb, self.seed = sweep, ckpt_id, state, bb, seed
        self.placed = placed
        self._backbone: Backbone | None = None

    def get(self, split: str) -> list[torch.Tensor]:
        images = {"pool": self.placed.pool, "val": self.placed.val,
                  "test": self.placed.test}[split]
        # the checkpoint id hashes the data, the splits and the resolution already
        return self.sweep.features.get(f"{self.ckpt_id}-{split}",
                                       lambda: self._extract(images), self.sweep.device)

    def _extract(self, images: Images) -> list[torch.Tensor]:
        if self._backbone is None:
            backbone = self.sweep._new_backbone(self.bb, self.seed, self.placed)
            backbone.load_state_dict(self.state)
            self._backbone = to_device(backbone, self.sweep.device)
        return extract_features(self._backbone, images, self.sweep.device, self.sweep.dtype)
