"""What each plugin contribution must be, checked at the door rather than deep in a sweep.

Three moments, one set of rules:

* when plugins are loaded (:class:`~sslbench._core.plugins.PluginHost`): what a contribution hook
  returns must be a list of the right kind of object with a safe name; a plugin that breaks
  this is listed as failed, with one line naming it, and the others work on;
* before a sweep's grid starts (:class:`~sslbench._core.runner.Sweep`): each backbone is built at
  the run's resolution and run on two images, so a missing ``stage_dims`` or 2-D stage maps
  are one line naming the plugin instead of an ``AttributeError`` in the middle of a night;
* when a data set is loaded: uint8 images at the requested resolution, int64 labels.

:func:`sslbench.testing.check_plugin` runs the same checks (and then the deeper per-class
ones) in a plugin author's own test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One kind of plugin contribution: everything the host, the command line, the scaffold
    and the conformance kit need to know about it, in one place."""

    name: str          # "task"
    hook: str          # the contribution hook that returns them
    wanted: str        # what that hook's list must hold, in words
    plural: str        # ``sslbench list PLURAL``
    label: str         # in messages: "data set"
    options: bool      # declares options (``--opt NAME.KEY=VALUE``)
    scaffold: bool     # ``sslbench new-plugin --kind NAME`` writes one


KINDS = {k.name: k for k in (
    Kind("task", "sslbench_tasks", "PretextTask subclasses (classes, not instances)", "tasks",
         "task", True, True),
    Kind("backbone", "sslbench_backbones", "BackboneSpec objects", "backbones", "backbone",
         True, True),
    Kind("dataset", "sslbench_datasets", "DatasetSpec objects", "datasets", "data set",
         True, True),
    Kind("protocol", "sslbench_protocols",
         "EvaluationProtocol subclasses (classes, not instances)", "protocols", "protocol",
         True, True),
    Kind("format", "sslbench_report_formats", "ReportFormat objects", "formats",
         "report format", False, False),
    Kind("preset", "sslbench_presets", "Preset objects", "presets", "preset", False, False),
    Kind("executor", "sslbench_executors", "Executor subclasses (classes, not instances)",
         "executors", "executor", True, True),
)}
HOOKS = {name: (k.hook, k.wanted) for name, k in KINDS.items()}   # kind -> (hook, wanted)


def _base(kind: str) -> type:
    """The class a contribution of ``kind`` must be (or subclass), imported when needed."""
    if kind == "task":
        from ..task import PretextTask
        return PretextTask
    if kind == "backbone":
        from ..backbone import BackboneSpec
        return BackboneSpec
    if kind == "dataset":
        from ..data import DatasetSpec
        return DatasetSpec
    if kind == "protocol":
        from ..protocol import EvaluationProtocol
        return EvaluationProtocol
    if kind == "preset":
        from ..preset import Preset
        return Preset
    if kind == "executor":
        from ..executor import Executor
        return Executor
    from ..formats import ReportFormat
    return ReportFormat


def _what(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    return f"a {type(obj).__name__} ({obj!r:.40})" if isinstance(obj, str) else \
        f"a {type(obj).__name__}"


def returned_problem(kind: str, returned: Any) -> str | None:
    """Why what a contribution hook returned is not a list of ``kind`` contributions, or
    ``None`` when it is (an empty list, or ``None``, contributes nothing)."""
    hook, wanted = HOOKS[kind]
    if returned is None:
        return None
    if not isinstance(returned, (list, tuple)):
        return f"{hook}() returned {_what(returned)}; it must return a list of {wanted}"
    base = _base(kind)
    takes_classes = kind in ("task", "protocol", "executor")
    for obj in returned:
        ok = (isinstance(obj, type) and issubclass(obj, base)) if takes_classes \
            else isinstance(obj, base)
        if not ok:
            return f"{hook}() returned a list holding {_what(obj)}; it must hold {wanted}"
        if kind == "task":
            problem = references_problem(obj)
            if problem:
                return f"task {getattr(obj, 'name', obj.__name__)!r}: {problem}"
    return None


def references_problem(task: Any) -> str | None:
    """Why a task's published ``references`` cannot go into records, or None (the records'
    own rule, :func:`sslbench._core.record_checks.references_problem`: accepted here, a string
    accuracy would be taken by every sweep and break every report of it)."""
    from .record_checks import references_problem as problem
    return problem(getattr(task, "references", []))


def backbone_problem(name: str, create, resolution: int) -> str | None:
    """Build backbone ``name`` with ``create(resolution)`` and run two images through it;
    the first thing the runner would trip over, or ``None``."""
    import torch

    from ..backbone import Backbone
    try:
        with torch.random.fork_rng(devices=[]):   # the check draws no number a run would
            backbone = create(resolution)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        return f"create({resolution}) raised {type(exc).__name__}: {exc}"
    if not isinstance(backbone, Backbone):
        return (f"create({resolution}) returned {_what(backbone)}, not a "
                "sslbench.backbone.Backbone")
    dims = getattr(backbone, "stage_dims", None)
    if not (isinstance(dims, (list, tuple)) and dims
            and all(isinstance(d, int) and d > 0 for d in dims)):
        return ("has no stage_dims (a non-empty list of each stage's channels); set it in "
                f"__init__ (got {dims!r})")
    if "input_mean" not in backbone.state_dict():
        return "does not call Backbone.__init__ (it registers the input normalisation)"
    side = max(resolution, getattr(backbone, "min_input_size", 8))
    try:
        with torch.no_grad():
            maps = backbone.eval().stage_maps(torch.zeros(2, 3, side, side))
    except Exception as exc:  # noqa: BLE001
        return f"stage_maps() on (2, 3, {side}, {side}) raised {type(exc).__name__}: {exc}"
    if not isinstance(maps, (list, tuple)):
        return f"stage_maps() must return a list of feature maps; got {_what(maps)}"
    shapes = [tuple(m.shape) if isinstance(m, torch.Tensor) else None for m in maps]
    if len(shapes) != len(dims):
        return f"stage_maps() gave {len(shapes)} maps for {len(dims)} stage_dims"
    for i, (shape, dim) in enumerate(zip(shapes, dims)):
        if shape is None or len(shape) != 4:
            return (f"stage_maps() must give 4-D maps (N, C, H, W); stage {i} is "
                    f"{'not a tensor' if shape is None else shape}")
        if shape[0] != 2 or shape[1] != dim:
            return (f"stage {i}'s map is {shape} for 2 images; stage_dims[{i}] = {dim} "
                    "says (2, {dim}, H, W)".replace("{dim}", str(dim)))
    return None


def dataset_problem(data: Any, resolution: int) -> str | None:
    """Why a loaded data set cannot be used at ``resolution``, or ``None``."""
    import torch

    from ..data import ImageData
    if not isinstance(data, ImageData):
        return f"load() returned {_what(data)}, not a sslbench.data.ImageData"
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        side = tuple(images.shape[-2:])
        if side != (resolution, resolution):
            return (f"gave {split} images of {side[0]}x{side[1]} px when asked for "
                    f"{resolution}x{resolution} (DatasetRequest.resolution)")
        if not (isinstance(labels, torch.Tensor) and labels.dtype == torch.int64
                and labels.ndim == 1):
            return f"{split} labels must be an int64 (N,) tensor"
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= data.num_classes):
            return f"{split} labels must lie in [0, {data.num_classes}) (one per class name)"
    return None
