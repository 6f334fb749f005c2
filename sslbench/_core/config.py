"""Sweep configuration: presets, a TOML file, and command-line overrides, in that order of
precedence (a flag beats the file, the file beats the preset).

The resolved :class:`SweepConfig` is written, whole, into every result record.
"""

from __future__ import annotations

import ast
import copy
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SSLBenchError, did_you_mean
from .budgets import Budget

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The sweep settings and their defaults. A preset (:class:`sslbench.preset.Preset`, contributed
# by plugins: sslbench's ``quick`` and ``standard`` are built-in plugins) gives the values that
# differ, and must name the backbone; ``--set KEY=VALUE`` and a sweep file's [settings] come
# last. The core names no plugin here.
SETTING_DEFAULTS: dict[str, Any] = {
    "backbone": None,            # the preset names it
    "resolution": 32,
    # Where choices (fine-tuning checkpoint, probe regularisation and layer, k) are made:
    # "labeled" holds out val_share of each cell's own labeled images (the validation set
    # never exceeds the label budget it serves; Oliver et al. 2018), "fixed" carves
    # val_fraction of the training split out once for every cell (larger than small
    # budgets: the pre-0.4 behaviour, kept as an explicit option).
    "validation": "labeled",
    "val_share": 0.2,
    "val_fraction": 0.1,
    "pretext_holdout": 500,      # pool images kept out of pretraining to measure pretext
                                 # accuracy on unseen images (at most 10% of the pool)
    "pretrain_epochs": 15,
    "pretrain_batch_size": 128,  # source images per step (a task may expand each one)
    "pretrain_lr": 0.1,
    "pretrain_lr_drops": [],     # []: warm-up and cosine; else the lr x 0.2 after each share
                                 # of the epochs, no warm-up (RotNet: [0.3, 0.6, 0.8])
    "weight_decay": 5e-4,
    "sync_bn": False,            # with several processes (torchrun): global BN statistics
    # the protocols' settings (fine-tuning budget, probe grids) are their options:
    # --opt NAME.KEY=VALUE (sslbench list protocols)
}

VALIDATION_MODES = ("labeled", "fixed")

# what each sweep setting means (docs/settings.md is generated from this and the presets)
SETTING_HELP = {
    "backbone": "the backbone when --backbone is not given",
    "resolution": "image side in pixels (--resolution)",
    "validation": "where choices are made: 'labeled' (out of each cell's own labels) or "
                  "'fixed' (one split outside the label budget, the pre-0.4 behaviour)",
    "val_share": "with validation = labeled: the share of a cell's labels held out to choose",
    "val_fraction": "with validation = fixed: the share of the training split held out",
    "pretext_holdout": "pool images kept out of pretraining to measure pretext accuracy "
                       "(at most 10% of the pool)",
    "pretrain_epochs": "pretraining epochs (--pretrain-epochs; a task's schedule may differ)",
    "pretrain_batch_size": "source images per pretraining step (a task may expand each)",
    "pretrain_lr": "pretraining learning rate (SGD, Nesterov momentum 0.9, warm-up, cosine)",
    "pretrain_lr_drops": "pretraining step schedule instead of warm-up and cosine: the "
                         "learning rate x 0.2 after each of these shares of the epochs "
                         "(RotNet's [0.3, 0.6, 0.8]); [] keeps the cosine",
    "weight_decay": "pretraining weight decay (not on biases and normalisation weights)",
    "sync_bn": "with several processes (torchrun): batch-norm statistics over the global "
               "batch (torch's SyncBatchNorm; CUDA only) instead of each process's share",
}


@dataclass
class SweepConfig:
    """Everything that defines a sweep. Lists are the axes of the grid."""

    # the grid's axes; an empty one is the preset's (sslbench._core.presets)
    datasets: list[str] = field(default_factory=list)
    backbones: list[str] = field(default_factory=list)   # empty: the preset's backbone
    tasks: list[str] = field(default_factory=list)
    # label budgets (sslbench._core.budgets), in three units; the grid runs all that are given
    fractions: list[float] = field(default_factory=lambda: [0.1, 1.0])
    labels_per_class: list[int] = field(default_factory=list)   # RotNet's K labels per class
    labels: list[int] = field(default_factory=list)             # labels in all, stratified
    protocols: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    preset: str | None = None      # None: the installed preset that says it is the default
    settings: dict[str, Any] = field(default_factory=dict)   # overrides, then every setting
    preset_settings: dict[str, Any] = field(default_factory=dict)  # the preset's, for reports
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)   # merged into options
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # plugin name -> its options
    device: str = "auto"
    compile: bool = False          # torch.compile the training forward passes (for CUDA)
    stream: str = "auto"           # images on the device or streamed: auto, never, always
    workers: int | None = None     # DataLoader workers for streamed data (None: one per core, <= 8)
    out: str | None = None
    cache_dir: str | None = None
    data_dir: str = "data"
    download: bool = False
    split_seeds: list[int] = field(default_factory=lambda: [0])
    dedup: bool = False            # drop duplicated images (see sslbench._core.hygiene) before splitting
    plugins: list[str] = field(default_factory=list)
    # where the units of work run (sslbench._core.executors); never part of a result's hash
    executor: str | None = None    # an executor plugin (sslbench.executor); None: the default one
    # flags of sslbench 0.4 that set options of the built-in executors (``former_flags``)
    jobs: int = 1                  # local: units side by side in this many worker processes
    ray_address: str | None = None  # an existing Ray cluster (else $RAY_ADDRESS, else a new one)
    cpus_per_job: int | None = None  # CPUs a unit asks the engine for (None: 1 on Ray, all on Slurm)
    gpus_per_job: int = 0          # GPUs a unit asks the engine for
    slurm_partition: str | None = None
    slurm_cluster: str | None = None  # submitit's cluster (the slurm executor's default: Slurm)
    timeout_min: int = 24 * 60     # a Slurm job's time limit
    slurm_options: dict[str, Any] = field(default_factory=dict)  # --slurm-opt KEY=VALUE
    wait: bool = False             # slurm: wait for the jobs and print the leaderboard
    log_to: list[str] = field(default_factory=list)   # experiment trackers (sslbench.tracking)
    # sslbench run --against: the published leaderboard whose rows this sweep adds to (its
    # adopted records count as finished cells: sslbench._core.against); never in a cell's hash
    against: str | None = None
    checkpoint_every_min: float = 5.0  # a long pretraining's or fine-tuning's resumable snapshot (sslbench._core.resume)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def budgets(self) -> list[Budget]:
        """Every label budget of the grid, in table order."""
        return sorted([Budget.fraction(f) for f in self.fractions]
                      + [Budget.per_class(k) for k in self.labels_per_class]
                      + [Budget.labels(k) for k in self.labels], key=lambda b: b.order)


def parse_value(text: str) -> Any:
    """``3`` -> 3, ``0.5`` -> 0.5, ``true`` -> True, ``[1,2]`` -> [1, 2], else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def format_value(value: Any) -> str:
    """The text :func:`parse_value` reads back as ``value``: ``[0.1,1]``, ``true``, ``3``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value) if isinstance(value, (int, float)) else (
        value if parse_value(str(value)) == value else repr(value))


def parse_assignments(items: list[str], what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SSLBenchError(f"{what} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def parse_task_options(items: list[str], flag: str = "--task-opt",
                       what: str = "TASK") -> dict[str, dict[str, Any]]:
    """``["jigsaw.permutations=1000"]`` -> ``{"jigsaw": {"permutations": 1000}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in parse_assignments(items, flag).items():
        task, sep, option = key.partition(".")
        if not sep or not option:
            raise SSLBenchError(f"{flag} expects {what}.OPTION=VALUE, got {key!r}")
        out.setdefault(task, {})[option] = value
    return out


def parse_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--opt NAME.KEY=VALUE`` for any plugin (task, protocol, backbone, data set)."""
    return parse_task_options(items, "--opt", "NAME")


def parse_list(text: str | list | tuple, kind: type, what: str) -> list:
    items = text if isinstance(text, (list, tuple)) else [t for t in str(text).split(",") if t.strip()]
    try:
        if any(isinstance(t, bool) or (kind is str and not isinstance(t, str)) for t in items):
            raise ValueError
        values = [kind(str(t).strip()) if not isinstance(t, kind) else t for t in items]
    except ValueError:
        raise SSLBenchError(f"{what}: cannot read {text!r} as a list of {kind.__name__}s") from None
    if not values:
        raise SSLBenchError(f"{what} is empty")
    return values


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SSLBenchError(f"config file {str(path)!r} does not exist")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SSLBenchError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


# TOML keys accepted, singular spellings included (``dataset = "digits"``).
_TOML_ALIASES = {"dataset": "datasets", "backbone": "backbones", "task": "tasks",
                 "fraction": "fractions", "protocol": "protocols", "seed": "seeds",
                 "plugin": "plugins", "split_seed": "split_seeds", "log-to": "log_to",
                 "labels-per-class": "labels_per_class"}


def build_config(file_values: dict[str, Any] | None = None, **overrides: Any) -> SweepConfig:
    """Merge preset, TOML values and explicit overrides (``None`` means "not given"), then
    validate what needs no plugin (fractions, seeds, settings keys and types)."""
    merged: dict[str, Any] = {}
    for source in (file_values or {}, {k: v for k, v in overrides.items() if v is not None}):
        _check_tables(source)
        for key, value in source.items():
            key = _TOML_ALIASES.get(key, key)
            if key in ("settings", "task_options", "options", "slurm_options") \
                    and key in merged:
                merged[key] = _deep_merge(merged[key], value)
            else:
                merged[key] = value
    known = set(SweepConfig.__dataclass_fields__)
    unknown = sorted(set(merged) - known)
    if unknown:
        raise SSLBenchError(f"unknown configuration key {unknown[0]!r}; known: "
                            f"{', '.join(sorted(known))}.{did_you_mean(unknown[0], known)}")
    for key, kind in (("datasets", str), ("backbones", str), ("tasks", str),
                      ("protocols", str), ("plugins", str), ("log_to", str)):
        if key in merged and merged[key] != []:     # an empty axis: the preset's
            merged[key] = parse_list(merged[key], kind, key)   # a list's items checked too
    if merged.get("fractions") not in (None, []):   # [] : none (a sweep of labels only)
        merged["fractions"] = parse_list(merged["fractions"], float, "--fractions")
    for key, flag in (("labels_per_class", "--labels-per-class"), ("labels", "--labels")):
        if merged.get(key) not in (None, []):
            merged[key] = parse_list(merged[key], int, flag)
            for k in merged[key]:
                if k < 1:
                    raise SSLBenchError(f"{flag}: {k} is not a number of labels >= 1")
    # a budget given in labels replaces the default fractions rather than adding to them
    if "fractions" not in merged and (merged.get("labels_per_class") or merged.get("labels")):
        merged["fractions"] = []
    if "seeds" in merged:
        merged["seeds"] = parse_list(merged["seeds"], int, "--seeds")
    if "split_seeds" in merged:
        value = merged["split_seeds"]
        merged["split_seeds"] = parse_list([value] if isinstance(value, int) else value, int,
                                           "--split-seeds")
    _check_field_types(merged)
    cfg = SweepConfig(**merged)
    # --task-opt and [task_options] are the task part of --opt and [options]
    cfg.options = _deep_merge(cfg.task_options, cfg.options)
    cfg.task_options = {}
    for f in cfg.fractions:
        if not 0 < f <= 1:
            raise SSLBenchError(f"fraction {f:g} is outside (0, 1]")
    for s in cfg.seeds + cfg.split_seeds:
        if s < 0:
            raise SSLBenchError(f"seed {s} is negative")
    if cfg.stream not in ("auto", "never", "always"):
        raise SSLBenchError(f"stream must be auto, never or always, not {cfg.stream!r}")
    if cfg.workers is not None and (not isinstance(cfg.workers, int) or cfg.workers < 0):
        raise SSLBenchError(f"workers must be a whole number >= 0, not {cfg.workers!r}")
    _check_executor(cfg)
    cfg.fractions = sorted(set(cfg.fractions))
    cfg.labels_per_class = sorted(set(cfg.labels_per_class))
    cfg.labels = sorted(set(cfg.labels))
    if not cfg.budgets:
        raise SSLBenchError("no label budget: give --fractions, --labels-per-class or --labels")
    cfg.seeds = sorted(set(cfg.seeds))
    cfg.split_seeds = sorted(set(cfg.split_seeds))
    return cfg     # the preset's part (settings, empty axes) needs the plugins: presets.py


# the type of each field of a sweep that is not a grid axis (those are parsed as lists)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "preset": (str,), "device": (str,), "compile": (bool,), "stream": (str,),
    "out": (str,), "cache_dir": (str,), "data_dir": (str,), "download": (bool,),
    "dedup": (bool,), "executor": (str,), "ray_address": (str,), "slurm_partition": (str,),
    "slurm_cluster": (str,), "wait": (bool,), "workers": (int,), "cpus_per_job": (int,),
    "gpus_per_job": (int,), "timeout_min": (int,), "jobs": (int,), "checkpoint_every_min": (int, float)}


def _check_field_types(merged: dict[str, Any]) -> None:
    """Every value of a sweep file (or the API) of its field's type: ``dedup = "no"`` is a
    string, not false, and ``out = 5`` is not a folder. ``None`` means "not given"."""
    for key, kinds in _FIELD_TYPES.items():
        value = merged.get(key)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            names = " or ".join({bool: "true or false", str: "a string", int: "a whole number",
                                 float: "a number"}[k] for k in kinds)
            raise SSLBenchError(f"{key} must be {names}, not {value!r}")
    if merged.get("device") is not None and merged["device"] not in ("auto", "cpu", "cuda"):
        raise SSLBenchError(f"device must be auto, cpu or cuda, not {merged['device']!r}")


def resolve_settings(preset_settings: dict[str, Any], overrides: dict[str, Any],
                     moved: dict[str, tuple[str, str]] | None = None,
                     preset: str = "") -> dict[str, Any]:
    """Every setting: the defaults, the preset's values, then ``overrides``; keys and types
    of both are checked (an error in the preset's names it, ``preset``). ``moved`` maps
    settings of earlier versions to the plugin option that replaced them (kind,
    ``NAME.KEY``), for a one-line hint."""
    settings = copy.deepcopy(SETTING_DEFAULTS)
    try:
        settings.update(_checked_settings(preset_settings, None))
    except SSLBenchError as exc:
        raise SSLBenchError(f"preset {preset!r}: {exc}" if preset else str(exc)) from None
    settings.update(_checked_settings(overrides, moved))
    if not isinstance(settings["backbone"], str) or not settings["backbone"]:
        raise SSLBenchError("no backbone: the preset names none and neither does --backbone "
                            "or --set backbone=NAME")
    _check_ranges(settings)
    return settings


def _checked_settings(values: dict[str, Any], moved: dict[str, tuple[str, str]] | None
                      ) -> dict[str, Any]:
    """``values`` with every key a known setting and every value of its default's type."""
    out = {}
    for key, value in values.items():
        if key in (moved or {}):
            kind, target = moved[key]
            plugin, _, option = target.partition(".")
            raise SSLBenchError(f"setting {key} is now option {option!r} of the {plugin} "
                                f"{kind}: --opt {target}=VALUE (or [options.{plugin}] "
                                "in a sweep file)")
        if key not in SETTING_DEFAULTS:
            raise SSLBenchError(f"unknown setting {key!r}; settings: "
                                f"{', '.join(sorted(SETTING_DEFAULTS))}."
                                f"{did_you_mean(key, SETTING_DEFAULTS)}")
        out[key] = coerce_like(f"setting {key}", value, SETTING_DEFAULTS[key])
    return out


def _check_ranges(settings: dict[str, Any]) -> None:
    if not 8 <= settings["resolution"] <= 2048:
        raise SSLBenchError(f"resolution {settings['resolution']} is outside 8..2048 px")
    if not settings["pretrain_lr"] > 0:
        raise SSLBenchError(f"setting pretrain_lr must be > 0, got {settings['pretrain_lr']}")
    if not settings["weight_decay"] >= 0:
        raise SSLBenchError(f"setting weight_decay must be >= 0, got {settings['weight_decay']}")
    if not 0 < settings["val_fraction"] < 1:
        raise SSLBenchError("val_fraction must be in (0, 1)")
    if not 0 < settings["val_share"] < 1:
        raise SSLBenchError("val_share must be in (0, 1)")
    if settings["validation"] not in VALIDATION_MODES:
        raise SSLBenchError(f"setting validation must be one of {', '.join(VALIDATION_MODES)}, "
                            f"not {settings['validation']!r}")
    for key in ("pretrain_epochs", "pretext_holdout"):
        if settings[key] < 0:
            raise SSLBenchError(f"setting {key} must be >= 0, got {settings[key]}")
    for key in ("pretrain_batch_size",):
        if settings[key] < 1:
            raise SSLBenchError(f"setting {key} must be positive, got {settings[key]}")
    drops = settings["pretrain_lr_drops"]
    if not all(isinstance(d, (int, float)) and not isinstance(d, bool) and 0 < d < 1
               for d in drops) or list(drops) != sorted(drops):
        raise SSLBenchError(f"setting pretrain_lr_drops must be increasing shares in (0, 1), "
                            f"got {drops!r}")


def coerce_like(what: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (bool, int, float, list, str), or an
    :class:`SSLBenchError` naming ``what``. Used for preset settings and task options."""
    try:
        if isinstance(default, bool):
            # true or false, nothing else: "no" or 0 read as a flag would be a guess
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise ValueError(value)
        if isinstance(value, bool):          # True is not the number 1 here
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            number = float(value)
            if not math.isfinite(number):    # inf or nan: never a usable setting
                raise ValueError(value)
            return number
        if isinstance(default, dict):          # a table (a sweep file's, or a flag's)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        if isinstance(default, list):
            if not default:
                return list(value) if isinstance(value, (list, tuple)) else [value]
            items = value if isinstance(value, (list, tuple)) else parse_list(value, type(default[0]), what)
            return [coerce_like(what, v, default[0]) for v in items]
        if default is None:
            return value
        if not isinstance(value, (str, int, float)):   # a list or a table is no name
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError, OverflowError, SSLBenchError):
        raise SSLBenchError(f"{what}: {value!r} is not a valid "
                            f"{type(default).__name__}"
                            + (" (a finite number)" if isinstance(default, (int, float))
                               and not isinstance(default, bool) else "")) from None


def _check_executor(cfg: SweepConfig) -> None:
    """The executor's settings that are numbers of the sweep's own (the executor's options
    and the former flags that set them are checked when it is made,
    :mod:`sslbench._core.executors`)."""
    if cfg.executor is not None and (not isinstance(cfg.executor, str) or not cfg.executor):
        raise SSLBenchError(f"executor must be a name, not {cfg.executor!r}")
    if not isinstance(cfg.checkpoint_every_min, (int, float)) or cfg.checkpoint_every_min < 0:
        raise SSLBenchError(f"checkpoint_every_min must be a number >= 0, not "
                            f"{cfg.checkpoint_every_min!r}")


def _check_tables(source: dict[str, Any]) -> None:
    """``settings``, ``task_options`` and ``options`` (and each plugin's options) must be
    tables."""
    for key in ("settings", "task_options", "options", "slurm_options"):
        if key in source and not isinstance(source[key], dict):
            raise SSLBenchError(f"{key} must be a table of KEY = VALUE, not "
                                f"{type(source[key]).__name__} {source[key]!r}")
    for table in ("task_options", "options"):
        for name, options in (source.get(table) or {}).items():
            if not isinstance(options, dict):
                raise SSLBenchError(f"{table}.{name} must be a table of OPTION = VALUE")


def _deep_merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
