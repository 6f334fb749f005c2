"""Conformance checks for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

Each check exercises what sslbench's runner relies on and raises :class:`ConformanceError`
listing every failure in words that say what to change::

    from sslbench.testing import check_task
    check_task(MyTask)                      # in your plugin's test suite

The checks run on the CPU with small random images, a few seconds per call.
"""

from __future__ import annotations

import json
import re
from typing import Any

import torch

from .backbone import Backbone, BackboneSpec
from ._core.contracts import backbone_problem, dataset_problem
from .data import DatasetRequest, DatasetSpec, ImageData
from .errors import SSLBenchError
from .images import ImageFiles, ResidentImages, StreamedImages, decode_all
from .protocol import EvaluationProtocol
from ._core.seeding import make_generator
from .task import ConsistencyBatch, ConsistencyContext, PretextTask, ShortcutControl, TaskStep

__all__ = [
    'ConformanceError', 'check_plugin', 'check_task', 'check_backbone', 'check_dataset',
    'check_protocol', 'check_executor',
]

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class ConformanceError(AssertionError):
    """One or more checks failed; the message lists them, one per line."""


class _Report:
    def __init__(self, subject: str) -> None:
        self.subject, self.failures = subject, []

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.fail(message)
        return ok

    def finish(self) -> None:
        if self.failures:
            raise ConformanceError(f"{self.subject} does not conform:\n- "
                                   + "\n- ".join(self.failures))


def _json_ok(report: _Report, obj: Any, what: str) -> None:
    try:
        json.dumps(obj)
    except (TypeError, ValueError) as exc:
        report.fail(f"{what} must serialise to JSON (it goes into every record): {exc}")


def _preset_backbones(host) -> tuple[str, ...]:
    """The backbones the installed presets use (a task is checked on each): the kit checks
    what a sweep would run, and names no backbone itself."""
    return tuple(dict.fromkeys(c.obj.resolved_settings()["backbone"]
                               for c in host.registry("preset").values()))


def _backbones(names: tuple[str, ...] | None) -> list[tuple[str, Any]]:
    from ._core.plugins import PluginHost
    host = PluginHost.from_environment()
    return [(n, host.backbone(n)) for n in (names or _preset_backbones(host))]


def check_task(task: type[PretextTask] | PretextTask, *,
               backbones: tuple[str, ...] | None = None,
               resolutions: tuple[int, ...] = (32, 48), batch: int = 4) -> None:
    """Check a pretext task class (or instance) against what the runner relies on, on each
    of ``backbones`` (default: the backbones the sweep presets use) at each of
    ``resolutions``."""
    cls = task if isinstance(task, type) else type(task)
    r = _Report(f"task {getattr(cls, 'name', cls.__name__)!r}")
    r.check(isinstance(cls.name, str) and bool(NAME.match(cls.name or "")),
            "set the class attribute `name` to a word (letters, digits, - and _), the name "
            "users type after --tasks")
    r.check(bool(cls.description), "set `description`: one line shown by `sslbench list tasks`")
    r.check(isinstance(cls.defaults, dict), "`defaults` must be a dict of option -> default")
    r.check(cls.pretrains or cls.consistency,
            "set `pretrains = True` (a pretraining stage) or `consistency = True` (an extra "
            "loss during fine-tuning), or both")
    try:
        instance = task if isinstance(task, PretextTask) else cls()
    except Exception as exc:  # noqa: BLE001
        r.fail(f"the task must be constructible with its defaults: {type(exc).__name__}: {exc}")
        r.finish()
        return
    _json_ok(r, instance.config(), "config()")
    for bb_name, spec in _backbones(backbones):
        for res in resolutions:
            where = f"with backbone {bb_name} at {res} px"
            try:
                _check_task_once(r, instance, spec, res, batch, where)
            except Exception as exc:  # noqa: BLE001
                r.fail(f"{where}: raised {type(exc).__name__}: {exc}")
    r.finish()


def _step(task, backbone, head, pool, seed):
    gen = make_generator(seed, "conformance")
    x = pool.float() / 255
    extra = {"index": torch.arange(len(pool))} if task.uses_index else {}
    return task.pretext_loss(backbone, head, x, gen, **extra)


def _check_task_once(r: _Report, task: PretextTask, spec: BackboneSpec, res: int, batch: int,
                     where: str) -> None:
    torch.manual_seed(0)
    backbone = spec.build(res, spec.resolve(None, {}))
    images = torch.randint(0, 256, (batch * 2, 3, res, res), dtype=torch.uint8)
    pool = task.prepare(ResidentImages(images), make_generator(0, "prepare"))
    if isinstance(pool, (ResidentImages, StreamedImages)):
        pool = pool[torch.arange(min(batch, len(pool)))]
    if not r.check(isinstance(pool, torch.Tensor) and pool.dtype == torch.uint8 and pool.ndim == 4,
                   f"{where}: prepare() must return the images it was given, or a uint8 "
                   "(N, 3, H, W) tensor"):
        return
    pool = pool[:batch]
    if task.pretrains:
        torch.manual_seed(0)
        head = task.build_head(backbone)
        if not r.check(isinstance(head, torch.nn.Module),
                       f"{where}: build_head() must return an nn.Module for a pretraining task"):
            return
        state = {k: v.clone() for k, v in head.state_dict().items()}
        step = _step(task, backbone, head, pool, 0)
        if not r.check(isinstance(step, TaskStep),
                       f"{where}: pretext_loss() must return a sslbench.task.TaskStep"):
            return
        r.check(step.loss.ndim == 0 and bool(torch.isfinite(step.loss)),
                f"{where}: the loss must be a finite scalar tensor")
        r.check(step.loss.requires_grad, f"{where}: the loss must depend on the backbone's "
                "parameters (requires_grad); do not detach it")
        r.check(step.loss.device == pool.device,
                f"{where}: the loss must be on the device of the images it was given")
        if step.logits is not None or step.targets is not None:
            ok = step.logits is not None and step.targets is not None
            if r.check(ok, f"{where}: return both logits and targets, or neither"):
                t = step.targets
                r.check(t.dtype == torch.int64, f"{where}: targets must be int64 class indices "
                        f"(got {t.dtype})")
                r.check(step.logits.ndim == 2 and len(step.logits) == len(t),
                        f"{where}: logits must be (N, classes) with one row per target")
                r.check(bool((t >= 0).all() and (t < step.logits.shape[-1]).all()),
                        f"{where}: targets must lie in [0, {step.logits.shape[-1]})")
        step.loss.backward()
        grads = [p.grad for p in backbone.parameters() if p.grad is not None]
        r.check(bool(grads), f"{where}: the loss must send gradients into the backbone")
        # the same seed must give the same numbers
        head.load_state_dict(state)
        backbone.zero_grad()
        again = _step(task, backbone, head, pool, 0)
        r.check(torch.allclose(step.loss.detach(), again.loss.detach()),
                f"{where}: the same generator seed must give the same loss; draw all "
                "randomness from the `generator` argument")
        _check_control(r, task, backbone, head, pool, where)
    if task.consistency:
        classifier = torch.nn.Linear(backbone.feature_dim, 3)
        head = task.build_head(backbone)
        ctx = ConsistencyContext(backbone, head, classifier, step=1, total_steps=10,
                                 num_classes=3, generator=make_generator(0, "c"))
        loss = task.unlabeled_loss(ctx, pool.float() / 255)
        r.check(isinstance(loss, torch.Tensor) and loss.ndim == 0 and bool(torch.isfinite(loss)),
                f"{where}: unlabeled_loss() must return a finite scalar tensor")
        joined = task.consistency_batch(ctx, pool.float() / 255)
        if joined is not None and r.check(
                isinstance(joined, ConsistencyBatch),
                f"{where}: consistency_batch() must return a ConsistencyBatch or None"):
            ok = (joined.inputs.ndim == 4 and joined.inputs.shape[1:] == pool.shape[1:]
                  and joined.inputs.is_floating_point())
            if r.check(ok, f"{where}: ConsistencyBatch.inputs must be float images the size "
                       "of the labeled batch's (they are concatenated with it)"):
                value = joined.loss(backbone(joined.inputs))
                r.check(isinstance(value, torch.Tensor) and value.ndim == 0
                        and bool(torch.isfinite(value)),
                        f"{where}: ConsistencyBatch.loss must return a finite scalar tensor")


def _check_control(r: _Report, task: PretextTask, backbone, head, pool, where: str) -> None:
    """A task's shortcut control must be a variant whose pretext loss runs: on the trained
    head (``retrain=False``) or on a head of its own."""
    control = task.control()
    if control is None:
        return
    if not r.check(isinstance(control, ShortcutControl),
                   f"{where}: control() must return a sslbench.task.ShortcutControl or None"):
        return
    if not r.check(isinstance(control.task, PretextTask),
                   f"{where}: ShortcutControl.task must be a PretextTask (a variant of the "
                   "task without the cue)"):
        return
    own = control.task.build_head(backbone) if control.retrain else head
    step = _step(control.task, backbone, own, pool, 1)
    r.check(isinstance(step, TaskStep) and step.logits is not None,
            f"{where}: the control's pretext_loss() must return logits and targets (its "
            "held-out accuracy is what the control reports)")


def check_backbone(spec: BackboneSpec, *, resolutions: tuple[int, ...] = (32, 64)) -> None:
    """Check a backbone spec: a :class:`Backbone` with pooled features per stage."""
    r = _Report(f"backbone {spec.name!r}")
    r.check(bool(NAME.match(spec.name)), "the backbone's name must be a word")
    for res in resolutions:
        # what the runner checks before a sweep
        problem = backbone_problem(spec.name, lambda r: spec.build(r, spec.resolve(None, {})), res)
        if problem:
            r.fail(f"at {res} px: {problem}")
            continue
        try:
            b = spec.build(res, spec.resolve(None, {}))
        except Exception as exc:  # noqa: BLE001
            r.fail(f"create({res}) raised {type(exc).__name__}: {exc}")
            continue
        if not r.check(isinstance(b, Backbone),
                       f"create({res}) must return a sslbench.backbone.Backbone"):
            continue
        x = torch.rand(2, 3, res, res)
        stages = b.forward_stages(x)
        r.check([tuple(f.shape) for f in stages] == [(2, d) for d in b.stage_dims],
                f"at {res} px: forward_stages() must give (N, stage_dims[i]) per stage")
        r.check(tuple(b(x).shape) == (2, b.feature_dim),
                f"at {res} px: forward() must give (N, feature_dim)")
        r.check("input_mean" in b.state_dict(), "call Backbone.__init__ (it registers the "
                "input normalisation buffers)")
    r.finish()


def check_dataset(spec: DatasetSpec, request: DatasetRequest) -> ImageData:
    """Load a data set with ``request`` and check what the runner relies on."""
    r = _Report(f"data set {spec.name!r}")
    data = spec.load(request)
    res = request.resolution
    problem = dataset_problem(data, res)                          # what the runner checks
    if problem:
        r.fail(problem)
        r.finish()
    for split in ("train", "test"):
        images = getattr(data, f"{split}_images")
        labels = getattr(data, f"{split}_labels")
        r.check(images.dtype == torch.uint8 and tuple(images.shape[1:]) == (3, res, res),
                f"{split} images must be uint8 (N, 3, {res}, {res}) tensors or ImageFiles "
                "at the requested resolution")
        if isinstance(images, ImageFiles) and len(images):
            first = decode_all(images.subset([0]), workers=0)
            r.check(tuple(first.shape) == (1, 3, res, res),
                    f"{split} files must decode to (3, {res}, {res})")
        r.check(labels.dtype == torch.int64 and bool((labels >= 0).all())
                and bool((labels < data.num_classes).all()),
                f"{split} labels must be int64 in [0, {data.num_classes})")
    _json_ok(r, data.provenance, "provenance")
    r.finish()
    return data


def check_protocol(cls: type[EvaluationProtocol]) -> None:
    """Check a protocol class's declarations (its behaviour is exercised by a sweep)."""
    r = _Report(f"protocol {getattr(cls, 'name', cls.__name__)!r}")
    r.check(bool(NAME.match(cls.name or "")), "set `name`, the word users pass to --protocols")
    r.check(bool(cls.description), "set `description` for `sslbench list protocols`")
    r.check(cls.evaluate is not EvaluationProtocol.evaluate, "implement evaluate(ctx)")
    r.finish()


class _ProbeJob:
    """Stands in for a :class:`~sslbench.executor.UnitJob` in :func:`check_executor`: no
    sweep behind it, its call returns a fixed outcome and says it was called."""

    def __init__(self, index: int, out: str) -> None:
        from .executor import UnitOutcome
        self.unit = _ProbeUnit(f"probe{index}")
        self.out = out
        self.threads = None
        self.calls = 0
        self.outcome = UnitOutcome({f"probe{index}__cell": "ok"})

    def with_threads(self, threads: int | None) -> "_ProbeJob":
        self.threads = threads
        return self

    def __call__(self):
        self.calls += 1
        return self.outcome


class _ProbeUnit:
    def __init__(self, unit_id: str) -> None:
        self.id = unit_id
        self.cells = ()


def _in_process(cls: Any) -> bool:
    try:
        return bool(cls().in_process)
    except Exception:  # noqa: BLE001 - check_executor reports why it cannot be made
        return False


def check_executor(cls: Any, *, options: dict[str, Any] | None = None,
                   in_process_jobs: bool = True) -> None:
    """Check an executor class: its declarations, and that it hands back every unit it is
    given exactly once. With ``in_process_jobs`` (the default) three stand-in jobs are
    submitted, which only an executor that calls jobs in this process (or its threads) can
    run: an executor that sends them to other processes or machines is checked by a real
    sweep in its own tests (as sslbench tests ray and slurm)."""
    from .executor import Executor
    name = getattr(cls, "name", getattr(cls, "__name__", cls))
    r = _Report(f"executor {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        r.fail("must be a subclass of sslbench.executor.Executor")
        r.finish()
    r.check(bool(NAME.match(cls.name or "")), "set `name`, the word users pass to --executor")
    r.check(bool(cls.description), "set `description` for `sslbench list executors`")
    r.check(cls.submit is not Executor.submit, "implement submit(jobs, reporter)")
    r.check(cls.finished is not Executor.finished, "implement finished()")
    for flag, option in cls.former_flags.items():
        r.check(option in cls.defaults, f"former_flags maps {flag!r} to {option!r}, which is "
                                        "not one of its options (defaults)")
    r.finish()
    try:
        executor = cls(**(options or {}))
    except SSLBenchError as exc:
        r.fail(f"cannot be made with its defaults: {exc}")
        r.finish()
    if in_process_jobs:
        import tempfile

        from .progress import Reporter
        with tempfile.TemporaryDirectory() as out:
            jobs = [_ProbeJob(i, out) for i in range(3)]
            try:
                executor.start()
                executor.submit(jobs, Reporter())
                ends = list(executor.finished())
            except Exception as exc:  # noqa: BLE001 - reported as one problem
                r.fail(f"running three jobs raised {type(exc).__name__}: {exc}")
                ends = []
            finally:
                executor.close()
        units = sorted(end.unit.id for end in ends)
        r.check(units == [f"probe{i}" for i in range(3)] or bool(r.failures),
                f"finished() must yield each submitted unit once; got {units}")
        r.check(all(job.calls == 1 for job in jobs) or bool(r.failures),
                f"each job must be called once; calls: {[job.calls for job in jobs]}")
        r.check(all(end.outcome is job.outcome for end in ends for job in jobs
                    if job.unit is end.unit) or bool(r.failures),
                "a Finished must carry the outcome its job returned")
    r.finish()


def _check_format(report: _Report, fmt: Any) -> None:
    from .formats import ROLES
    report.check(callable(fmt.render), f"report format {fmt.name!r}: render must be callable")
    unknown = sorted(set(fmt.roles) - set(ROLES))
    report.check(not unknown, f"report format {fmt.name!r}: unknown roles {unknown} "
                              f"(roles: {', '.join(ROLES)})")


def _check_preset(report: _Report, preset: Any) -> None:
    """Its settings are sweep settings of the right types and name a backbone."""
    from ._core.config import resolve_settings
    try:
        resolve_settings({}, preset.settings)
    except SSLBenchError as exc:
        report.fail(f"preset {preset.name!r}: {exc}")
    for axis in ("datasets", "tasks", "protocols"):
        value = getattr(preset, axis)
        report.check(isinstance(value, tuple) and all(isinstance(v, str) for v in value),
                     f"preset {preset.name!r}: {axis} must be a tuple of names")


def _check_hook_names(r: _Report, plugin: object) -> None:
    """Every ``sslbench_*`` function of a plugin is a hook sslbench has, marked as one: a
    misspelt hook (``sslbench_task``) or an unmarked one contributes nothing, silently, in
    every run."""
    import difflib

    from . import hookspecs
    known = {n for n in dir(hookspecs) if n.startswith("sslbench_")}
    for attr in dir(plugin):
        if not attr.startswith("sslbench_") or not callable(getattr(plugin, attr, None)):
            continue
        if attr not in known:
            close = difflib.get_close_matches(attr, sorted(known), n=1)
            r.fail(f"{attr} is not an sslbench hook" + (f"; did you mean {close[0]}?"
                                                        if close else "")
                   + f" (the hooks: {', '.join(sorted(known))})")
        elif not hasattr(getattr(plugin, attr), "sslbench_impl"):
            r.fail(f"{attr} is not marked with @sslbench.hookimpl: sslbench never calls it")


def _check_clashes(r: _Report, host) -> None:
    """No contribution takes a name that another installed plugin gives already: which of
    two "rotation" tasks a run used would depend on the order plugins load in."""
    from ._core.plugins import KINDS, PluginHost
    installed = PluginHost.from_environment()
    ours = {getattr(obj, "__name__", id(obj)) for _, obj in host.pm.list_name_plugin()}

    def same(plugin: str) -> bool:          # the plugin under test, installed or not
        obj = installed.pm.get_plugin(plugin)
        return getattr(obj, "__name__", id(obj)) in ours
    for kind in KINDS:
        theirs = {name: c.plugin for name, c in installed.registry(kind).items()
                  if not same(c.plugin)}
        for name in host.registry(kind):
            if name in theirs:
                r.fail(f"{kind} {name!r} is already given by the installed plugin "
                       f"{installed.describe_plugin(theirs[name])}: choose another name")


def _check_option_ranges(r: _Report, what: str, obj: Any) -> None:
    """Every numeric option declares its range (:class:`sslbench.options.Range`), every
    range names an option, and every default and preset value is inside its range."""
    from .options import Range, numeric
    defaults = getattr(obj, "defaults", None) or {}
    ranges = getattr(obj, "ranges", None) or {}
    for key in sorted(set(ranges) - set(defaults)):
        r.fail(f"{what}: `ranges` names {key!r}, which is not an option (not in `defaults`)")
    for key, allowed in ranges.items():
        if not isinstance(allowed, Range):
            r.fail(f"{what}: the range of {key!r} must be an sslbench.options.Range")
    for key, value in defaults.items():
        if numeric(value) and key not in ranges:
            r.fail(f"{what}: numeric option {key!r} declares no range: add "
                   f"`ranges = {{{key!r}: Range(ge=..., le=...)}}` beside `defaults`")
    values = [("default", defaults)] + [(f"preset {p!r}", v) for p, v in
                                        (getattr(obj, "presets", None) or {}).items()]
    for label, table in values:
        for key, allowed in ranges.items():
            value = table.get(key)
            if key in table and isinstance(allowed, Range) and not all(
                    v in allowed for v in (value if isinstance(value, list) else [value])):
                r.fail(f"{what}: the {label} value of {key!r}, {value!r}, is outside its "
                       f"range {allowed}")


def check_plugin(plugin: Any, *, backbones: tuple[str, ...] | None = None,
                 resolutions: tuple[int, ...] = (32, 48),
                 dataset_request: DatasetRequest | None = None) -> None:
    """Check a whole plugin as sslbench will load it: what each of its hooks returns (types,
    names), then every contribution with the per-kind check above.

    ``plugin`` is a module, a module's name, or an installed distribution's name (whose
    ``sslbench`` entry points are all checked). Data sets are loaded only when a
    ``dataset_request`` is given (loading may need files or a download); report formats are
    checked for what they declare. Raises :class:`ConformanceError` listing every problem.
    """
    from importlib import import_module, metadata

    from ._core.plugins import PluginHost, PluginInfo

    host = PluginHost()
    if isinstance(plugin, str):
        wanted = plugin.replace("_", "-").lower()
        eps = [ep for ep in metadata.entry_points(group="sslbench")
               if getattr(ep, "dist", None) is not None
               and ep.dist.name.replace("_", "-").lower() == wanted]
        if eps:
            for ep in eps:
                host.register(ep.load(), PluginInfo(ep.name, ep.value, "entry point",
                                                    ep.dist.name, ep.dist.version))
        else:
            host.register(import_module(plugin), PluginInfo(plugin, plugin, "--plugin"))
        subject = plugin
    else:
        name = getattr(plugin, "__name__", type(plugin).__name__)
        host.register(plugin, PluginInfo(name, name, "--plugin"))
        subject = name
    r = _Report(f"plugin {subject!r}")
    host.registry("task")
    for info in host.failed:
        r.fail(info.error)
    for name in host.pm.list_name_plugin():
        _check_hook_names(r, name[1])
    r.finish()
    _check_clashes(r, host)
    for kind in ("task", "protocol", "backbone", "dataset", "executor"):
        for contribution in host.registry(kind).values():
            _check_option_ranges(r, f"{kind} {contribution.name!r}", contribution.obj)
    r.finish()
    checks = {
        "task": lambda obj: check_task(obj, backbones=backbones, resolutions=resolutions),
        "backbone": lambda obj: check_backbone(obj, resolutions=resolutions),
        "protocol": check_protocol,
        "dataset": lambda obj: (check_dataset(obj, dataset_request) if dataset_request
                                else None),
        "format": lambda obj: _check_format(r, obj),
        "preset": lambda obj: _check_preset(r, obj),
        # stand-in jobs run only where jobs are called in this process; an executor that
        # sends them elsewhere is checked by a sweep in its own tests
        "executor": lambda obj: check_executor(obj, in_process_jobs=_in_process(obj)),
    }
    for kind, check in checks.items():
        for contribution in host.registry(kind).values():
            try:
                check(contribution.obj)
            except ConformanceError as exc:
                r.fail(str(exc).replace("\n- ", "\n  - "))
    r.finish()
