"""Options: how every plugin kind declares its settings, the same way.

A task, a protocol, a backbone or a data set declares ``defaults`` (every option with its
default value, whose type is the option's type) and may declare ``presets`` (per sweep
preset, the defaults that differ: the probe's regularisation grid is longer at paper
scale). Users set options with one flag, ``--opt NAME.KEY=VALUE`` (``--task-opt`` is the
same flag for tasks), or in a sweep file's ``[options.NAME]`` table. Values are converted to
the default's type (``--opt linear.l2=[0.01,0.1]`` gives a list of floats; ``true``/``false``
for booleans); an unknown option or a value of the wrong type is one line naming the plugin.
The resolved options go into every record.

Every numeric option declares its range beside its default, in ``ranges`` (``{"crop":
Range(ge=0, lt=0.5)}``; for a list option, each element's): a value outside it, and any
infinite or NaN number, is one line before a sweep starts, ``sslbench list`` shows it, and
the plugin kit (:mod:`sslbench.testing`) checks that every numeric option has one.

Tasks and protocols are classes: they subclass :class:`Configurable` (through
:class:`~sslbench.task.PretextTask` and :class:`~sslbench.protocol.EvaluationProtocol`) and
read ``self.options``. Backbones and data sets are spec objects: their ``defaults`` and
``presets`` are fields of :class:`~sslbench.backbone.BackboneSpec` and
:class:`~sslbench.data.DatasetSpec`, and the resolved options reach ``create(resolution,
**options)`` and ``DatasetRequest.options``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ._core.config import coerce_like
from .errors import SSLBenchError, did_you_mean

__all__ = ["Configurable", "Range", "resolve_options", "numeric"]


@dataclass(frozen=True)
class Range:
    """The values a numeric option may take: ``Range(ge=0, le=1)`` is [0, 1], ``Range(gt=0)``
    any positive number (the bounds' names as in pydantic and annotated-types). Every value
    must be finite besides."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def __str__(self) -> str:
        low = (f"[{self.ge:g}" if self.ge is not None else
               f"({self.gt:g}" if self.gt is not None else None)
        high = (f"{self.le:g}]" if self.le is not None else
                f"{self.lt:g})" if self.lt is not None else None)
        if low and high:
            return f"{low}, {high}"
        if low:
            return f"{'>=' if self.ge is not None else '>'} {low[1:]}"
        if high:
            return f"{'<=' if self.le is not None else '<'} {high[:-1]}"
        return "any finite number"

    def describe(self) -> str:
        """As a rule in a sentence: ``in [0, 1]``, ``>= 1`` (errors, ``sslbench list``)."""
        text = str(self)
        return f"in {text}" if text[:1] in "[(" else text


def numeric(value: Any) -> bool:
    """Whether an option's default is a number or a list of numbers (it needs a range)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return number(value) or (isinstance(value, list) and bool(value)
                             and all(number(v) for v in value))


def check_ranges(kind: str, name: str, values: Mapping[str, Any],
                 ranges: Mapping[str, Range]) -> None:
    """Every value (each element of a list) inside its declared range: else one line,
    ``task option rotation.crop must be in [0, 0.5), got -3``."""
    for key, allowed in ranges.items():
        value = values.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item not in allowed:
                where = " (each element)" if isinstance(value, list) else ""
                raise SSLBenchError(f"{kind} option {name}.{key} must be "
                                    f"{allowed.describe()}{where}, got {value!r}")


def resolve_options(kind: str, name: str, defaults: Mapping[str, Any],
                    given: Mapping[str, Any], preset_values: Mapping[str, Any] | None = None,
                    ranges: Mapping[str, Range] | None = None) -> dict[str, Any]:
    """``defaults``, then ``preset_values``, then ``given``; every key checked against the
    defaults, every value converted to the default's type (finite, for numbers) and checked
    against its range. Errors name ``kind name``."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "(none)"
        raise SSLBenchError(f"{kind} {name!r} has no option {unknown[0]!r}; its options: {known}."
                            f"{did_you_mean(unknown[0], defaults)}")
    merged = {**defaults, **(preset_values or {})}
    merged.update({key: coerce_like(f"{kind} option {name}.{key}", value, defaults[key])
                   for key, value in given.items()})
    check_ranges(kind, name, merged, ranges or {})
    return merged


class Configurable:
    """A plugin class with options: ``defaults``, per-preset ``presets``, ``self.options``.

    Construct it with the user's options (``cls(**options)``), or with
    :meth:`for_preset` to start from a preset's values.
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # the range of every numeric option (:class:`Range`), checked with the values
    ranges: ClassVar[dict[str, Range]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # sweep settings of earlier sslbench versions that are now options of this plugin
    # (``{"finetune_epochs": "epochs"}``): ``--set finetune_epochs=...`` then says where it went
    former_settings: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        # a value of the wrong type fails here, as one line, not hours later in a cell
        self.options: dict[str, Any] = resolve_options(self.kind, self.name, self.defaults,
                                                       options, ranges=self.ranges)
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
