"""Records are input from whoever wrote the folder: every command that reads one checks it
against the schema (sslbench._core.record_checks.record_problem) and skips a bad one with one
warning naming it. Each case below is a crafted record file; report, publish, status and
export all read it without a traceback."""

import json
import math
import shutil

import pytest

from sslbench._core.record_checks import record_problem
from sslbench._core.records import load_records


@pytest.fixture
def good(finished_sweep):
    """One real finished record of the shared sweep."""
    path = sorted((finished_sweep[0] / "records").glob("*rotation__linear__f1__s0.json"))[0]
    return json.loads(path.read_text())


def changed(record, dotted, value):
    out = json.loads(json.dumps(record))
    *parents, key = dotted.split(".")
    target = out
    for p in parents:
        target = target[p]
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return out


DELETE = object()

BAD = {
    "missing cell_id": ("cell_id", DELETE),
    "cell_id a path": ("cell_id", "/tmp/evil"),
    "cell_id climbing": ("cell_id", "../../evil"),
    "backbone climbing": ("backbone", "../../x"),
    "task with a slash": ("task", "a/b"),
    "string fraction": ("fraction", "0.5"),
    "negative fraction": ("fraction", -0.5),
    "fraction over 1": ("fraction", 2.0),
    "boolean fraction": ("fraction", True),
    "string seed": ("seed", "0"),
    "negative seed": ("seed", -1),
    "NaN accuracy": ("metrics.test_accuracy", math.nan),
    "huge accuracy": ("metrics.test_accuracy", 1e308),
    "negative accuracy": ("metrics.test_accuracy", -0.1),
    "boolean accuracy": ("metrics.test_accuracy", True),
    "string accuracy": ("metrics.test_accuracy", "0.9"),
    "sweep a string": ("sweep", "oops"),
    "settings a list": ("settings", [1, 2]),
    "sweep.fractions odd": ("sweep.protocols", [1, 2]),
    "finished_at a number": ("finished_at", 5),
    "reference with a string accuracy": ("references", [{"paper": "x", "accuracy": "high"}]),
    "held-out accuracy over 1": ("pretraining", {"heldout": {"accuracy": 7, "chance": 0.25}}),
    "checkpoint a path": ("pretraining", {"checkpoint": "../../../etc/passwd"}),
    "per-class accuracy NaN": ("metrics.per_class_accuracy", {"cat": math.nan}),
    "test_correct not bits": ("metrics.test_correct", "01x"),
    "budget of no kind": ("budget", {"kind": "epochs", "value": 3}),
    "budget a string": ("budget", "20/class"),
    "budget disagreeing with fraction": ("budget", {"kind": "fraction", "value": 0.25}),
    "labels per class not whole": ("budget", {"kind": "per_class", "value": 2.5}),
    "labels zero": ("budget", {"kind": "labels", "value": 0}),
    "labels NaN": ("budget", {"kind": "labels", "value": math.nan}),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_record_is_named_and_never_trusted(good, case):
    dotted, value = BAD[case]
    assert record_problem(good) is None                  # positive control: the real one reads
    problem = record_problem(changed(good, dotted, value))
    assert problem, f"{case}: accepted"


def test_every_command_skips_a_bad_record_with_one_warning(cli, finished_sweep, good,
                                                           tmp_path):
    out = tmp_path / "results"
    shutil.copytree(finished_sweep[0], out)
    for i, case in enumerate(sorted(BAD)):
        dotted, value = BAD[case]
        (out / "records" / f"bad{i}.json").write_text(
            json.dumps(changed(good, dotted, value), allow_nan=True))
    n_bad = len(BAD)
    status, text, err = cli("report", str(out), "--format", "markdown")
    assert status == 0, err
    assert err.count("warning: skipping") == n_bad and "Traceback" not in err
    assert "1e+308" not in text and "nan" not in text.lower().replace("n/a", "")
    status, _, err = cli("publish", str(out), "-o", str(tmp_path / "site"))
    assert status == 0, err
    assert err.count("warning: skipping") == n_bad
    assert not list((tmp_path / "site").rglob("bad*.json"))
    status, text, err = cli("status", str(out))
    assert status == 0, err
    assert "8 finished" in text and err.count("warning: skipping") == n_bad
    status, text, err = cli("export", str(out), "--task", "rotation", "--seed", "0",
                            "--cache-dir", str(finished_sweep[1]),
                            "-o", str(tmp_path / "rot.safetensors"))
    assert status == 0, err


def test_a_record_whose_name_is_not_its_cell_is_skipped(finished_sweep, good, tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "other.json").write_text(json.dumps(good))
    (tmp_path / "records" / f"{good['cell_id']}.json").write_text(json.dumps(good))
    warnings = []
    assert [r["cell_id"] for r in load_records(tmp_path, warnings.append)] == [good["cell_id"]]
    assert len(warnings) == 1 and "is not its file name" in warnings[0]


def test_a_link_out_of_the_folder_is_not_followed(good, tmp_path):
    """A record linked in from elsewhere (another user's file, with fields of its own) is
    not read, not republished."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    secret = elsewhere / f"{good['cell_id']}.json"
    secret.write_text(json.dumps({**good, "secret": "do not publish"}))
    (tmp_path / "out" / "records").mkdir(parents=True)
    (tmp_path / "out" / "records" / f"{good['cell_id']}.json").symlink_to(secret)
    warnings = []
    assert load_records(tmp_path / "out", warnings.append) == []
    assert "outside the folder" in warnings[0]


def test_status_runs_nothing_a_record_names(cli, finished_sweep, tmp_path):
    """A record's sweep.plugins names a Python file: status must not import it (it would run
    as the user calling status)."""
    out = tmp_path / "results"
    shutil.copytree(finished_sweep[0], out)
    ran = tmp_path / "it-ran"
    evil = out / "evil.py"
    evil.write_text(f"open({str(ran)!r}, 'w').write('pwned')\n")
    for path in (out / "records").glob("*.json"):
        record = json.loads(path.read_text())
        record["sweep"]["plugins"] = [str(evil)]
        path.write_text(json.dumps(record))
    status, text, err = cli("status", str(out))
    assert not ran.exists()
    assert status == 0 and "8 finished" in text, err
    # positive control: the same file given by the user is loaded (and so would run)
    cli("status", str(out), "--plugin", str(evil))
    assert ran.exists()


def test_a_budget_in_labels_reads_without_a_fraction(good):
    """A record of a budget in labels (sslbench 0.5) has no fraction and reads; a record
    before 0.5 has only its fraction and reads (the finished sweep's, above)."""
    record = changed(good, "fraction", DELETE)
    record["budget"] = {"kind": "per_class", "value": 20, "label": "20/class"}
    assert record_problem(record) is None
    assert record_problem(changed(good, "budget", DELETE)) is None
