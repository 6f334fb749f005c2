"""Choosing the executor a sweep's configuration names (:mod:`sslbench.executor`).

Executors are plugins (``sslbench_executors``): the core names none of them. It looks up
``--executor NAME`` among the installed ones, resolves that executor's options from
``--opt NAME.KEY=VALUE`` (a sweep file's ``[options.NAME]``) and from the flags of earlier
versions that the executor declares (``former_flags``: ``--jobs``, ``--ray-address``,
``--cpus-per-job``, ``--slurm-partition``... are options of the built-in executors), and
refuses a flag the chosen executor does not take, in one line.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import SSLBenchError
from ..executor import Executor
from .config import SweepConfig
from .plugins import PluginHost

__all__ = ["make_executor", "FORMER_FLAGS"]

# SweepConfig fields that set an executor's option (sslbench 0.4's flags): field -> flag
FORMER_FLAGS = {"jobs": "--jobs", "ray_address": "--ray-address",
                "cpus_per_job": "--cpus-per-job", "gpus_per_job": "--gpus-per-job",
                "slurm_partition": "--slurm-partition", "slurm_cluster": "--slurm-cluster",
                "timeout_min": "--timeout-min", "slurm_options": "--slurm-opt",
                "wait": "--wait"}


def given_flags(config: SweepConfig) -> dict[str, Any]:
    """The former flags a configuration sets (those that differ from their default)."""
    defaults = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING
                         else f.default) for f in dataclasses.fields(SweepConfig)}
    return {key: getattr(config, key) for key in FORMER_FLAGS
            if getattr(config, key) != defaults[key]}


def default_executor(host: PluginHost) -> type[Executor]:
    """The executor of a sweep that names none: the one installed executor that says
    ``default = True`` (the built-in local one)."""
    defaults = [c for c in host.registry("executor").values() if c.obj.default]
    if len(defaults) != 1:
        who = " and ".join(f"{c.name!r} (plugin {c.plugin!r})" for c in defaults)
        raise SSLBenchError(f"executors {who} all say they are the default; uninstall one"
                            if defaults else "no installed executor is the default "
                            "(sslbench list executors); name one with --executor")
    return defaults[0].obj


def make_executor(config: SweepConfig, host: PluginHost) -> Executor:
    """The executor ``config.executor`` names, with its options resolved (a bad one is one
    line); the caller then calls ``check(out)``."""
    cls = host.get("executor", config.executor) if config.executor else default_executor(host)
    options = dict(config.options.get(cls.name, {}))
    for key, value in given_flags(config).items():
        option = cls.former_flags.get(key)
        if option is None:
            takes = sorted({FORMER_FLAGS[k] for k in cls.former_flags})
            raise SSLBenchError(
                f"{FORMER_FLAGS[key]} is not an option of executor {cls.name!r}"
                + (f" (it takes {', '.join(takes)}" if takes else " (it takes none of "
                   "the executor flags")
                + "; its options: `sslbench list executors`)")
        options.setdefault(option, value)     # --opt NAME.KEY wins over the old flag
    return cls.for_preset(config.preset, **options)
