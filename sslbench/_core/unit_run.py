"""One unit run: its pretraining (or the cached checkpoint), then each of its cells, each
ending in a record.

:func:`run_unit` is a function of its inputs: the unit, the data set prepared for it
(:class:`Prepared`) and a :class:`UnitContext`, what the sweep fixed when it was planned
(configuration, settings, device, the plugins' objects and options, code identities) and the
services a unit writes through (the caches, the records folder, the reporter, the plugin
host's hooks, the driver's time account). It returns what it made (:class:`Ran`: the records
by cell id, where the time went, whether it pretrained); it changes nothing else in memory.
The runner (:meth:`sslbench._core.runner.Sweep.run_here`) calls it wherever a unit runs.

A failure fails the cells it touches and nothing else: a pretraining that raises fails the
unit's cells with its reason, a cell that raises fails that cell, and the unit goes on.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .identity import numeric_identity, without_versions
from ..backbone import Backbone, BackboneSpec
from ..data import Splits
from ..errors import SSLBenchError
from ..protocol import EvalContext, EvaluationProtocol, Split
from ..record import Record
from ..training import effective_schedule, to_device
from . import timing
from .budgets import Budget, labeled_split, labeled_subset
from .checkpoints import CheckpointStore, cache_key
from .checks import pretraining_checks
from .claims import waiting_claim
from .config import SweepConfig
from .distributed import from_first, is_writer, world_size_from_environment
from .features import FeatureCache, FeatureStore
from .grid import Cell, Unit, split_file_stem
from .hygiene import HygieneReport
from .placement import PlacedData
from .plugins import PluginHost
from .pretraining import pretrain
from .progress import Reporter
from .records import device_description, library_versions, peak_memory_mib, write_record
from .resume import ResumeFile
from .seeding import derive_seed, seed_everything
from .task_plans import TaskPlan, references_of, task_configs
from .timing import timed

__all__ = ["UnitContext", "Prepared", "Ran", "run_unit", "charge", "record_head", "finish",
           "labeled_positions", "plugins_of", "options_of", "cell_resume"]


class Prepared(NamedTuple):
    """A data set ready for its units (:meth:`sslbench._core.runner.Sweep.prepare`)."""

    splits: Splits
    placed: PlacedData
    hygiene: HygieneReport


class Ran(NamedTuple):
    """What running units made: their records (cell id -> record), where their time went
    (``{"units": {id: charges}, "cells": {id: charges}}``, :mod:`sslbench._core.timing`) and
    how many checkpoints were pretrained (rather than taken from the cache)."""

    records: dict[str, Record]
    time: dict[str, dict[str, dict[str, float]]]
    pretrained: int = 0


@dataclass(frozen=True)
class UnitContext:
    """What running a unit reads, fixed when the sweep was planned, and what it writes
    through. Made once per sweep (:attr:`sslbench._core.runner.Sweep.context`)."""

    config: SweepConfig
    settings: dict[str, Any]
    device: torch.device
    dtype: torch.dtype | None
    out: Path
    cache_dir: Path
    host: PluginHost
    plan_of: dict[str, TaskPlan]
    protocols: dict[str, EvaluationProtocol]
    backbone_specs: dict[str, BackboneSpec]
    backbone_options: dict[str, dict[str, Any]]
    dataset_options: dict[str, dict[str, Any]]
    code: dict[tuple[str, str], dict[str, Any]]     # (kind, name) -> code identity
    checkpoints: CheckpointStore
    features: FeatureCache
    reporter: Reporter
    warn: Callable[[str], None]                     # once per message
    # a unit's or cell's time, into the run's account where this process writes one
    account: Callable[[str, str, dict[str, float]], None]


def charge(ctx: UnitContext, into: dict[str, dict[str, dict[str, float]]], table: str,
            key: str, spent: dict[str, float]) -> None:
    """Book a unit's (``table="units"``) or a cell's time in what the caller returns and in
    the run's account (written at once: a run killed midway loses only the piece of work it
    was in)."""
    into[table][key] = spent
    ctx.account(table, key, spent)


def labeled_positions(ctx: UnitContext, splits: Splits, budget: Budget, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the training pool of the cell's labeled training images and of its
    validation images (empty when a fixed validation split makes the choices)."""
    labels = splits.pool_labels.numpy()
    if splits.per_cell_validation:
        return labeled_split(labels, budget, seed, ctx.settings["val_share"],
                             warn=ctx.warn, class_names=splits.data.classes)
    return (labeled_subset(labels, budget, seed, warn=ctx.warn,
                           class_names=splits.data.classes),
            np.array([], dtype=np.int64))


def _new_backbone(ctx: UnitContext, bb: str, seed: int, placed: PlacedData) -> Backbone:
    """The seed's random initialisation, identical for scratch and for pretraining."""
    torch.manual_seed(derive_seed(seed, f"init:{bb}"))
    backbone = ctx.backbone_specs[bb].build(ctx.settings["resolution"],
                                             ctx.backbone_options[bb])
    if ctx.settings["sync_bn"] and world_size_from_environment() > 1:
        backbone = torch.nn.SyncBatchNorm.convert_sync_batchnorm(backbone)
    mean, std = placed.channel_stats
    backbone.set_input_stats(mean, std)
    return backbone


def _checkpoint(ctx: UnitContext, ds: str, plan: TaskPlan, bb: str, seed: int,
                splits: Splits, placed: PlacedData
                ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(checkpoint id, backbone state dict, pretraining info): from the cache, or trained.
    The info holds the per-epoch history, the pretext accuracy on held-out pool images
    and the task's shortcut control."""
    backbone = _new_backbone(ctx, bb, seed, placed)
    data_key = {"data": splits.data.fingerprint(), "split_seed": splits.seed,
                "backbone_options": ctx.backbone_options[bb],
                "dataset_options": ctx.dataset_options[ds],
                "validation": ctx.settings["validation"],
                "val_fraction": ctx.settings["val_fraction"],
                "holdout": ctx.settings["pretext_holdout"]}
    code = without_versions(plugins_of(ctx, ds, bb, TaskPlan("", plan.pretext)))
    if plan.pretext is None:
        key = cache_key({"scratch": bb, "seed": seed, "res": ctx.settings["resolution"],
                     **data_key, "code": code})
        return f"scratch-{key}", backbone.state_dict(), {}
    task = plan.pretext
    keys = ("resolution", "pretrain_epochs", "pretrain_batch_size", "pretrain_lr",
            "weight_decay")
    key = cache_key({"task": task.config(), "backbone": bb, "seed": seed,
                 "settings": {k: ctx.settings[k] for k in keys}, **data_key,
                 "schedule": effective_schedule(task, ctx.settings),
                 "device": ctx.device.type, "dtype": str(ctx.dtype),
                 "streamed": placed.pretraining.streamed, "sslbench": numeric_identity(),
                 "code": code})
    ckpt_id = f"{task.name}-{key}"
    expected = backbone.state_dict()
    saved = ctx.checkpoints.load(ckpt_id, expected)
    if from_first(saved is not None):      # torchrun's processes decide together
        saved = saved or ctx.checkpoints.load(ckpt_id, expected)
        return ckpt_id, saved[0], {**saved[1], "cached": True}
    # another process (a unit of another task plan with this pretraining, a second
    # driver) may be training it now: wait for it rather than train it twice
    with _checkpoint_claim(ctx, ckpt_id) as mine:
        saved = ctx.checkpoints.load(ckpt_id, expected)
        if from_first(saved is not None):
            saved = saved or ctx.checkpoints.load(ckpt_id, expected)
            return ckpt_id, saved[0], {**saved[1], "cached": True}
        if not mine:     # the other process finished but its file cannot be read
            raise SSLBenchError(f"checkpoint {ckpt_id} was made by another process but "
                                "cannot be read")
        return _pretrain(ctx, plan, bb, seed, placed, backbone, ckpt_id)


def _pretrain(ctx: UnitContext, plan: TaskPlan, bb: str, seed: int, placed: PlacedData,
              backbone: Backbone, ckpt_id: str
              ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    task = plan.pretext
    backbone = to_device(backbone, ctx.device)
    seed_everything(seed, f"pretrain:{task.name}")
    resume = ResumeFile(ctx.checkpoints.path(ckpt_id).with_suffix(".resume.pt"),
                        60 * ctx.config.checkpoint_every_min, ctx.warn)
    with timed("pretraining"):
        result = pretrain(task, backbone, placed.pretraining, ctx.settings,
                          ctx.device, ctx.dtype, seed, ctx.reporter,
                          label=f"pretrain {task.name} s{seed}",
                          compile=ctx.config.compile, resume=resume)
    with timed("evaluation"):
        checks = pretraining_checks(
            task, backbone, result["head"], result["prepared"], placed.heldout,
            placed.pretraining, lambda: _new_backbone(ctx, bb, seed, placed), ctx.settings,
            ctx.device, ctx.dtype, seed, ctx.reporter)
    info = {"checkpoint": ckpt_id, "seconds": result["seconds"],
            "images_per_s": result["images_per_s"], "history": result["history"],
            "n_images": result["n_images"], "schedule": result["schedule"],
            "resumed_after_epoch": result["resumed_after_epoch"], **checks,
            "cached": False}
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    ctx.checkpoints.save(ckpt_id, state, info)
    resume.remove()
    return ckpt_id, state, info


@contextlib.contextmanager
def _checkpoint_claim(ctx: UnitContext, ckpt_id: str) -> Iterator[bool]:
    """Hold the claim to train a checkpoint (waiting while another process trains it):
    ``True`` when this sweep must train it, ``False`` when it appeared meanwhile."""
    if not is_writer():
        yield from_first(None)
        return
    path = ctx.checkpoints.path(ckpt_id)
    with waiting_claim(path.with_suffix(".claim"), f"checkpoint {ckpt_id}", path.is_file,
                       ctx.reporter.log) as mine:
        yield from_first(mine)


def run_unit(ctx: UnitContext, unit: Unit, prepared: Prepared) -> Ran:
    """One unit: its pretraining (or cached checkpoint), then each of its cells, each
    ending in a record. A failure fails the cells it touches and nothing else. Returns
    the unit's records and where its time went."""
    ran = Ran({}, {"units": {}, "cells": {}}, 0)
    plan = ctx.plan_of[unit.task]
    cells, bb, seed = list(unit.cells), unit.backbone, unit.seed
    splits, placed, hygiene = prepared
    mark = timing.account().mark()
    try:
        ckpt_id, state, info = _checkpoint(ctx, cells[0].dataset, plan, bb, seed, splits,
                                           placed)
    except (KeyboardInterrupt, SSLBenchError):
        raise
    except Exception as exc:  # noqa: BLE001 - a failed pretraining fails its cells only
        reason = f"pretraining failed: {type(exc).__name__}: {exc}"
        for cell in cells:
            ran.records[cell.id] = finish(
                ctx, cell, {**record_head(ctx, cell, plan),
                            "data": _data_part(cell, splits, placed, hygiene)},
                error=reason, trace=traceback.format_exc())
        return ran
    finally:
        charge(ctx, ran.time, "units", unit.id, timing.account().since(mark))  # pretraining
    ran = ran._replace(pretrained=int(info.get("cached") is False))
    features = FeatureStore(
        ctx.features, ckpt_id, {"pool": placed.pool, "val": placed.val, "test": placed.test},
        lambda: _trained_backbone(ctx, bb, seed, placed, state), ctx.device, ctx.dtype)
    for cell in cells:
        ctx.reporter.cell_started(cell.id)
        if is_writer():
            ctx.host.notify("sslbench_cell_start", ctx.warn, cell=cell)
        parts = {**record_head(ctx, cell, plan),
                 "data": _data_part(cell, splits, placed, hygiene),
                 "pretraining": info or None}
        if ctx.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx.device)
        started = time.perf_counter()
        mark = timing.account().mark()
        try:
            parts.update(_evaluate(ctx, cell, plan, state, bb, splits, placed, features))
            error = None
        except (KeyboardInterrupt, SSLBenchError):
            raise
        except Exception as exc:  # noqa: BLE001 - recorded, and the sweep goes on
            error, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        parts["wall_time_s"] = time.perf_counter() - started
        parts["time_s"] = timing.account().since(mark)     # where it went (not the write)
        parts["peak_memory_mib"] = peak_memory_mib(ctx.device)
        ran.records[cell.id] = finish(ctx, cell, parts, error=error,
                                      trace=trace if error else None)
        charge(ctx, ran.time, "cells", cell.id, timing.account().since(mark))
    ctx.features.forget(ckpt_id)
    return ran


def _trained_backbone(ctx: UnitContext, bb: str, seed: int, placed: PlacedData,
                      state: dict) -> Backbone:
    """A fresh backbone with a checkpoint's weights, on the run's device."""
    backbone = _new_backbone(ctx, bb, seed, placed)
    backbone.load_state_dict(state)
    return to_device(backbone, ctx.device)


def _evaluate(ctx: UnitContext, cell: Cell, plan: TaskPlan, state: dict, bb: str,
              splits: Splits, placed: PlacedData, features: FeatureStore) -> dict[str, Any]:
    seed_everything(cell.seed, cell.id)
    train_pos, val_pos = labeled_positions(ctx, splits, cell.budget, cell.seed)
    train_t = torch.from_numpy(train_pos).to(ctx.device)
    backbone = _trained_backbone(ctx, bb, cell.seed, placed, state)
    labeled_images, labeled_labels = placed.labeled(train_t)
    labeled = Split("labeled", labeled_images, labeled_labels,
                    lambda: [f[train_t] for f in features.get("pool")],
                    lambda stage: features.maps(labeled_images, stage))
    if splits.per_cell_validation:
        val_t = torch.from_numpy(val_pos).to(ctx.device)
        val_images, val_labels = placed.labeled(val_t)
        val = Split("val", val_images, val_labels,
                    lambda: [f[val_t] for f in features.get("pool")],
                    lambda stage: features.maps(val_images, stage))
    else:
        val = Split("val", placed.val, placed.val_labels, lambda: features.get("val"),
                    lambda stage: features.maps(placed.val, stage, "val"))
    test = Split("test", placed.test, placed.test_labels, lambda: features.get("test"),
                 lambda stage: features.maps(placed.test, stage, "test"))
    given = EvalContext(backbone=backbone, labeled=labeled, val=val,
                        unlabeled=placed.pool, num_classes=splits.data.num_classes,
                        consistency_tasks=plan.consistency, settings=ctx.settings,
                        device=ctx.device, autocast_dtype=ctx.dtype, seed=cell.seed,
                        reporter=ctx.reporter, compile=ctx.config.compile,
                        resume=cell_resume(ctx, cell))
    protocol = ctx.protocols[cell.protocol]
    with timed("finetuning" if protocol.trains_backbone else "probes"):
        result = protocol.evaluate(given)
    with timed("evaluation"):
        predicted = result.predict(test).to("cpu")      # the one look at the test split
        truth = placed.test_labels.to("cpu")
        by = {name: float((p(test).to("cpu") == truth).float().mean())
              for name, p in result.extra_predictions.items()}
    n = splits.data.num_classes
    confusion = torch.bincount(truth * n + predicted, minlength=n * n).reshape(n, n)
    per_class = confusion.diag().float() / confusion.sum(1).clamp_min(1).float()
    n_val = len(val)
    return {"metrics": {
                "test_accuracy": float((predicted == truth).float().mean()),
                "test_accuracy_by": by,
                "val_accuracy": (None if result.val_accuracy is None
                                 or math.isnan(result.val_accuracy)
                                 else float(result.val_accuracy)),
                "per_class_accuracy": dict(zip(splits.data.classes, per_class.tolist())),
                "confusion_matrix": confusion.tolist(),
                # per test image, in test-split order: the predicted class, and whether it
                # was right ("0"/"1"), for paired tests over images (sslbench._core.stats)
                "test_predictions": predicted.tolist(),
                "test_correct": ((predicted == truth).numpy().astype(np.uint8) + 48)
                                .tobytes().decode()},
            "details": result.details,
            "validation": ctx.settings["validation"],
            # where the cell's choices were made: on its validation images, or (a
            # budget too small to hold any) fixed in advance by the protocol
            "chosen_on": ("validation" if n_val else
                          "fixed in advance: no validation image (docs/evaluation.md)"),
            # the label budget: training images plus, with per-cell validation, the
            # validation images held out of it
            "n_labeled": int(len(train_pos) + (n_val if splits.per_cell_validation else 0)),
            "n_train": int(len(train_pos)), "n_val": int(n_val)}


def _data_part(cell: Cell, splits: Splits, placed: PlacedData,
               hygiene: HygieneReport) -> dict[str, Any]:
    """A record's ``data``: the classes, fingerprint, split sizes and files, hygiene."""
    stem = split_file_stem(cell.dataset, cell.split_seed)
    return {"classes": splits.data.classes, "fingerprint": splits.data.fingerprint(),
            "content": hygiene.content,
            "n_pool": len(splits.pool_index), "n_val_fixed": len(splits.val_index),
            "n_pretext_holdout": len(splits.holdout),
            "n_test": len(splits.data.test_labels),
            "split_file": f"splits/{stem}.json",
            "labeled_file": f"splits/{stem}-seed{cell.seed}.json",
            "hygiene": hygiene.summary(),
            "placement": placed.describe()}


def record_head(ctx: UnitContext, cell: Cell, plan: TaskPlan) -> dict[str, Any]:
    """What a record says about its cell without its data (all a lost unit's failed
    records can say)."""
    return {
        "cell_id": cell.id, "config_hash": cell.config_hash,
        **cell.describe(), "preset": ctx.config.preset, "task_plan": plan.config(),
        # the settings that ran: the preset names a default backbone, the cell its own
        "settings": {**ctx.settings, "backbone": cell.backbone},
        "sweep": ctx.config.to_dict(),
        "plugins": plugins_of(ctx, cell.dataset, cell.backbone, plan, cell.protocol),
        "options": {"tasks": {t["name"]: t["options"] for t in task_configs(plan)},
                    **options_of(ctx, cell)},
        "protocol_summary": ctx.protocols[cell.protocol].summary(),
        "protocol_trains_backbone": bool(ctx.protocols[cell.protocol].trains_backbone),
        # published numbers for this row (a single task's), so reports need no plugin
        "references": references_of(plan),
        "device": device_description(ctx.device),
        # CPU results depend on it (reductions split by thread): say it
        "torch_threads": torch.get_num_threads(),
        "processes": world_size_from_environment(),   # torchrun's data parallelism
        "precision": str(ctx.dtype or "float32").replace("torch.", ""),
        "versions": library_versions(),
    }


def cell_resume(ctx: UnitContext, cell: Cell) -> ResumeFile:
    """Where a training protocol keeps the snapshot of this cell as configured now."""
    return ResumeFile(ctx.cache_dir / "resume" / f"{cell.id}-{cell.config_hash[:16]}.pt",
                      60 * ctx.config.checkpoint_every_min, ctx.warn,
                      kind=cell.protocol)


def finish(ctx: UnitContext, cell: Cell, parts: dict[str, Any], error: str | None,
           trace: str | None = None) -> Record:
    """Make the cell's :class:`~sslbench.record.Record` from the parts the cell's steps
    gathered (the one place a record is made), write it and tell the plugins."""
    record = Record(**parts, status="failed" if error else "ok", error=error,
                    traceback=trace or None,
                    finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_record(ctx.out, record)
    if error:
        ctx.reporter.warn(f"cell {cell.id} failed: {error}")
    elif is_writer():
        cell_resume(ctx, cell).remove()     # a failed cell keeps it: a rerun continues
    ctx.reporter.cell_done(cell.id)
    if is_writer():
        ctx.host.notify("sslbench_cell_finish", ctx.warn, cell=cell, record=record,
                         out=ctx.out)
    return record


def plugins_of(ctx: UnitContext, dataset: str, backbone: str, plan: TaskPlan,
               protocol: str | None = None) -> dict[str, Any]:
    """The code identities behind one cell (or, without a protocol, one checkpoint):
    in cache keys, cell hashes and records, so that edited code is never reused."""
    tasks = ([plan.pretext] if plan.pretext else []) + plan.consistency
    out = {"dataset": ctx.code[("dataset", dataset)],
           "backbone": ctx.code[("backbone", backbone)],
           "tasks": [ctx.code[("task", t.name)] for t in tasks]}
    if protocol is not None:
        out["protocol"] = ctx.code[("protocol", protocol)]
    return out


def options_of(ctx: UnitContext, cell: Cell) -> dict[str, Any]:
    """The resolved options of a cell's protocol, backbone and data set (its tasks'
    are in the task plan)."""
    return {"protocol": dict(ctx.protocols[cell.protocol].options),
            "backbone": dict(ctx.backbone_options[cell.backbone]),
            "dataset": dict(ctx.dataset_options[cell.dataset])}
