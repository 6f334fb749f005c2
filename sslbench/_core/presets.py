"""Which preset a sweep uses, and what the preset fills in.

The command line and a sweep file give what the user chose (:func:`~sslbench._core.config.build_config`);
the preset, a plugin's contribution (:class:`sslbench.preset.Preset`), gives the rest: every
sweep setting the user did not set, the backbone, and the data sets, tasks and protocols of
a sweep that names none. Resolving is idempotent, so a worker process (Ray, Slurm) that
receives a resolved configuration resolves it again to the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SSLBenchError
from .config import SweepConfig, resolve_settings

if TYPE_CHECKING:  # pragma: no cover
    from ..preset import Preset
    from .plugins import PluginHost


def default_preset(host: PluginHost) -> Preset:
    """The one installed preset that says ``default=True``."""
    presets = host.registry("preset")
    defaults = [c for c in presets.values() if c.obj.default]
    if len(defaults) > 1:
        raise SSLBenchError("presets " + " and ".join(
            f"{c.name!r} (plugin {c.plugin!r})" for c in defaults)
            + " both say they are the default; name one with --preset")
    if not defaults:
        known = ", ".join(presets) or "(none installed)"
        raise SSLBenchError(f"no preset says it is the default; name one with --preset "
                            f"({known})")
    return defaults[0].obj


def chosen_preset(host: PluginHost, name: str | None) -> Preset:
    """The preset named ``name`` (one line if none is installed), or the default one."""
    return host.get("preset", name) if name else default_preset(host)


def former_settings(host: PluginHost) -> dict[str, tuple[str, str]]:
    """Settings of earlier versions that are now plugin options (a plugin's
    ``former_settings``): setting -> (kind, ``NAME.KEY``)."""
    moved: dict[str, tuple[str, str]] = {}
    for kind in ("task", "protocol"):
        for name, contribution in host.registry(kind).items():
            for setting, option in getattr(contribution.obj, "former_settings", {}).items():
                moved[setting] = (kind, f"{name}.{option}")
    return moved


def apply_preset(config: SweepConfig, host: PluginHost) -> SweepConfig:
    """Fill ``config`` in from its preset (the default one when it names none): every
    setting, the backbone, empty grid axes. Unknown presets, settings and values are one
    line; so is an axis left empty by both the user and the preset."""
    preset = chosen_preset(host, config.preset)
    config.preset = preset.name
    config.preset_settings = preset.resolved_settings()
    config.settings = resolve_settings(preset.settings, config.settings, former_settings(host),
                                       preset.name)
    if not config.backbones:
        config.backbones = [config.settings["backbone"]]
    for axis in ("datasets", "tasks", "protocols"):
        if not getattr(config, axis):
            value = list(getattr(preset, axis))
            if not value:
                raise SSLBenchError(f"no {axis}: name them (--{axis}) or use a preset that "
                                    f"has some (preset {preset.name!r} has none)")
            setattr(config, axis, value)
    return config
