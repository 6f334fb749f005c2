"""The record type (sslbench.record): a record round-trips through it unchanged, records of
earlier formats load, it reads like the JSON object it is written as, and it cannot be
changed in place."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from sslbench._core.records import load_records, read_record_file
from sslbench.record import RECORD_SCHEMA, Record, RecordError

# a real record written before budgets in labels existed (sslbench 0.5.0.dev0 of 2026-11-30,
# results/flowers-quick): a ``fraction`` and no ``budget``, no ``chosen_on``
OLD = Path(__file__).parent / "data" / "flowers__smallcnn__rotation__linear__f0.1__s0.json"


def old_json() -> dict:
    return json.loads(OLD.read_text())


def test_a_record_written_by_a_sweep_round_trips_through_the_type(finished_sweep):
    paths = sorted((finished_sweep[0] / "records").glob("*.json"))
    assert len(paths) == 8
    for path in paths:
        written = json.loads(path.read_text())
        record = Record.from_dict(written)
        assert record.to_dict() == written                       # nothing lost or added
        assert json.loads(json.dumps(record.to_dict())) == written
        assert record.cell_id == path.stem and record.ok
        assert record.budget == written["budget"] and record.extra == {}
        assert 0 <= record.test_accuracy <= 1
        assert record.test_accuracy == written["metrics"]["test_accuracy"]


def test_a_record_of_the_format_before_label_budgets_still_loads(tmp_path):
    before = old_json()
    assert "budget" not in before and before["fraction"] == 0.1      # it is the old format
    record = Record.from_dict(before)
    assert record.budget == {"kind": "fraction", "value": 0.1, "label": "10%"}
    assert record.budget_label == "10%" and record.fraction == 0.1
    assert record.chosen_on is None and record["metrics"] == before["metrics"]
    # written back: everything it held, the budget it implied, and None for what it lacks
    written = record.to_dict()
    added = set(written) - set(before)
    assert added == {"budget", "chosen_on"}
    assert written == {**before, "budget": record.budget, "chosen_on": None}
    # and through the loader every command uses
    shutil.copy(OLD, tmp_path / OLD.name)
    loaded = load_records(tmp_path)
    assert [r.cell_id for r in loaded] == [OLD.stem] and isinstance(loaded[0], Record)
    assert loaded[0].to_dict() == record.to_dict()


def test_a_field_this_version_does_not_know_is_kept_and_written_back():
    given = {**old_json(), "energy_kwh": 0.25}
    record = Record.from_dict(given)
    assert record.extra == {"energy_kwh": 0.25} and record["energy_kwh"] == 0.25
    assert record.to_dict()["energy_kwh"] == 0.25


def test_a_record_reads_like_the_json_object_it_is_written_as():
    record = Record.from_dict(old_json())
    as_json = record.to_dict()
    assert dict(record) == as_json and record == as_json and len(record) == len(as_json)
    assert record["schema"] == RECORD_SCHEMA and record["status"] == record.status == "ok"
    assert record.get("traceback") is None and "traceback" not in record   # only when failed
    assert "fraction" in record and "budget" in record
    with pytest.raises(KeyError):
        record["no_such_field"]
    assert repr(record).startswith(f"Record({OLD.stem!r}, ok: 0.")


def test_a_record_never_changes_in_place():
    record = Record.from_dict(old_json())
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "failed"
    with pytest.raises(TypeError):
        record["status"] = "failed"
    failed = record.replace(status="failed", error="RuntimeError: boom", metrics=None)
    assert record.ok and not failed.ok and failed.test_accuracy is None
    assert Record.from_dict(failed.to_dict()) == failed          # a failed record loads too


@pytest.mark.parametrize("change, says", [
    ({"schema": 2}, "schema 2, not 1"),
    ({"status": "done"}, "status 'done'"),
    ({"cell_id": "../x"}, "no valid 'cell_id'"),
    ({"metrics": {"test_accuracy": 1.5}}, "metrics.test_accuracy 1.5"),
])
def test_what_is_not_a_record_is_one_line_saying_why(change, says):
    with pytest.raises(RecordError) as info:
        Record.from_dict({**old_json(), **change})
    assert says in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RecordError, match="not a JSON object"):
        Record.from_dict([1, 2])


def test_a_record_file_is_read_only_under_its_own_name(tmp_path):
    copied = tmp_path / "other-name.json"
    shutil.copy(OLD, copied)
    record, problem = read_record_file(copied)
    assert record is None and "is not its file name" in problem
    record, problem = read_record_file(shutil.copy(OLD, tmp_path / OLD.name))
    assert problem is None and record.cell_id == OLD.stem
