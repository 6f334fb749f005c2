"""The plugin kit (sslbench.testing.check_plugin) catches the mistakes that otherwise cost a
plugin author silently: a misspelt or unmarked hook (it contributes nothing, in every run),
a name another installed plugin gives already, a numeric option without a range or with a
default outside it; and a module public in 0.4 still imports, with a warning."""

import types
import warnings

import pytest
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.task import PretextTask, TaskStep
from sslbench.testing import ConformanceError, check_plugin


def make_task(name="mistaketask", defaults=None, ranges=None):
    class T(PretextTask):
        description = "a test task"
        pretrains = True

        def build_head(self, backbone):
            return nn.Linear(backbone.feature_dim, 2)

        def pretext_loss(self, backbone, head, images, generator):
            logits = head(backbone(images))
            target = (images.mean((1, 2, 3)) > 0.5).long()
            return TaskStep(nn.functional.cross_entropy(logits, target), logits, target)
    T.name = name
    T.defaults = {"share": 0.5} if defaults is None else defaults
    T.ranges = {"share": Range(gt=0, lt=1)} if ranges is None else ranges
    return T


def plugin(**hooks):
    module = types.ModuleType(f"sslbench_mistake_{id(hooks)}")
    for name, fn in hooks.items():
        setattr(module, name, fn)
    return module


def check(module):
    check_plugin(module, backbones=("smallcnn",), resolutions=(16,))


def contributes(task):
    @sslbench.hookimpl
    def sslbench_tasks():
        return [task]
    return sslbench_tasks


def test_a_good_plugin_passes():              # the positive control of every case below
    check(plugin(sslbench_tasks=contributes(make_task())))


def test_a_misspelt_hook_is_named_with_the_right_one():
    with pytest.raises(ConformanceError, match="sslbench_task is not an sslbench hook; did "
                                               "you mean sslbench_tasks"):
        check(plugin(sslbench_task=contributes(make_task())))


def test_an_unmarked_hook_is_named():
    def sslbench_tasks():
        return [make_task()]
    with pytest.raises(ConformanceError, match="not marked with @sslbench.hookimpl"):
        check(plugin(sslbench_tasks=sslbench_tasks))


def test_a_name_an_installed_plugin_gives_is_refused():
    with pytest.raises(ConformanceError, match="task 'rotation' is already given by the "
                                               "installed plugin"):
        check(plugin(sslbench_tasks=contributes(make_task("rotation"))))


def test_numeric_options_declare_their_ranges():
    no_range = make_task(defaults={"share": 0.5, "steps": 3}, ranges={"share": Range(ge=0)})
    with pytest.raises(ConformanceError, match="numeric option 'steps' declares no range"):
        check(plugin(sslbench_tasks=contributes(no_range)))
    outside = make_task(ranges={"share": Range(ge=0.6)})
    with pytest.raises(ConformanceError, match="the default value of 'share', 0.5, is outside"):
        check(plugin(sslbench_tasks=contributes(outside)))
    unknown = make_task(ranges={"share": Range(ge=0), "shar": Range(ge=0)})
    with pytest.raises(ConformanceError, match="names 'shar', which is not an option"):
        check(plugin(sslbench_tasks=contributes(unknown)))


def test_the_built_in_plugins_pass_the_new_checks():
    import sslbench_plugins.protocols.finetune as finetune
    import sslbench_plugins.tasks.uda as uda
    for module in (finetune, uda):
        check(module)


def test_a_module_public_in_0_4_imports_with_a_deprecation_warning():
    import sys
    sys.modules.pop("sslbench.plugins", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from sslbench.plugins import PluginHost          # as a 0.4 test did
    from sslbench._core.plugins import PluginHost as private
    assert PluginHost is private
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert any("sslbench.plugins is private since sslbench 0.5" in m and "0.6" in m
               for m in messages), messages


def test_report_format_at_its_old_home_warns_and_is_the_public_one():
    import sslbench.leaderboard as leaderboard
    from sslbench.formats import ReportFormat
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = leaderboard.ReportFormat
    assert old is ReportFormat
    assert any(w.category is DeprecationWarning and "sslbench.formats.ReportFormat" in
               str(w.message) and "0.6" in str(w.message) for w in caught)
    assert "ReportFormat" not in leaderboard.__all__


def test_modules_renamed_in_0_5_are_found_under_their_0_4_names():
    import importlib
    import sys
    for old, new in (("fractions", "budgets"), ("door", "contracts")):
        sys.modules.pop(f"sslbench.{old}", None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(f"sslbench.{old}")
        assert module is importlib.import_module(f"sslbench._core.{new}")
        assert any(f"now sslbench._core.{new}" in str(w.message) for w in caught)
