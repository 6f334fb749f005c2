"""``sslbench run --against LEADERBOARD --tasks NEW``: a row added to a finished sweep
without recomputing its rows, in its setting, verified first, and reported as one table
whose statistics are those of a sweep that ran everything (issue 28)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FAST_FLAGS, write_image_folder

from sslbench._core.adopted import MANIFEST, origin_note, read_manifest
from sslbench._core.against import cheapest_baseline, read_leaderboard
from sslbench._core.records import load_records
from sslbench.leaderboard import Leaderboard

GRID = ["--resolution", "16", *FAST_FLAGS, "--fractions", "0.5,1.0", "--protocols", "linear",
        "--seeds", "0,1"]

CELL_LOG_PLUGIN = '''
import os
import sslbench


@sslbench.hookimpl
def sslbench_cell_start(cell):
    with open(os.environ["SSLBENCH_TEST_CELL_LOG"], "a") as f:
        f.write(cell.id + "\\n")
'''


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Two finished sweeps on digits: ``published`` (scratch and rotation) and ``full``
    (scratch, rotation and exemplar: what ``--against published --tasks exemplar`` must
    reproduce), each with its own cache."""
    from sslbench._core.cli import main
    root = tmp_path_factory.mktemp("against")
    made = {}
    for name, tasks in (("published", "rotation"), ("full", "rotation,exemplar")):
        with pytest.raises(SystemExit) as end:
            main(["run", "--quiet", "--out", str(root / name), "--cache-dir",
                  str(root / f"cache-{name}"), "--tasks", tasks, *GRID])
        assert end.value.code in (0, None)
        made[name] = root / name
    return made


def _records(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (folder / "records").glob("*.json")}


def test_a_row_is_added_without_recomputing_the_published_ones(sweeps, cli, tmp_path,
                                                              monkeypatch):
    plugin = tmp_path / "cell_log.py"
    plugin.write_text(CELL_LOG_PLUGIN)
    log = tmp_path / "cells.log"
    monkeypatch.setenv("SSLBENCH_TEST_CELL_LOG", str(log))
    new = tmp_path / "new"
    status, out, err = cli("run", "--quiet", "--against", str(sweeps["published"]),
                           "--tasks", "exemplar", "--plugin", str(plugin), "--out", str(new),
                           "--cache-dir", str(tmp_path / "cache"))
    assert status == 0, err
    published = _records(sweeps["published"])
    chosen = cheapest_baseline(read_leaderboard(sweeps["published"])).cell_id
    started = log.read_text().split()
    # the cells that ran: the one published cell recomputed to verify, and the new row's
    assert started[0] == chosen and chosen in published
    assert sorted(started[1:]) == sorted(c for c in _records(new) if "__exemplar__" in c)
    assert len(started[1:]) == 4
    # the published records are in the new folder unchanged, each listed with its checksum
    for cell_id in published:
        assert (new / "records" / f"{cell_id}.json").read_bytes() == \
            (sweeps["published"] / "records" / f"{cell_id}.json").read_bytes()
    manifest = read_manifest(new)
    assert set(manifest["records"]) == set(published)
    assert manifest["verification"]["cell"] == chosen
    assert manifest["verification"]["recomputed"] is True
    assert "adopted" in err and "verified" in err

    # the new row is the full sweep's row: same cells, same configuration, same numbers
    full = _records(sweeps["full"])
    for cell_id, record in _records(new).items():
        if "__exemplar__" in cell_id:
            assert record["config_hash"] == full[cell_id]["config_hash"]
            assert record["metrics"]["test_predictions"] == \
                full[cell_id]["metrics"]["test_predictions"]
    # so the merged table's statistics are those of the sweep that ran everything
    merged, whole = (Leaderboard(load_records(f)) for f in (new, sweeps["full"]))
    timeless = [board.summary().drop(columns="pretrain_seconds") for board in (merged, whole)]
    assert timeless[0].equals(timeless[1])
    a, b = (board.comparisons("digits", "smallcnn") for board in (merged, whole))
    assert {k[0] for k in a["vs_scratch"]} == {"rotation", "exemplar"}
    assert repr(a) == repr(b)       # means, intervals, p-values and Holm's, winners

    # the report says which rows were published and which computed here
    status, text, err = cli("report", str(new), "--format", "markdown")
    assert status == 0, err
    assert "Rows scratch, rotation: published records of the leaderboard 'published'" in text
    assert "verified by recomputing its cell " + chosen in text.replace("\\", "")
    assert "rows exemplar: computed here" in text

    # run again: everything is finished, nothing runs (the adopted records count)
    log.unlink()
    status, out, err = cli("run", "--quiet", "--against", str(sweeps["published"]),
                           "--tasks", "exemplar", "--plugin", str(plugin), "--out", str(new),
                           "--cache-dir", str(tmp_path / "cache"), "--trust")
    assert status == 0, err
    assert not log.exists() or log.read_text().split() == []


@pytest.mark.parametrize("flags, named", [
    (["--seeds", "0"], "--seeds"),
    (["--set", "pretrain_epochs=2"], "--set"),
    (["--opt", "linear.max_iter=5"], "--opt linear"),
    (["--protocols", "linear,finetune"], "--protocols"),
    (["--preset", "standard"], "--preset"),
    (["--fractions", "0.1"], "--fractions"),
])
def test_flags_that_change_the_published_setting_are_refused(sweeps, cli, tmp_path, flags,
                                                             named):
    status, out, err = cli("run", "--quiet", "--against", str(sweeps["published"]),
                           "--tasks", "exemplar", "--out", str(tmp_path / "new"), *flags)
    assert status == 2
    line = err.strip()
    assert "\n" not in line and named in line and "setting of the leaderboard" in line
    assert not (tmp_path / "new").exists()


def test_bad_leaderboards_and_missing_tasks_are_one_line(sweeps, cli, tmp_path):
    status, _, err = cli("run", "--against", str(tmp_path / "nowhere"), "--tasks", "exemplar")
    assert status == 2 and "no records/ folder" in err and err.count("\n") == 1
    status, _, err = cli("run", "--against", str(sweeps["published"]))
    assert status == 2 and "--against needs --tasks" in err
    status, _, err = cli("run", "--against", str(sweeps["published"]), "--tasks", "exemplar",
                         "--dataset", "imagefolder:x")
    assert status == 2 and "the leaderboard is of digits" in err
    status, _, err = cli("run", "--against", str(sweeps["published"]), "--tasks", "nosuch",
                         "--out", str(tmp_path / "new"))
    assert status == 2 and "unknown task 'nosuch'" in err
    assert not (tmp_path / "new").exists()            # checked before anything is written
    status, _, err = cli("run", "--trust", "--tasks", "exemplar")
    assert status == 2 and "--trust goes with --against" in err


def test_a_tampered_published_record_is_found_by_its_recomputation(sweeps, cli, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(sweeps["published"], folder)
    chosen = cheapest_baseline(read_leaderboard(folder))
    path = folder / "records" / f"{chosen.cell_id}.json"
    record = json.loads(path.read_text())
    predictions = record["metrics"]["test_predictions"]
    predictions[0] = (predictions[0] + 1) % 10                  # one test image changed
    record["metrics"]["test_accuracy"] += 0.01
    path.write_text(json.dumps(record))
    status, out, err = cli("run", "--quiet", "--against", str(folder), "--tasks", "exemplar",
                           "--out", str(tmp_path / "new"), "--cache-dir", str(tmp_path / "c"))
    assert status == 2, err
    line = err.strip().splitlines()[-1]
    assert f"cell {chosen.cell_id} recomputed here gives" in line
    assert "1 test predictions differ" in line and "changed after it was written" in line
    assert not (tmp_path / "new" / MANIFEST).exists()


def test_another_data_set_is_refused_by_its_contents(cli, tmp_path):
    """A leaderboard of an image folder; the same folder name, other images (the same
    names): refused, with --trust too (the data check is never skipped)."""
    ours = write_image_folder(tmp_path / "a" / "imgs", per_class=6)
    other = write_image_folder(tmp_path / "b" / "imgs", per_class=6, seed=1)
    published = tmp_path / "published"
    status, _, err = cli("run", "--quiet", "--dataset", f"imagefolder:{ours}", "--tasks",
                         "scratch", "--out", str(published), "--cache-dir",
                         str(tmp_path / "cache"), "--resolution", "16", *FAST_FLAGS,
                         "--fractions", "1.0", "--protocols", "linear", "--seeds", "0")
    assert status == 0, err
    status, _, err = cli("run", "--quiet", "--against", str(published), "--tasks",
                         "rotation", "--out", str(tmp_path / "new"))
    assert status == 2 and "--dataset imagefolder:PATH" in err
    for trust in ([], ["--trust"]):
        status, _, err = cli("run", "--quiet", "--against", str(published), "--tasks",
                             "rotation", "--dataset", f"imagefolder:{other}", "--out",
                             str(tmp_path / "new"), "--cache-dir", str(tmp_path / "c2"),
                             *trust)
        assert status == 2, err
        line = err.strip().splitlines()[-1]
        assert "is not the leaderboard's: its contents fingerprint is" in line
    assert not (tmp_path / "new" / "records").exists()


def test_a_changed_adopted_record_counts_as_computed_here(tmp_path):
    """The manifest is input: an entry counts only while its file has the listed checksum."""
    records = tmp_path / "records"
    records.mkdir()
    (records / "a.json").write_text("{}")
    (records / "b.json").write_text("{}")
    from sslbench._core.adopted import sha256
    (tmp_path / MANIFEST).write_text(json.dumps({
        "leaderboard": "/elsewhere/board", "verification": {"recomputed": False,
                                                            "note": "skipped (--trust)"},
        "records": {"a": {"sha256": sha256(b"{}"), "sslbench": "0.5"},
                    "b": {"sha256": "0" * 64, "sslbench": "0.5"},
                    "../x": {"sha256": sha256(b"{}")}}}))
    warnings: list[str] = []
    manifest = read_manifest(tmp_path, warnings.append)
    assert set(manifest["records"]) == {"a"}
    assert len(warnings) == 1 and "record b is not the one adopted" in warnings[0]
    (tmp_path / MANIFEST).write_text("[1, 2]")
    assert read_manifest(tmp_path, warnings.append) is None and "ignored" in warnings[-1]
    assert origin_note(tmp_path / "none", []) is None


def test_a_published_sites_leaderboard_is_a_leaderboard_too(sweeps, cli, tmp_path):
    """`sslbench publish` writes the split files beside the records (the maker's paths cut),
    so a site's leaderboard folder can be added to, verified as a results folder is."""
    site = tmp_path / "site"
    status, _, err = cli("publish", str(sweeps["published"]), "-o", str(site))
    assert status == 0, err
    board = site / "digits-smallcnn-quick"
    assert sorted(p.name for p in (board / "splits").iterdir()) == \
        sorted(p.name for p in (sweeps["published"] / "splits").iterdir())
    status, _, err = cli("run", "--quiet", "--against", str(board), "--tasks", "exemplar",
                         "--out", str(tmp_path / "new"), "--cache-dir", str(tmp_path / "c"))
    assert status == 0, err
    assert len(read_manifest(tmp_path / "new")["records"]) == 8
    assert len(list((tmp_path / "new" / "records").glob("*.json"))) == 12
