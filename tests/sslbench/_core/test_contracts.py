"""Plugins checked at the door: a malformed plugin is one line naming it and its distribution;
it breaks neither ``sslbench list`` nor runs that do not use it; using it exits 2 before the
grid starts. The plugins are real installed distributions (a ``.dist-info`` with entry points,
written by the test) found by ``importlib.metadata`` like any third-party plugin."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from sslbench.testing import ConformanceError, check_plugin

HEADER = '''
import torch
from torch import nn
import sslbench
from sslbench.backbone import Backbone, BackboneSpec
from sslbench.data import DatasetSpec, ImageData
from sslbench_plugins.tasks.rotation import Rotation
from sslbench_plugins.backbones.smallcnn import SmallCNN


class Twisted(Rotation):
    name = "{name}"
'''

# plugin name -> (what the broken hook does, the task name it meant to give)
BROKEN_HOOKS = {
    "bareclass": "@sslbench.hookimpl\ndef sslbench_tasks():\n    return Twisted\n",
    "string": "@sslbench.hookimpl\ndef sslbench_tasks():\n    return 'string'\n",
    "instance": "@sslbench.hookimpl\ndef sslbench_tasks():\n    return [Twisted()]\n",
    "bbclass": "@sslbench.hookimpl\ndef sslbench_backbones():\n    return [SmallCNN]\n"
               "@sslbench.hookimpl\ndef sslbench_tasks():\n    return [Twisted]\n",
}

BROKEN_PARTS = '''
class NoStages(Backbone):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def stage_maps(self, x):
        return [self.conv(x)]


class Flat(SmallCNN):
    def stage_maps(self, x):
        return [m.mean(dim=(2, 3)) for m in super().stage_maps(x)]


def float_images(request):
    x = torch.rand(12, 3, request.resolution, request.resolution)
    y = torch.arange(12) % 2
    return ImageData("floaty", ["a", "b"], x, y, x, y)


def wrong_size(request):
    x = torch.zeros(12, 3, 48, 48, dtype=torch.uint8)
    y = torch.arange(12) % 2
    return ImageData("wrongsize", ["a", "b"], x, y, x, y)


@sslbench.hookimpl
def sslbench_backbones():
    return [BackboneSpec("nostages", lambda r: NoStages()), BackboneSpec("flat", lambda r: Flat())]


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("floaty", float_images), DatasetSpec("wrongsize", wrong_size)]
'''


def install(site: Path, dist: str, entry: str, source: str) -> None:
    """A distribution ``dist`` 1.0 whose package holds ``source``, entry point ``entry``."""
    package = dist.replace("-", "_")
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(source)
    info = site / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[sslbench]\n{entry} = {package}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("sslbench_door_"):
            del sys.modules[name]


@pytest.fixture
def broken_site(site):
    for plugin, hook in BROKEN_HOOKS.items():
        install(site, f"sslbench-door-{plugin}", plugin,
                HEADER.format(name=f"twisted{plugin}") + hook)
    return site


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_malformed_plugins_are_named_and_list_still_works(cli, broken_site):
    status, out, err = cli("list", "tasks")
    assert status == 0 and "rotation" in out
    warnings = err.splitlines()
    assert len(warnings) == len(BROKEN_HOOKS), err
    for plugin in BROKEN_HOOKS:
        line = next(w for w in warnings if f"'{plugin}'" in w)
        assert f"distribution sslbench-door-{plugin} 1.0" in line and "is not used" in line
    assert "sslbench_tasks() returned the class Twisted; it must return a list" in err
    assert "returned a str ('string')" in err
    assert "holding a Twisted; it must hold PretextTask subclasses" in err
    assert "sslbench_backbones() returned a list holding the class SmallCNN" in err
    assert "twistedbbclass" not in out     # nothing of a broken plugin is used


def test_malformed_plugins_do_not_break_runs_that_do_not_use_them(fast_run, broken_site,
                                                                   image_folder):
    status, out, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--tasks",
                                "rotation", "--fractions", "1.0", "--protocols", "linear")
    assert status == 0, err
    assert "rotation" in out


@pytest.mark.parametrize("plugin", sorted(BROKEN_HOOKS))
def test_using_a_malformed_plugin_is_one_line_naming_it(cli, broken_site, plugin):
    status, _, err = cli("run", "--tasks", f"twisted{plugin}", "--fractions", "1.0")
    assert status == 2
    error = one_line("\n".join(line for line in err.splitlines() if "warning" not in line))
    assert f"unknown task 'twisted{plugin}'" in error
    assert f"'{plugin}' (distribution sslbench-door-{plugin} 1.0)" in error


@pytest.mark.parametrize("args, expected", [
    (("--backbone", "nostages"),
     "backbone 'nostages' from plugin 'parts' (distribution sslbench-door-parts 1.0): has no "
     "stage_dims"),
    (("--backbone", "flat"),
     "backbone 'flat' from plugin 'parts' (distribution sslbench-door-parts 1.0): stage_maps() "
     "must give 4-D maps (N, C, H, W); stage 0 is (2, 24)"),
    (("--dataset", "floaty"),
     "data set 'floaty' from plugin 'parts' (distribution sslbench-door-parts 1.0): train "
     "images must be uint8 (N, 3, H, W) (got torch.float32"),
    (("--dataset", "wrongsize"),
     "data set 'wrongsize' from plugin 'parts' (distribution sslbench-door-parts 1.0): gave "
     "train images of 48x48 px when asked for 16x16"),
])
def test_malformed_backbones_and_data_sets_are_one_line_before_the_grid(
        fast_run, site, image_folder, tmp_path, args, expected):
    install(site, "sslbench-door-parts", "parts", HEADER.format(name="unused") + BROKEN_PARTS)
    defaults = {"--backbone": "smallcnn", "--dataset": f"imagefolder:{image_folder}"}
    defaults[args[0]] = args[1]
    flags = [x for pair in defaults.items() for x in pair]
    status, _, err = fast_run(*flags, "--tasks", "rotation", "--fractions", "1.0",
                              "--protocols", "linear")
    assert status == 2
    assert expected in one_line(err), err
    assert not (tmp_path / "results" / "records").exists()   # nothing ran


def test_check_plugin_reports_what_the_hooks_return(broken_site):
    for plugin in BROKEN_HOOKS:
        module = importlib.import_module(f"sslbench_door_{plugin}")
        with pytest.raises(ConformanceError, match="it must"):
            check_plugin(module)


def test_check_plugin_passes_a_good_distribution_and_runs_the_per_class_checks(site):
    good = HEADER.format(name="goodtwist") + textwrap.dedent('''
        @sslbench.hookimpl
        def sslbench_tasks():
            return [Twisted]
        ''')
    install(site, "sslbench-door-good", "good", good)
    check_plugin("sslbench-door-good", backbones=("smallcnn",), resolutions=(16,))
    install(site, "sslbench-door-parts", "parts", HEADER.format(name="unused") + BROKEN_PARTS)
    with pytest.raises(ConformanceError) as err:
        check_plugin("sslbench-door-parts")
    assert "backbone 'nostages'" in str(err.value) and "backbone 'flat'" in str(err.value)


@pytest.mark.parametrize("kind", ["task", "backbone", "dataset", "protocol", "executor"])
def test_every_scaffold_passes_check_plugin_in_its_own_test(cli, tmp_path, monkeypatch, kind):
    status, _, err = cli("new-plugin", f"door_{kind}", "--kind", kind, "--dir", str(tmp_path))
    assert status == 0, err
    root = tmp_path / f"sslbench-door_{kind}"
    test_source = (root / "tests" / "test_plugin.py").read_text()
    assert "check_plugin(" in test_source
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(test_source, "test_plugin.py", "exec"), namespace)
    namespace["test_conforms"]()                     # raises ConformanceError if it does not
    for name, test in namespace.items():             # an executor's: every unit handed back
        if name.startswith("test_") and name != "test_conforms":
            test()
    sys.modules.pop(f"sslbench_door_{kind}.plugin", None)
    sys.modules.pop(f"sslbench_door_{kind}", None)


def test_the_suite_ignores_plugins_the_environment_holds(cli, monkeypatch):
    """A broken distribution installed outside the tests' own folders (as a user's deleted
    scaffold would be) changes no expected output: conftest's ``only_our_plugins``."""
    import shutil
    import tempfile
    elsewhere = Path(tempfile.mkdtemp(prefix="sslbench-env-"))
    try:
        install(elsewhere, "sslbench-door-stray", "stray",
                "raise ImportError('the package was deleted')\n")
        monkeypatch.syspath_prepend(str(elsewhere))
        importlib.invalidate_caches()
        status, _, err = cli("list", "tasks")
        assert status == 0 and err == ""
    finally:
        shutil.rmtree(elsewhere)


def test_a_broken_plugin_the_tests_install_is_seen(cli, monkeypatch, tmp_path):
    """The control of the test above: the same broken distribution installed in the tests'
    own folder is loaded, and its failure is reported, so the silence above is the filter's
    doing, not a broken install."""
    install(tmp_path, "sslbench-door-stray", "stray",
            "raise ImportError('the package was deleted')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    status, _, err = cli("list", "tasks")
    assert status == 0 and "stray" in err and "the package was deleted" in err


def test_the_tutorial_works_on_the_task_scaffold(cli, tmp_path, monkeypatch):
    """docs/plugins.md's tutorial: generate, then `sslbench show NAME` draws its preview."""
    status, _, err = cli("new-plugin", "door_show", "--kind", "task", "--dir", str(tmp_path))
    assert status == 0, err
    plugin = tmp_path / "sslbench-door_show" / "sslbench_door_show" / "plugin.py"
    out = tmp_path / "preview.png"
    status, _, err = cli("show", "door_show", "--plugin", str(plugin), "--resolution", "16",
                         "--count", "2", "-o", str(out))
    assert status == 0, err
    assert out.stat().st_size > 1000


def test_a_reference_with_a_string_accuracy_is_refused_at_the_door(fast_run, tmp_path):
    """Accepted, it would go into every record of the row and break every report of them
    for good; refused, the plugin is named in one line before anything runs."""
    from conftest import LOCAL_TASK
    plugin = tmp_path / "badref.py"
    plugin.write_text(LOCAL_TASK.replace(
        'defaults = {"levels": 3}',
        'defaults = {"levels": 3}\n    references = [{"paper": "X 2099", "accuracy": "high"}]'))
    status, _, err = fast_run("--plugin", str(plugin), "--tasks", "brightness")
    assert status == 2 and "reference 'X 2099' has accuracy 'high'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "records").exists()
