"""Presets: named starting points for a sweep, contributed by plugins.

A preset says what a sweep does when the user names nothing else: the values of the sweep
settings (``docs/settings.md``: resolution, pretraining epochs, the backbone, ...) and the
grid's axes (data sets, tasks, protocols) a sweep that names none of them runs. sslbench's
own ``quick`` (a laptop CPU in minutes) and ``standard`` (the papers' scale, a GPU) are
contributed by its built-in plugins, through the same hook a third party uses::

    @sslbench.hookimpl
    def sslbench_presets():
        return [Preset("tiny-gpu", "ResNet-18 at 64 px, 30 epochs",
                       settings={"backbone": "resnet18", "resolution": 64,
                                 "pretrain_epochs": 30})]

and then ``sslbench run --preset tiny-gpu``. Settings a preset leaves out keep sslbench's
defaults (:data:`SETTING_DEFAULTS`); a preset must name a backbone. Plugins may also declare
per-preset values of their own options (``presets`` of a task, protocol, backbone or data
set, :mod:`sslbench.options`), keyed by the preset's name.

Exactly one installed preset says ``default=True``: the preset of a sweep that names none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._core.config import SETTING_DEFAULTS, SETTING_HELP

__all__ = ["Preset", "SETTING_DEFAULTS", "SETTING_HELP"]


@dataclass(frozen=True)
class Preset:
    """A named set of sweep settings and default grid axes (see the module docstring).

    ``settings`` holds the sweep settings that differ from :data:`SETTING_DEFAULTS`, and
    must include ``backbone``. ``datasets``, ``tasks`` and ``protocols`` are what a sweep
    runs when its command or sweep file names none (empty: the user must name them).
    """

    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    default: bool = False

    def resolved_settings(self) -> dict[str, Any]:
        """Every sweep setting: sslbench's defaults under this preset's values."""
        return {**SETTING_DEFAULTS, **self.settings}
