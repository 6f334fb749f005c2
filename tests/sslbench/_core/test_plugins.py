"""Plugin discovery through entry points, name clashes, failing plugins, local plugins."""

import textwrap
from importlib import metadata

import pytest
from conftest import LOCAL_TASK

import sslbench
from sslbench.errors import SSLBenchError
from sslbench._core.plugins import PluginHost
from sslbench.task import PretextTask

BUILTIN = {"task": {"rotation"}, "backbone": {"smallcnn", "resnet18"},
           "dataset": {"digits", "imagefolder", "cifar10", "cifar100", "stl10", "svhn",
                       "flowers102"},
           "protocol": {"linear", "finetune", "knn"},
           "format": {"table", "markdown", "html", "latex", "csv"}}


def test_builtins_come_from_the_sslbench_entry_point_group():
    host = PluginHost.from_environment()
    names = {ep.name for ep in metadata.entry_points(group="sslbench")}
    assert {"rotation", "smallcnn", "digits", "linear", "finetune", "reports"} <= names
    for kind, expected in BUILTIN.items():
        assert expected <= set(host.registry(kind)), kind
    # every contribution is attributed to the plugin (entry point) it came from
    assert host.registry("task")["rotation"].plugin == "rotation"
    assert host.registry("format")["csv"].plugin == "reports"
    assert not host.failed


def test_core_never_imports_a_builtin_plugin_by_name():
    import pathlib
    core = pathlib.Path(sslbench.__file__).parent
    offenders = [p.name for p in core.rglob("*.py") if "sslbench_plugins" in p.read_text()]
    assert offenders == []


def test_timm_names_resolve_through_the_resolver_hook():
    host = PluginHost.from_environment()
    spec = host.backbone("resnet10t")   # not listed, but a timm model
    assert spec.name == "resnet10t"
    with pytest.raises(SSLBenchError, match="unknown backbone 'resnet19'.*Did you mean"):
        host.backbone("resnet19")


class _Clash(PretextTask):
    name = "rotation"


class ClashPlugin:
    @sslbench.hookimpl
    def sslbench_tasks(self):
        return [_Clash]


def test_two_plugins_with_the_same_name_is_an_error_naming_both():
    host = PluginHost.from_environment()
    from sslbench._core.plugins import PluginInfo
    host.register(ClashPlugin(), PluginInfo("my-clash", "tests", "--plugin"))
    with pytest.raises(SSLBenchError) as err:
        host.registry("task")
    assert "'rotation'" in str(err.value) and "'rotation' and 'my-clash'" in str(err.value)


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(monkeypatch):
    real = metadata.entry_points

    def with_broken(**kwargs):
        eps = list(real(**kwargs))
        if kwargs.get("group") == "sslbench":
            eps.append(metadata.EntryPoint("broken", "no_such_module_xyz", "sslbench"))
        return eps

    monkeypatch.setattr(metadata, "entry_points", with_broken)
    host = PluginHost.from_environment()
    assert [p.name for p in host.failed] == ["broken"]
    assert "ModuleNotFoundError" in host.failed[0].error
    assert "rotation" in host.registry("task")          # the others still load
    with pytest.raises(SSLBenchError, match="not used because they are broken.*broken"):
        host.task("broken_task")


def test_local_plugin_file_runs_through_the_cli(fast_run, cli, tmp_path, image_folder):
    plugin = tmp_path / "my_tasks.py"
    plugin.write_text(LOCAL_TASK)
    status, out, _ = cli("list", "tasks", "--plugin", str(plugin))
    assert status == 0 and "brightness" in out and "my_tasks" in out
    status, out, err = fast_run("--plugin", str(plugin), "--dataset", f"imagefolder:{image_folder}",
                                "--tasks", "brightness,rotation", "--fractions", "1.0",
                                "--protocols", "linear", "--task-opt", "brightness.levels=4")
    assert status == 0, err
    rows = [line.split("│")[1].strip() for line in out.splitlines()
            if line.startswith("│") and not line.startswith("│ labels")]
    assert rows == ["brightness", "rotation", "scratch"]
    import json
    rec = json.loads(next((tmp_path / "results" / "records").glob("*brightness*")).read_text())
    assert rec["task_plan"]["pretext"]["options"] == {"levels": 4}


def test_unknown_task_option_is_bad_input(fast_run):
    status, _, err = fast_run("--task-opt", "rotation.colour=1")
    assert status == 2
    assert err.strip() == ("sslbench: error: task 'rotation' has no option 'colour'; its options: "
                           "crop, flip, symmetrise.")


LOGGER = textwrap.dedent('''
    import json, os
    import sslbench

    LOG = os.environ["SSLBENCH_TEST_LOG"]

    def _write(event, **data):
        with open(LOG, "a") as f:
            f.write(json.dumps({"event": event, **data}) + "\\n")

    @sslbench.hookimpl
    def sslbench_sweep_start(config, cells):
        _write("sweep_start", cells=len(cells), tasks=config.tasks)

    @sslbench.hookimpl
    def sslbench_cell_start(cell):
        _write("cell_start", id=cell.id)

    @sslbench.hookimpl
    def sslbench_cell_finish(cell, record):
        _write("cell_finish", id=cell.id, status=record["status"])

    @sslbench.hookimpl
    def sslbench_sweep_finish(config, records):
        _write("sweep_finish", records=len(records))
''')


def test_lifecycle_hooks_see_the_sweep(fast_run, tmp_path, monkeypatch):
    import json
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("SSLBENCH_TEST_LOG", str(log))
    plugin = tmp_path / "logger.py"
    plugin.write_text(LOGGER)
    args = ("--plugin", str(plugin), "--fractions", "1.0", "--protocols", "linear")
    assert fast_run(*args)[0] == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0] == {"event": "sweep_start", "cells": 2, "tasks": ["rotation"]}
    assert [e["event"] for e in events[1:]] == ["cell_start", "cell_finish"] * 2 + ["sweep_finish"]
    assert all(e["status"] == "ok" for e in events if e["event"] == "cell_finish")
    log.unlink()
    assert fast_run(*args)[0] == 0          # resumed: nothing runs, start and finish still told
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events == ["sweep_start", "sweep_finish"]


RAISING_OBSERVER = '''
import sslbench

@sslbench.hookimpl
def sslbench_cell_finish(cell, record):
    raise RuntimeError("notifier is down")
'''


def test_a_raising_observer_is_reported_and_the_sweep_goes_on(fast_run, tmp_path):
    plugin = tmp_path / "notifier.py"
    plugin.write_text(RAISING_OBSERVER)
    status, _, err = fast_run("--plugin", str(plugin), "--fractions", "1.0",
                              "--protocols", "linear")
    assert status == 0, err
    assert err.count("plugin 'notifier' failed in sslbench_cell_finish: RuntimeError: "
                     "notifier is down") == 1
    assert len(list((tmp_path / "results" / "records").glob("*.json"))) == 2


@pytest.mark.parametrize("body, message", [
    ("    raise ValueError('boom')", "broken.py): sslbench_tasks() raised ValueError: boom"),
    ("    class T(PretextTask):\n        name = '../../../tmp/x'\n    return [T]",
     "broken.py): contributes a task named '../../../tmp/x'"),
])
def test_a_broken_contribution_is_one_line_naming_the_plugin(fast_run, tmp_path, body, message):
    plugin = tmp_path / "broken.py"
    plugin.write_text("import sslbench\nfrom sslbench.task import PretextTask\n\n"
                      "@sslbench.hookimpl\ndef sslbench_tasks():\n" + body + "\n")
    status, _, err = fast_run("--plugin", str(plugin))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tmp").exists()
