"""Caches and records that know the code: a task's checkpoint and cells are reused only while
the source that computes them is the one that produced them (not its version number, not the
code of other contributions).

The plugin is a real installed distribution (a ``.dist-info`` with its entry point, written
by the test), found by sslbench through ``importlib.metadata`` as any third-party plugin is.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import pytest

TASK_SOURCE = '''
from sslbench_plugins.tasks.rotation import Rotation
import sslbench


class Edited(Rotation):
    name = "edited"
    description = "rotation under another name, for the code-identity test"
    SCALE = {scale}

    def pretext_loss(self, backbone, head, images, generator, **kw):
        step = super().pretext_loss(backbone, head, images, generator, **kw)
        step.loss = step.loss * self.SCALE
        return step


@sslbench.hookimpl
def sslbench_tasks():
    return [Edited]
'''


def install(site: Path, version: str, scale: float) -> None:
    """Write package ``sslbench_edited`` and its dist-info (version ``version``) into ``site``."""
    for old in site.glob("sslbench_edited-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    pkg = site / "sslbench_edited"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(TASK_SOURCE.format(scale=scale))
    info = site / f"sslbench_edited-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sslbench-edited\n"
                                   f"Version: {version}\n")
    (info / "entry_points.txt").write_text("[sslbench]\nedited = sslbench_edited\n")
    sys.modules.pop("sslbench_edited", None)
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("sslbench_edited", None)


def record(out: Path, protocol: str = "linear") -> dict:
    path = out / "records" / f"imgs__smallcnn__edited__{protocol}__f1__s0.json"
    return json.loads(path.read_text())


def test_editing_or_bumping_a_task_retrains_it_and_reruns_its_cells(fast_run, image_folder,
                                                                     site, tmp_path):
    args = ("--dataset", f"imagefolder:{image_folder}", "--tasks", "edited",
            "--fractions", "1.0", "--protocols", "linear")
    out = tmp_path / "results"
    install(site, "1.0", scale=1.0)
    assert fast_run(*args)[0] == 0
    first = record(out)
    assert first["pretraining"]["cached"] is False
    identity = first["plugins"]["tasks"][0]
    assert identity["distribution"] == "sslbench-edited" and identity["version"] == "1.0"
    assert identity["plugin"] == "edited" and identity["source"]

    # nothing changed: the cell is skipped, its record untouched
    assert fast_run(*args)[0] == 0
    assert record(out) == first

    # the source changed, the version did not: a new checkpoint and a new cell
    install(site, "1.0", scale=2.0)
    assert fast_run(*args)[0] == 0
    edited = record(out)
    assert edited["pretraining"]["cached"] is False
    assert edited["plugins"]["tasks"][0]["source"] != identity["source"]
    assert edited["config_hash"] != first["config_hash"]

    # the version changed, the source did not: a release that changes no code changes no
    # number, so the cell stands (issue 28: identities that survive releases)
    install(site, "1.1", scale=2.0)
    assert fast_run(*args)[0] == 0
    assert record(out) == edited


def test_records_name_every_plugin_and_the_backbone_that_ran(fast_run, image_folder, tmp_path):
    out = tmp_path / "results"
    status, _, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--tasks", "rotation",
                              "--fractions", "1.0", "--protocols", "linear",
                              "--backbone", "resnet18")
    assert status == 0, err
    rec = json.loads((out / "records" / "imgs__resnet18__rotation__linear__f1__s0.json")
                     .read_text())
    assert rec["settings"]["backbone"] == "resnet18"
    plugins = rec["plugins"]
    assert [plugins[k]["name"] for k in ("dataset", "backbone", "protocol")] == [
        "imagefolder", "resnet18", "linear"]
    assert plugins["tasks"][0]["name"] == "rotation"
    for identity in (plugins["dataset"], plugins["backbone"], plugins["protocol"],
                     *plugins["tasks"]):
        assert identity["distribution"] == "sslbench" and identity["source"]


PLUGIN_TASK = '''
import sslbench
from sslbench_plugins.tasks.rotation import Rotation


class Turned(Rotation):
    name = "turned"
    description = "rotation under another name, loaded with --plugin"


@sslbench.hookimpl
def sslbench_tasks():
    return [Turned]
'''


def test_produced_by_reproduces_the_run(cli, fast_run, image_folder, tmp_path, monkeypatch):
    """The report's "Produced by" command, run again, computes the very same numbers: every
    --set, --task-opt and --plugin that changed a setting is in it. It names the data folder
    without its maker's path (imagefolder:imgs), so the reader runs it beside their copy."""
    import shlex

    from sslbench.leaderboard import run_command
    from sslbench._core.records import load_records

    plugin = tmp_path / "turned_task.py"
    plugin.write_text(PLUGIN_TASK)
    status, _, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--plugin",
                              str(plugin), "--tasks", "turned", "--fractions", "1.0",
                              "--protocols", "linear", "--task-opt", "turned.crop=0.0",
                              "--opt", "linear.l2=[0.01,1.0]")
    assert status == 0, err
    first = load_records(tmp_path / "results")
    command = run_command(first)
    for flag in ("--opt turned.crop=0.0", "--opt 'linear.l2=[0.01,1.0]'",
                 "--set resolution=16", f"--plugin {plugin}"):
        assert flag in command, command
    assert f"--dataset imagefolder:{image_folder.name} " in command
    assert str(image_folder) not in command
    args = shlex.split(command)[2:]          # drop "sslbench run"
    again = tmp_path / "again"
    monkeypatch.chdir(image_folder.parent)   # where the reader keeps the folder
    status, _, err = cli("run", "--quiet", "--out", str(again), "--cache-dir",
                         str(tmp_path / "cache"), *args)
    assert status == 0, err
    second = load_records(again)

    def numbers(records):
        return sorted((r["task"], r["protocol"], r["fraction"], r["seed"],
                       r["metrics"]["test_accuracy"], r["data"]["fingerprint"],
                       json.dumps(r["options"], sort_keys=True),
                       json.dumps(r["settings"], sort_keys=True)) for r in records)
    assert numbers(second) == numbers(first)


def test_a_source_hash_holds_what_the_module_imports_and_nothing_else(tmp_path, monkeypatch):
    from sslbench._core.identity import source_hash
    pkg = tmp_path / "hashpkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "task_a.py").write_text("from .sub import helper\n\ndef f():\n"
                                   "    from . import late\n")
    (pkg / "sub" / "helper.py").write_text("X = 1\n")
    (pkg / "late.py").write_text("Y = 1\n")
    (pkg / "task_b.py").write_text("Z = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    first = source_hash("hashpkg.task_a")
    (pkg / "task_b.py").write_text("Z = 2\n")               # another task: not in it
    assert source_hash("hashpkg.task_a") == first
    assert source_hash("hashpkg.task_b") != source_hash("hashpkg.task_a")
    for edited in (pkg / "sub" / "helper.py", pkg / "late.py", pkg / "__init__.py",
                   pkg / "task_a.py"):                       # imported, in functions too
        before = source_hash("hashpkg.task_a")
        edited.write_text(edited.read_text() + "# edited\n")
        assert source_hash("hashpkg.task_a") != before, edited.name
    # a plugin package that builds on another plugin's (a third-party task subclassing a
    # built-in one): the other's modules it imports are in its hash
    (tmp_path / "otherpkg.py").write_text("from hashpkg.task_b import Z\n")
    before = source_hash("otherpkg", plugins={"hashpkg"})
    assert source_hash("otherpkg") != before            # without it: only its own file
    (pkg / "task_b.py").write_text("Z = 3\n")
    assert source_hash("otherpkg", plugins={"hashpkg"}) != before


def test_the_core_hash_leaves_out_only_modules_that_exist():
    import importlib.util

    from sslbench._core import identity
    for name in identity.NOT_IN_NUMBERS:
        assert importlib.util.find_spec(name) is not None, name
    assert "sslbench._core.unit_run" not in identity.NOT_IN_NUMBERS
    assert "sslbench.training" not in identity.NOT_IN_NUMBERS
    assert len(identity.core_hash()) == 16


def test_a_release_number_is_not_in_a_cells_hash(monkeypatch, tmp_path):
    """sslbench's version and the built-in plugins' distribution version change nothing
    that computes: the cells' hashes stay."""
    from conftest import FAST
    import sslbench
    from sslbench._core.config import build_config
    from sslbench._core.plugins import PluginHost
    from sslbench._core.runner import Sweep

    def hashes():
        config = build_config(datasets=["digits"], tasks=["rotation"], fractions=[1.0],
                              protocols=["linear"], settings={**FAST, "resolution": 16},
                              out=str(tmp_path / "o"), cache_dir=str(tmp_path / "c"))
        host = PluginHost.from_environment()
        return host, {c.id: c.config_hash for c in Sweep(config, host).cells}
    host, before = hashes()
    assert host.identity("task", "rotation")["version"] == sslbench.__version__
    import sslbench._core.plugins as plugins_module
    real = plugins_module.PluginHost._info

    def bumped(self, plugin):
        return dataclasses.replace(real(self, plugin), version="99.0")
    monkeypatch.setattr(sslbench, "__version__", "99.0")
    monkeypatch.setattr(plugins_module.PluginHost, "_info", bumped)
    host, after = hashes()
    assert host.identity("task", "rotation")["version"] == "99.0"
    assert after == before
