"""Finding plugins and looking up what they contribute.

:class:`PluginHost` wraps a pluggy ``PluginManager``: it loads the ``sslbench`` entry-point
group (where the built-in plugins are registered too) and any ``--plugin`` module or file,
remembers which plugin each task, backbone, data set, protocol and report format came from,
and turns the user's names into objects with helpful errors.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from .. import hookspecs
from .config import format_value
from .contracts import HOOKS, returned_problem
from ..errors import SSLBenchError, unknown_name
from .names import SAFE_NAME
from .identity import defining_module, source_hash

ENTRY_POINT_GROUP = "sslbench"
# what a contributed name may look like: it becomes part of file names (checkpoints, records)
NAME = SAFE_NAME


# kind -> the hook that contributes it
KINDS = {kind: hook for kind, (hook, _) in HOOKS.items()}


@dataclass
class PluginInfo:
    """One plugin: where it came from and whether it loaded."""

    name: str
    module: str
    source: str                  # "entry point" or "--plugin"
    distribution: str | None = None
    version: str | None = None
    error: str | None = None


@dataclass
class Contribution:
    kind: str
    name: str
    obj: Any
    plugin: str


class PluginHost:
    """The loaded plugins and their contributions."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("sslbench")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._registries: dict[str, dict[str, Contribution]] = {}
        self._resolved: dict[str, Contribution] = {}   # backbones found by a resolve hook
        self._identities: dict[tuple[str, str], dict[str, Any]] = {}
        self.tracker_problems: list[str] = []   # malformed sslbench_trackers() results

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_environment(cls, local_plugins: list[str] = (), *,
                         entry_points: bool = True) -> "PluginHost":
        host = cls()
        if entry_points:
            host.load_entry_points()
        for spec in local_plugins:
            host.load_local(spec)
        return host

    def load_entry_points(self) -> None:
        """Load every plugin of the ``sslbench`` entry-point group. A plugin that fails to
        import is remembered with its error; the others load."""
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(name=ep.name, module=ep.value, source="entry point",
                              distribution=dist.name if dist else None,
                              version=dist.version if dist else None)
            if any(p.name == ep.name and p.error is None for p in self.plugins):
                continue  # the same distribution seen twice on sys.path
            try:
                self.register(ep.load(), info)
            except Exception as exc:  # noqa: BLE001 - any import error is reported, not raised
                info.error = f"{type(exc).__name__}: {exc}"
                self.plugins.append(info)

    def load_local(self, spec: str) -> None:
        """Load ``--plugin MODULE_OR_FILE``. Asked for explicitly, so failure is an error."""
        path = Path(spec)
        try:
            if spec.endswith(".py") or path.exists():
                if not path.is_file():
                    raise SSLBenchError(f"--plugin {spec}: no such file")
                mod_name = f"sslbench_local_{path.stem}_{abs(hash(str(path.resolve()))):x}"
                module_spec = importlib.util.spec_from_file_location(mod_name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[mod_name] = module
                module_spec.loader.exec_module(module)
                name = path.stem
            else:
                module = importlib.import_module(spec)
                name = spec
        except SSLBenchError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SSLBenchError(f"cannot load plugin {spec!r}: {type(exc).__name__}: {exc}") from None
        self.register(module, PluginInfo(name=name, module=spec, source="--plugin"))

    def register(self, plugin: object, info: PluginInfo) -> None:
        if self.pm.is_registered(plugin):
            return
        if self.pm.has_plugin(info.name):
            raise SSLBenchError(f"two plugins are named {info.name!r}: "
                                f"{self._info(info.name).module} and {info.module}")
        self.pm.register(plugin, name=info.name)
        self.plugins.append(info)
        self._registries.clear()

    def _info(self, name: str) -> PluginInfo:
        return next(p for p in self.plugins if p.name == name)

    @property
    def hook(self):
        return self.pm.hook

    @property
    def failed(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def notify(self, hook: str, warn, **kwargs: Any) -> None:
        """Call a lifecycle hook's every implementation. One that raises is reported through
        ``warn`` (one line naming the plugin, once per plugin and hook) and the others, and the
        sweep, go on: an observer (a logger, a notifier) must not cost a night's results."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as exc:  # noqa: BLE001
                warn(f"plugin {impl.plugin_name!r} failed in {hook}: "
                     f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ contributions
    def registry(self, kind: str) -> dict[str, Contribution]:
        """Every contribution of one kind, by name. Two plugins contributing one name is an
        error naming both."""
        if not self._registries:
            self._collect()
        return self._registries[kind]

    def _collect(self) -> None:
        """Call every contribution hook of every plugin once and check what it returns
        (:mod:`sslbench._core.contracts`). A plugin whose hook raises, returns something that is not a
        list of the right objects, or names one unsafely is marked failed with one line
        saying why, and none of its contributions is used: the other plugins, and runs that
        do not need it, work on. Using a name only it could give is then a one-line error
        that names it (:meth:`_unknown`)."""
        returned: dict[str, list[tuple[str, list]]] = {}
        for kind, (hook, _) in HOOKS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():   # registration order
                info = self._info(impl.plugin_name)
                if info.error:
                    continue
                try:
                    got = impl.function()
                except Exception as exc:  # noqa: BLE001 - a broken plugin is one line
                    info.error = f"{hook}() raised {type(exc).__name__}: {exc}"
                    continue
                problem = returned_problem(kind, got)
                if problem is None:
                    for obj in got or []:
                        name = getattr(obj, "name", None)
                        if not isinstance(name, str) or not NAME.match(name) or ".." in name:
                            problem = (f"contributes a {kind} named {name!r}; names are "
                                       "letters, digits, '_', '.', '+' and '-'")
                            break
                if problem:
                    info.error = problem
                    continue
                returned.setdefault(kind, []).append((impl.plugin_name, list(got or [])))
        for kind in HOOKS:
            found: dict[str, Contribution] = {}
            for plugin, objs in returned.get(kind, []):
                if self._info(plugin).error:
                    continue       # failed in another of its hooks
                for obj in objs:
                    if obj.name in found:
                        raise SSLBenchError(
                            f"{kind} {obj.name!r} is contributed by two plugins: "
                            f"{found[obj.name].plugin!r} and {plugin!r}")
                    found[obj.name] = Contribution(kind, obj.name, obj, plugin)
            self._registries[kind] = found

    def describe_plugin(self, name: str) -> str:
        """``'NAME' (distribution DIST VERSION)``, or ``'NAME' (FILE)`` for ``--plugin``."""
        info = self._info(name)
        where = (f"distribution {info.distribution} {info.version}" if info.distribution
                 else info.module)
        return f"{name!r} ({where})"

    def _unknown(self, kind: str, name: str) -> SSLBenchError:
        err = unknown_name(kind, name, self.registry(kind))
        if self.failed:
            broken = "; ".join(f"{self.describe_plugin(p.name)}: {p.error}"
                               for p in self.failed)
            err = SSLBenchError(f"{err} Plugins not used because they are broken, which may provide it: {broken}")
        return err

    def get(self, kind: str, name: str) -> Any:
        reg = self.registry(kind)
        if name not in reg:
            raise self._unknown(kind, name)
        return reg[name].obj

    def find(self, kind: str, name: str) -> Any:
        """The contribution of that kind and name, or ``None`` when none is installed (or its
        plugin is broken): what reports ask about records' plugins, which may be gone."""
        try:
            return self.get(kind, name)
        except Exception:  # noqa: BLE001 - not installed, or broken: no answer
            return None

    def task(self, name: str):
        return self.get("task", name)

    def protocol(self, name: str):
        return self.get("protocol", name)

    def report_format(self, name: str):
        return self.get("format", name)

    def format_for(self, role: str):
        """The report format that plays ``role`` (:data:`sslbench.formats.ROLES`): exactly
        one installed format may claim it."""
        claims = [c for c in self.registry("format").values() if role in c.obj.roles]
        if len(claims) != 1:
            who = " and ".join(f"{c.name!r} (plugin {c.plugin!r})" for c in claims)
            raise SSLBenchError(f"report formats {who} all claim the role {role!r}; uninstall "
                                "one" if claims else f"no installed report format plays the "
                                f"role {role!r} (sslbench list formats)")
        return claims[0].obj

    def trackers(self) -> dict:
        """Every :class:`~sslbench.tracking.TrackerSpec` that plugins offer, by name (a
        plugin whose hook fails or returns something else is warned about and skipped). Two
        plugins offering one name is an error naming both, as for every other kind."""
        from ..tracking import TrackerSpec
        found: dict = {}
        offered_by: dict[str, str] = {}
        for impl in self.pm.hook.sslbench_trackers.get_hookimpls():
            try:
                specs = impl.function()
            except Exception as exc:  # noqa: BLE001 - one plugin's failure, not the sweep's
                self.tracker_problems.append(f"plugin {self.describe_plugin(impl.plugin_name)}:"
                                             f" sslbench_trackers() raised {exc!r}")
                continue
            for spec in specs if isinstance(specs, list) else [specs]:
                if not isinstance(spec, TrackerSpec):
                    self.tracker_problems.append(
                        f"plugin {self.describe_plugin(impl.plugin_name)}: sslbench_trackers() "
                        f"must return a list of TrackerSpec, not {type(spec).__name__}")
                    continue
                if spec.name in offered_by and offered_by[spec.name] != impl.plugin_name:
                    raise SSLBenchError(
                        f"tracker {spec.name!r} is contributed by two plugins: "
                        f"{self.describe_plugin(offered_by[spec.name])} and "
                        f"{self.describe_plugin(impl.plugin_name)}")
                offered_by[spec.name] = impl.plugin_name
                found[spec.name] = spec
        return found

    def backbone(self, name: str):
        """A listed backbone, else the first plugin that resolves the name (any timm model)."""
        reg = self.registry("backbone")
        if name in reg:
            return reg[name].obj
        if name in self._resolved:
            return self._resolved[name].obj
        for impl in self.pm.hook.sslbench_resolve_backbone.get_hookimpls():
            spec = impl.function(name=name)
            if spec is not None:
                problem = returned_problem("backbone", [spec])
                if problem:
                    raise SSLBenchError(
                        f"backbone {name!r} from plugin {self.describe_plugin(impl.plugin_name)}"
                        f": sslbench_resolve_backbone() {problem.split('() ', 1)[1]}")
                self._resolved[name] = Contribution("backbone", name, spec, impl.plugin_name)
                return spec
        raise self._unknown("backbone", name)

    # ------------------------------------------------------------------ code identity
    def identity(self, kind: str, name: str) -> dict[str, Any]:
        """What code a contribution is: the plugin that gave it, that plugin's distribution
        and version, and a hash of its source (:mod:`sslbench._core.identity`). It enters every
        cache key and cell hash the contribution affects, and every record."""
        base = name.partition(":")[0] if kind == "dataset" else name
        if (kind, base) in self._identities:
            return self._identities[(kind, base)]
        if kind == "backbone":
            self.backbone(base)
        c = self.registry(kind).get(base) or (self._resolved.get(base)
                                              if kind == "backbone" else None)
        if c is None:
            raise self._unknown(kind, base)
        info = self._info(c.plugin)
        module = getattr(self.pm.get_plugin(c.plugin), "__name__", None)
        found = {"name": base, "plugin": c.plugin, "distribution": info.distribution,
                 "version": info.version,
                 "source": source_hash(module, defining_module(c.obj),
                                       plugins={p.module.split(".")[0] for p in self.plugins
                                                if p.module})}
        self._identities[(kind, base)] = found
        return found

    def dataset(self, name: str):
        """``(spec, argument)`` for ``NAME`` or ``NAME:ARGUMENT``."""
        base, sep, argument = name.partition(":")
        reg = self.registry("dataset")
        if base not in reg:
            raise self._unknown("dataset", base)
        spec = reg[base].obj
        if spec.takes_argument and not argument:
            raise SSLBenchError(f"data set {base!r} needs an argument: {base}:PATH")
        if not spec.takes_argument and sep:
            raise SSLBenchError(f"data set {base!r} takes no argument (got {name!r})")
        return spec, (argument or None)

    def describe(self, kind: str) -> list[tuple[str, str, str, str]]:
        """(name, description, options, plugin) rows for ``sslbench list``; options as
        ``key=default`` (set with ``--opt NAME.KEY=VALUE``)."""
        rows = []
        for name, c in sorted(self.registry(kind).items()):
            desc = getattr(c.obj, "description", "") or ""
            defaults = getattr(c.obj, "defaults", None) or {}
            ranges = getattr(c.obj, "ranges", None) or {}
            options = ", ".join(f"{k}={format_value(v)}"
                                + (f" ({ranges[k].describe()})" if k in ranges else "")
                                for k, v in defaults.items())
            if kind == "dataset" and c.obj.takes_argument:
                name = f"{name}:PATH"
            if kind == "preset":
                options = ", ".join(f"{k}={format_value(v)}" for k, v in c.obj.settings.items())
                grid = "; ".join(f"{axis} {','.join(getattr(c.obj, axis))}"
                                 for axis in ("datasets", "tasks", "protocols")
                                 if getattr(c.obj, axis))
                options += f"; when none are named: {grid}" if grid else ""
                desc += " (the default)" if c.obj.default else ""
            if kind == "executor" and c.obj.default:
                desc += " (the default)"
            rows.append((name, desc, options, c.plugin))
        return rows

