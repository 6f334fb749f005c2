"""Options: how every plugin kind declares its settings, the same way.

A task, a protocol, a backbone or a data set declares ``defaults`` (every option with its
default value, whose type is the option's type) and may declare ``presets`` (per sweep
preset, the defaults that differ: the probe's regularisation grid is longer at paper
scale). Users set options with one flag, ``--opt NAME.KEY=VALUE`` (``--task-opt`` is the
same flag for tasks), or in a sweep file's ``[options.NAME]`` table. Values are converted to
the default's type (``--opt linear.l2=[0.01,0.1]`` gives a list of floats; ``true``/``false``
for booleans); an unknown option or a value of the wrong type is one line naming the plugin.
The resolved options go into every record.

Tasks and protocols are classes: they subclass :class:`Configurable` (through
:class:`~sslbench.task.PretextTask` and :class:`~sslbench.protocol.EvaluationProtocol`) and
read ``self.options``. Backbones and data sets are spec objects: their ``defaults`` and
``presets`` are fields of :class:`~sslbench.backbone.BackboneSpec` and
:class:`~sslbench.data.DatasetSpec`, and the resolved options reach ``create(resolution,
**options)`` and ``DatasetRequest.options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ._core.config import coerce_like
from .errors import SSLBenchError

__all__ = ["Configurable", "resolve_options"]


def resolve_options(kind: str, name: str, defaults: Mapping[str, Any],
                    given: Mapping[str, Any], preset_values: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """``defaults``, then ``preset_values``, then ``given``; every key checked against the
    defaults and every value converted to the default's type. Errors name ``kind name``."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "(none)"
        raise SSLBenchError(f"{kind} {name!r} has no option {unknown[0]!r}; its options: {known}")
    merged = {**defaults, **(preset_values or {})}
    merged.update({key: coerce_like(f"{kind} option {name}.{key}", value, defaults[key])
                   for key, value in given.items()})
    return merged


class Configurable:
    """A plugin class with options: ``defaults``, per-preset ``presets``, ``self.options``.

    Construct it with the user's options (``cls(**options)``), or with
    :meth:`for_preset` to start from a preset's values.
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # sweep settings of earlier sslbench versions that are now options of this plugin
    # (``{"finetune_epochs": "epochs"}``): ``--set finetune_epochs=...`` then says where it went
    former_settings: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        # a value of the wrong type fails here, as one line, not hours later in a cell
        self.options: dict[str, Any] = resolve_options(self.kind, self.name, self.defaults,
                                                       options)
        self.check_options()

    def check_options(self) -> None:
        """Refuse values out of range with :meth:`require` (called on construction, so a
        bad value is one line before a sweep starts). The default checks nothing."""

    def require(self, key: str, ok: bool, rule: str) -> None:
        """One line, ``protocol option linear.max_iter must be >= 1, got 0``, unless ``ok``."""
        if not ok:
            raise SSLBenchError(f"{self.kind} option {self.name}.{key} must be {rule}, "
                                f"got {self.options[key]!r}")

    @classmethod
    def for_preset(cls, preset: str | None, **options: Any):
        """An instance with ``preset``'s values (``presets[preset]``) under the user's."""
        return cls(**{**cls.presets.get(preset or "", {}), **options})

    def config(self) -> dict[str, Any]:
        """What a result record stores about this plugin: its name and resolved options."""
        return {"name": self.name, "options": dict(self.options)}
