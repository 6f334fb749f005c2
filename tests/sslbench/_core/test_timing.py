"""The time account (sslbench._core.timing): every sweep writes where its wall time went,
per unit and per cell, and ``sslbench report OUT --time`` shows it."""

from __future__ import annotations

import json
import time

import pytest

from sslbench._core.timing import CATEGORIES, MODEL_WORK, TimeAccount


def test_charges_are_exclusive_and_marks_read_a_share():
    account = TimeAccount()
    with account.charge("finetuning"):
        time.sleep(0.05)
        mark = account.mark()
        with account.charge("features"):
            time.sleep(0.1)
        inner = account.since(mark)
    assert set(inner) == {"features"} and 0.09 < inner["features"] < 0.5
    # the nested 0.1 s is the features', not the fine-tuning's as well
    assert 0.04 < account.totals["finetuning"] < 0.09
    with pytest.raises(ValueError, match="unknown time category"):
        with account.charge("lunch"):
            pass


def test_a_sweep_writes_its_account_and_the_report_shows_it(fast_run, cli, tmp_path):
    out = tmp_path / "results"
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "1.0", out=out)
    assert status == 0, err
    [path] = (out / "time").glob("*.json")
    run = json.loads(path.read_text())
    total = run["total_s"]
    assert run["executor"] == "local" and set(total) <= set(CATEGORIES) and run["complete"]
    for category in ("startup", "data", "pretraining", "features", "probes", "finetuning",
                     "evaluation", "io", "other"):
        assert total[category] >= 0, category
    assert total["pretraining"] > 0 and total["finetuning"] > 0 and total["probes"] > 0
    # the charges and "other" make up the wall time (rounded to milliseconds)
    assert abs(sum(total.values()) - run["wall_s"]) < 0.05
    model = sum(total.get(k, 0) for k in MODEL_WORK)
    assert abs(run["model_work_s"] - model) < 0.01
    assert run["model_work_share"] == pytest.approx(model / run["wall_s"], abs=1e-3)
    # per cell, in the run file and in each record; the unit's pretraining apart
    records = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert set(run["cells"]) == set(records) and len(records) == 4
    for cell_id, record in records.items():
        kind = "finetuning" if record["protocol"] == "finetune" else "probes"
        assert record["time_s"][kind] > 0 and "pretraining" not in record["time_s"]
        assert record["time_s"][kind] <= run["cells"][cell_id][kind]
    assert run["units"]["digits__smallcnn__rotation__s0"]["pretraining"] > 0
    assert run["units"]["prepare digits split 0"]["data"] > 0

    status, shown, _ = cli("report", str(out), "--time")
    assert status == 0
    assert "| run | executor | wall s | startup | data | pretraining" in shown
    assert f"{run['wall_s']:.1f}" in shown

    # a rerun with nothing left to do writes no account; a damaged file is named, skipped
    status, _, _ = fast_run("--tasks", "rotation", "--fractions", "1.0", out=out)
    assert status == 0 and len(list((out / "time").glob("*.json"))) == 1
    (out / "time" / "19990101T000000-x-1.json").write_text("{not json")
    status, shown, err = cli("report", str(out), "--time")
    assert status == 0 and "19990101T000000-x-1.json" in err and "local" in shown


def test_a_killed_run_loses_only_the_cell_it_was_in(fast_run, cli, tmp_path, monkeypatch):
    """The account is written after each pretraining and each cell: a run stopped in the
    second unit's cell (as a kill or a preemption would stop it) leaves that unit's
    pretraining and the first unit's cell in its account, marked unfinished."""
    from sslbench._core import unit_run
    evaluate, cells = unit_run._evaluate, []

    def stopped_in_the_second(ctx, cell, *args):
        cells.append(cell.id)
        if len(cells) == 2:
            raise KeyboardInterrupt            # the process dies here: nothing else runs
        return evaluate(ctx, cell, *args)
    monkeypatch.setattr(unit_run, "_evaluate", stopped_in_the_second)
    out = tmp_path / "results"
    status, _, _ = fast_run("--tasks", "rotation", "--fractions", "1.0", "--protocols",
                            "linear", out=out)
    assert status == 130                       # "sslbench: aborted"
    [path] = (out / "time").glob("*.json")
    run = json.loads(path.read_text())
    assert run["complete"] is False and list(run["cells"]) == cells[:1]
    [second_unit] = [u for u in run["units"] if "rotation" in u]
    assert run["units"][second_unit].get("pretraining", 0) > 0
    status, shown, _ = cli("report", str(out), "--time")
    assert status == 0 and "(unfinished)" in shown


def test_a_folder_without_an_account_is_one_line(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    status, _, err = cli("report", str(tmp_path / "empty"), "--time")
    assert status == 2 and "no time account" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", [
    {"wall_s": "12"}, {"wall_s": -1.0}, {"total_s": {"data": "x"}}, {"total_s": [1, 2]},
    {"started": 5}, {"executor": None}, {"model_work_share": "high"}, {"complete": "yes"},
    {"model_work_s": float("inf")},
])
def test_a_malformed_account_is_named_and_skipped(cli, finished_sweep, tmp_path, damage):
    """A time account is a file anyone sharing the folder may write: each malformed field
    is one warning naming the file, never a traceback."""
    import shutil
    out = tmp_path / "results"
    shutil.copytree(finished_sweep[0], out)
    [good] = (out / "time").glob("*.json")
    bad = out / "time" / "19990101T000000-x-1.json"
    bad.write_text(json.dumps({**json.loads(good.read_text()), **damage}))
    status, shown, err = cli("report", str(out), "--time")
    assert status == 0 and "Traceback" not in err
    assert f"ignoring '{bad}': not a time account" in err and "local" in shown


# ------------------------------------------------------------------ layers (issue 27, item 6)
# The clock imports nothing of sslbench, so every module may charge its time to it; the atomic
# writes below the time accounts' files do not import them back.
import ast  # noqa: E402

from conftest import REPO  # noqa: E402

CORE = REPO / "sslbench" / "_core"


def sslbench_imports(path) -> set[str]:
    """Modules of sslbench a file imports, anywhere in it (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                found.add("." * node.level + (node.module or ""))
            elif (node.module or "").startswith("sslbench"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sslbench")}
    return found


def test_the_clock_imports_nothing_of_sslbench():
    assert sslbench_imports(CORE / "timing.py") == set()


def test_atomic_writes_do_not_import_the_time_accounts():
    assert ".timing" in sslbench_imports(CORE / "atomic.py")
    assert not {".time_accounts", "sslbench._core.time_accounts"} & sslbench_imports(
        CORE / "atomic.py")
    assert ".atomic" in sslbench_imports(CORE / "time_accounts.py")
