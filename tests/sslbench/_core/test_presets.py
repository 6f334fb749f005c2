"""Presets are plugins: a third party's preset gives the settings and the grid of a sweep
that names none; the core resolves which one (sslbench._core.presets) and names none."""

from __future__ import annotations

import json
import textwrap

PRESET_PLUGIN = textwrap.dedent('''
    import sslbench
    from sslbench.preset import Preset

    @sslbench.hookimpl
    def sslbench_presets():
        return [Preset("tiny", "a third party's preset",
                       settings={{"backbone": "smallcnn", "resolution": 16,
                                  "pretrain_epochs": 1, "pretext_holdout": 20}},
                       datasets=("imagefolder:{folder}",), tasks=("relpatch",),
                       protocols=("linear",), default={default}),
                Preset("nobackbone", "names no backbone", settings={{"resolution": 16}}),
                Preset("typo", "a misspelt setting",
                       settings={{"backbone": "smallcnn", "resolutoin": 16}})]
''')


def write_plugin(tmp_path, folder, default=False):
    path = tmp_path / "tiny_preset.py"
    path.write_text(PRESET_PLUGIN.format(folder=folder, default=default))
    return str(path)


def test_a_third_party_preset_gives_settings_and_grid(cli, tmp_path, image_folder):
    plugin = write_plugin(tmp_path, image_folder)
    status, out, err = cli("run", "--plugin", plugin, "--preset", "tiny", "--seeds", "0",
                           "--fractions", "1.0", "--out", str(tmp_path / "r"), "--cache-dir",
                           str(tmp_path / "c"), "--dry-run")
    assert status == 0, err
    assert "imgs__smallcnn__relpatch__s0" in out and "imgs__smallcnn__scratch__s0" in out
    assert "linear 1" in out and "finetune" not in out     # the preset's protocols only
    status, out, _ = cli("list", "presets", "--plugin", plugin)
    assert status == 0 and "tiny" in out and "quick" in out


def test_records_carry_their_presets_settings(finished_sweep):
    out, _ = finished_sweep                   # run with --resolution 16 under the quick preset
    record = json.loads(next((out / "records").glob("*rotation*.json")).read_text())
    sweep = record["sweep"]
    assert sweep["preset"] == "quick" and sweep["preset_settings"]["backbone"] == "smallcnn"
    assert sweep["preset_settings"]["resolution"] == 32 and record["settings"]["resolution"] == 16
    from sslbench.leaderboard import run_command
    changed = {k for k, v in record["settings"].items()
               if k != "backbone" and sweep["preset_settings"][k] != v}
    flags = {part.split("=")[0] for part in run_command([record]).split("--set ")[1:]}
    assert "resolution" in changed and flags == changed      # what changed it, and only that


def test_two_default_presets_or_none_named_are_one_line(cli, tmp_path, image_folder):
    plugin = write_plugin(tmp_path, image_folder, default=True)
    status, _, err = cli("run", "--plugin", plugin, "--dry-run", "--out", str(tmp_path / "r"))
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "'quick'" in err and "'tiny'" in err and "--preset" in err
    status, _, err = cli("run", "--plugin", plugin, "--preset", "nobackbone", "--tasks",
                         "rotation", "--dry-run", "--out", str(tmp_path / "r"))
    assert status == 2 and "no backbone" in err and len(err.strip().splitlines()) == 1
    status, _, err = cli("run", "--plugin", plugin, "--preset", "typo", "--tasks", "rotation",
                         "--dry-run", "--out", str(tmp_path / "r"))
    assert status == 2 and "preset 'typo': unknown setting 'resolutoin'" in err
    status, _, err = cli("run", "--preset", "nope", "--dry-run", "--out", str(tmp_path / "r"))
    assert status == 2 and "unknown preset 'nope'" in err


def test_report_formats_are_asked_for_by_role():
    import pytest

    from sslbench import SSLBenchError
    from sslbench._core.plugins import PluginHost
    from sslbench.formats import ReportFormat
    host = PluginHost.from_environment()
    assert host.format_for("terminal").name == "table"
    assert {host.format_for("page").name, host.format_for("data").name} == {"html", "csv"}

    class Rival:
        import sslbench

        @staticmethod
        @sslbench.hookimpl
        def sslbench_report_formats():
            return [ReportFormat("fancy", str, "a rival", roles=("terminal",))]
    from sslbench._core.plugins import PluginInfo
    host = PluginHost.from_environment()
    host.register(Rival, PluginInfo("rival", "rival", "--plugin"))
    with pytest.raises(SSLBenchError, match="'table'.*'fancy'.*terminal"):
        host.format_for("terminal")
