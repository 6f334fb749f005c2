"""``sslbench export``: a pretrained backbone taken out of the cache, for use elsewhere.

A finished sweep's checkpoints sit in the cache under hashed names. Export writes one as
``NAME.safetensors`` (tensors only: loading it runs no code) beside ``NAME.json``, which says
what it is: the backbone and its options, the resolution it was trained at, the input
normalisation, the task and settings that produced it, and the record it came from.

Two ways to load it:

* ``sslbench.load_backbone("NAME.safetensors")``: the same :class:`~sslbench.backbone.Backbone`
  the sweep used (the backbone's plugin rebuilds it), taking float images in [0, 1] and
  normalising them itself, with ``forward_stages`` for every stage's pooled features;
* for a timm backbone, plain timm: the file holds timm's own key names (no ``net.`` prefix,
  no sslbench buffers), so ``timm.create_model(name, pretrained=True, num_classes=0,
  pretrained_cfg_overlay=dict(file=PATH))`` loads it, and the JSON's ``input_mean`` and
  ``input_std`` say how to normalise. A backbone trained at 64 px or less had its stem
  adapted for small images (a 3x3 stride-1 first convolution, no max-pool): its JSON says
  so under ``timm.stem``, and timm's standard model must be given that stem before
  ``load_state_dict`` (the JSON holds the lines; docs/export.md shows them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..errors import SSLBenchError, unknown_name
from .atomic import atomic_write_bytes, atomic_write_json
from .checkpoints import CheckpointStore, state_mismatch
from ..record import Record
from .records import load_records, read_record_file

FORMAT = "sslbench-export/1"
BUFFERS = ("input_mean", "input_std")      # sslbench's normalisation, not timm's
TIMM_STEM_LINES = ("model.conv1 = torch.nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, "
                   "bias=False)", "model.maxpool = torch.nn.Identity()")


def adapt_timm_stem(model: torch.nn.Module) -> None:
    """What :data:`TIMM_STEM_LINES` say, done to a timm model."""
    model.conv1 = torch.nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()


def find_record(source: str | Path, task: str | None = None, seed: int | None = None,
                dataset: str | None = None, backbone: str | None = None,
                warn=None) -> Record:
    """The record whose checkpoint to export: ``source`` is a record file, or a results
    folder narrowed down by task, seed, data set and backbone to one checkpoint. ``warn``
    is told of every file of the folder that is not a record (it is skipped)."""
    source = Path(source)
    if source.is_file():
        record, problem = read_record_file(source)
        if record is None:
            raise SSLBenchError(f"{str(source)!r} is not a result record: {problem}")
        chosen = [record]
    elif source.is_dir():
        records = load_records(source, warn)
        if not records:
            raise SSLBenchError(f"no result records in {str(source)!r}")
        for kind, wanted, key in (("task", task, "task"), ("data set", dataset, "dataset"),
                                  ("backbone", backbone, "backbone")):
            present = {r[key] for r in records}
            if wanted is not None and wanted not in present:
                # the same answer as `sslbench run` gives a misspelt name
                raise unknown_name(kind, wanted, present)
        chosen = [r for r in records
                  if (task is None or r["task"] == task) and (seed is None or r["seed"] == seed)
                  and (dataset is None or r["dataset"] == dataset)
                  and (backbone is None or r["backbone"] == backbone)]
        if not chosen:
            raise SSLBenchError(
                f"no record in {str(source)!r} for " + ", ".join(
                    f"{k} {v}" for k, v in (("task", task), ("seed", seed), ("dataset", dataset),
                                            ("backbone", backbone)) if v is not None))
    else:
        raise SSLBenchError(f"{str(source)!r} is neither a record file nor a results folder")
    pretrained = [r for r in chosen if (r.get("pretraining") or {}).get("checkpoint")]
    if not pretrained:
        tasks = sorted({r["task"] for r in chosen})
        raise SSLBenchError(f"no pretrained checkpoint among the records of {', '.join(tasks)}"
                            " (scratch and consistency-only rows pretrain nothing)")
    checkpoints = sorted({r["pretraining"]["checkpoint"] for r in pretrained})
    if len(checkpoints) > 1:
        raise SSLBenchError(
            f"{len(checkpoints)} checkpoints match ({', '.join(checkpoints[:4])}"
            f"{', ...' if len(checkpoints) > 4 else ''}): give --task, --seed, --dataset or "
            "--backbone to choose one")
    return ([r for r in pretrained if r["status"] == "ok"] or pretrained)[0]


def describe(record: Record, backbone: torch.nn.Module) -> dict[str, Any]:
    """The JSON written beside the weights."""
    options = record.get("options") or {}
    meta: dict[str, Any] = {
        "format": FORMAT, "sslbench": __version__,
        "backbone": record["backbone"], "backbone_options": options.get("backbone") or {},
        "resolution": (record.get("settings") or {}).get("resolution"),
        "input": "float RGB images in [0, 1], (N, 3, H, W), normalised by input_mean and "
                 "input_std (sslbench.load_backbone does this itself)",
        "input_mean": backbone.input_mean.flatten().tolist(),
        "input_std": backbone.input_std.flatten().tolist(),
        "stage_dims": list(backbone.stage_dims),
        "task": record["task"], "task_options": (options.get("tasks") or {}),
        "task_plan": record.get("task_plan"), "dataset": record["dataset"],
        "seed": record["seed"], "split_seed": record.get("split_seed", 0),
        "settings": record.get("settings"), "plugins": record.get("plugins"),
        "checkpoint": record["pretraining"]["checkpoint"],
        "pretraining": {k: v for k, v in record["pretraining"].items()
                        if k in ("seconds", "schedule", "heldout", "control", "n_images")},
        "record": record["cell_id"],
    }
    timm_name = getattr(backbone, "model_name", None)
    if timm_name is not None and hasattr(backbone, "net"):
        stem = bool(getattr(backbone, "stem_adapted", False))
        meta["timm"] = {
            "model": timm_name,
            "keys": "timm's own (the file loads into timm.create_model(model, num_classes=0))",
            "stem": ("adapted for small images: conv1 is 3x3 with stride 1 and there is no "
                     "max-pool; give timm's model that stem before load_state_dict:"
                     if stem else "timm's standard stem"),
            "stem_lines": list(TIMM_STEM_LINES) if stem else [],
            "load": (f"model = timm.create_model({timm_name!r}, num_classes=0); "
                     + "; ".join(TIMM_STEM_LINES) + "; model.load_state_dict("
                     "safetensors.torch.load_file(PATH))" if stem else
                     f"timm.create_model({timm_name!r}, pretrained=True, num_classes=0, "
                     "pretrained_cfg_overlay=dict(file=PATH))")}
    return meta


def _key_candidates(key: str) -> list[str]:
    """A features_only model names a nested stage "stages_0" where timm's model says
    "stages.0": the key as it is, then with each underscore in turn read as a dot."""
    return [key] + [key.replace("_", ".", i + 1) for i in range(key.count("_"))]


def timm_state(backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights of a timm backbone under the key names of timm's classifier-free model
    (``timm.create_model(name, num_classes=0)``): checked against that model, so a key
    that would not load there is an error now rather than for the user."""
    import timm
    state = {k.removeprefix("net."): v for k, v in backbone.state_dict().items()
             if k not in BUFFERS}
    reference = timm.create_model(backbone.model_name, pretrained=False, num_classes=0)
    if getattr(backbone, "stem_adapted", False):
        adapt_timm_stem(reference)
    expected = reference.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = next((c for c in _key_candidates(key) if c in expected), None)
        if match is None or expected[match].shape != value.shape:
            raise SSLBenchError(f"cannot map {key!r} of {backbone.model_name} to timm's key "
                                "names; export it for sslbench.load_backbone with --keys sslbench")
        renamed[match] = value
    missing = [k for k in expected if k not in renamed and not k.endswith("num_batches_tracked")]
    if missing:
        raise SSLBenchError(f"{backbone.model_name}: the export lacks {len(missing)} of timm's "
                            f"weights ({', '.join(missing[:3])}); use --keys sslbench")
    return renamed


def _ours(meta_path: Path, weights: Path) -> str | None:
    """Why export must not write ``weights`` and ``meta_path``, or None: it replaces only a
    pair it wrote itself (an export's JSON beside it), never a record or another file."""
    for path in (meta_path, weights):
        if path.is_symlink() or (path.exists() and not path.is_file()):
            return f"{str(path)!r} is not a plain file"
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return f"{str(meta_path)!r} exists and is not an sslbench export"
    elif weights.exists():
        return f"{str(weights)!r} exists and has no export description beside it"
    return None


def export_backbone(backbone: torch.nn.Module, meta: dict[str, Any], out: Path,
                    keys: str = "auto") -> tuple[Path, Path]:
    """Write ``out`` (``.safetensors``) and its JSON; ``keys``: ``timm`` (timm's names, for
    a timm backbone), ``sslbench`` (the backbone's own state dict) or ``auto``.

    The JSON holds the SHA-256 of the weights file and is written second, so that a kill
    between the two writes leaves a pair that :func:`load_backbone` refuses (new weights,
    old description), never one it would load as something it is not. An existing file is
    replaced only when it is an earlier export (a record or any other file is refused)."""
    import hashlib

    from safetensors.torch import save
    out = Path(out)
    if out.suffix != ".safetensors":
        out = out.with_suffix(".safetensors")
    meta_path = out.with_suffix(".json")
    problem = _ours(meta_path, out)
    if problem:
        raise SSLBenchError(f"will not overwrite: {problem}; choose another -o")
    use_timm = "timm" in meta and keys in ("auto", "timm")
    if keys == "timm" and "timm" not in meta:
        raise SSLBenchError(f"backbone {meta['backbone']!r} is not a timm model: --keys timm "
                            "does not apply")
    state = timm_state(backbone) if use_timm else dict(backbone.state_dict())
    meta = {**meta, "keys": "timm" if use_timm else "sslbench"}
    if not use_timm:
        meta.pop("timm", None)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    data = save(tensors, metadata={"format": FORMAT})
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(out, data)
    atomic_write_json(meta_path, meta)
    return out, meta_path


def export_checkpoint(record: Record, cache_dir: Path, out: Path,
                      keys: str = "auto", warn=None) -> tuple[Path, Path]:
    """Export the checkpoint behind ``record`` from ``cache_dir``: found by its id in the
    cache's own folder (never a path the record gives), checked by its checksum and by the
    shapes of the backbone the record names."""
    from .plugins import PluginHost
    ckpt = record["pretraining"]["checkpoint"]
    backbone = build_backbone(PluginHost.from_environment(), record["backbone"],
                              (record.get("settings") or {}).get("resolution"),
                              (record.get("options") or {}).get("backbone") or {})
    loaded = CheckpointStore(cache_dir, warn or (lambda m: None)).load(
        ckpt, backbone.state_dict())
    if loaded is None:
        raise SSLBenchError(f"checkpoint {ckpt} is not in {str(Path(cache_dir) / 'checkpoints')!r}"
                            " or is not usable (another --cache-dir? rerunning the sweep "
                            "recomputes it)")
    state, _ = loaded
    backbone.load_state_dict(state)
    return export_backbone(backbone, describe(record, backbone), out, keys)


def build_backbone(host, name: str, resolution: Any, options: Any):
    """The backbone a record or an export names, built: its resolution and options are
    data from a file, checked here (one line, not a traceback, when they are not usable)."""
    if resolution is None:
        raise SSLBenchError("the record does not say the resolution it was trained at")
    if not isinstance(resolution, int) or isinstance(resolution, bool) \
            or not 8 <= resolution <= 2048:
        raise SSLBenchError(f"resolution {resolution!r} is not a whole number of pixels in "
                            "8..2048")
    if not isinstance(options, dict):
        raise SSLBenchError(f"backbone options {options!r} are not a table")
    spec = host.backbone(name)
    resolved = spec.resolve(None, options)
    try:
        return spec.build(resolution, resolved)
    except SSLBenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - options from a file that the backbone refuses
        raise SSLBenchError(f"backbone {name!r} cannot be built with options {resolved!r} at "
                            f"{resolution} px: {type(exc).__name__}: {exc}") from None


def load_backbone(path: str | Path) -> torch.nn.Module:
    """The backbone of an export (:func:`sslbench.load_backbone`), in eval mode. The weights
    must match the SHA-256 in the JSON beside them (a pair left mismatched by a killed
    export, or a damaged file, is refused)."""
    import hashlib

    from safetensors.torch import load as load_bytes

    from .plugins import PluginHost
    path = Path(path)
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise SSLBenchError(f"cannot read {str(meta_path)!r}, the description of "
                            f"{str(path)!r}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SSLBenchError(f"{str(meta_path)!r} is not an sslbench export ({FORMAT})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SSLBenchError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
        raise SSLBenchError(f"{str(path)!r} does not match its description {str(meta_path)!r} "
                            "(its SHA-256 differs: a damaged file, or a pair from two exports)")
    if not isinstance(meta.get("backbone"), str):
        raise SSLBenchError(f"{str(meta_path)!r} names no backbone")
    backbone = build_backbone(PluginHost.from_environment(), meta["backbone"],
                              meta.get("resolution"), meta.get("backbone_options") or {})
    try:
        state = load_bytes(data)
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to know
        raise SSLBenchError(f"cannot read {str(path)!r}: {exc}") from None
    if meta.get("keys") == "timm":
        state = _from_timm(backbone, state, meta)
    problem = state_mismatch(state, backbone.state_dict())
    if problem:
        raise SSLBenchError(f"{str(path)!r} does not fit backbone {meta['backbone']!r}: {problem}")
    backbone.load_state_dict(state)
    return backbone.eval()


def _from_timm(backbone: torch.nn.Module, state: dict[str, torch.Tensor],
               meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """timm's key names back to the backbone's, with the normalisation from the JSON."""
    own = backbone.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key in own:
        if key in BUFFERS:
            continue
        match = next((c for c in _key_candidates(key.removeprefix("net.")) if c in state),
                     None)
        if match is None:
            raise SSLBenchError(f"the export has no weight for {key!r}")
        out[key] = state[match]
    out["input_mean"] = torch.tensor(meta["input_mean"]).reshape(1, 3, 1, 1)
    out["input_std"] = torch.tensor(meta["input_std"]).reshape(1, 3, 1, 1)
    return out
