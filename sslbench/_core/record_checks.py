"""The checks a record file passes before anything reads it.

A record is input from whoever wrote the results folder (a shared folder, a download): every
field a command reads is checked here for its type and range, on the JSON object as read, so
that nothing downstream trusts it. :meth:`sslbench.record.Record.from_dict` calls
:func:`record_problem`; task plugins' published ``references`` pass :func:`references_problem`.
"""

from __future__ import annotations

import math
from typing import Any

from .budgets import Budget
from .names import SAFE_NAME

RECORD_SCHEMA = 1
"""The version of the record format (public as :data:`sslbench.record.RECORD_SCHEMA`)."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _share(value: Any) -> bool:
    """A finite number in [0, 1] (an accuracy, a chance level)."""
    return _number(value) and 0 <= value <= 1


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional(record: dict, key: str, kind: type | tuple) -> bool:
    return record.get(key) is None or (isinstance(record[key], kind)
                                       and not isinstance(record[key], bool))


def _budget_problem(record: dict[str, Any]) -> str | None:
    """A record's label budget: ``budget`` (kind, value; sslbench 0.5) where present, and
    ``fraction`` where the budget is one (records before 0.5 hold only that)."""
    fraction = record.get("fraction")
    if "fraction" in record or "budget" not in record:
        if not (_number(fraction) and 0 < fraction <= 1):
            return f"fraction {fraction!r} is not a number in (0, 1]"
    if "budget" not in record:
        return None
    budget = record["budget"]
    if not isinstance(budget, dict) or not isinstance(budget.get("kind"), str):
        return "budget is not a table with a 'kind'"
    value = budget.get("value")
    try:
        parsed = Budget(budget["kind"], value if _number(value) else float("nan"))
    except (ValueError, TypeError) as exc:
        return f"budget {budget!r}: {exc}"
    if parsed.kind == "fraction" and fraction != parsed.value:
        return f"budget {budget!r} and fraction {fraction!r} disagree"
    return None


def record_problem(record: Any) -> str | None:
    """Why ``record`` is not a result record this version can read, or None.

    A record is input from whoever wrote the folder (a shared results folder, a download):
    every field a command reads is checked for its type and range here, so that nothing
    downstream trusts it: names that become file names are safe file names, accuracies are
    finite and in [0, 1], budgets of a known kind and in range, counts whole and not negative."""
    if not isinstance(record, dict):
        return f"not a JSON object but a {type(record).__name__}"
    if record.get("schema") != RECORD_SCHEMA:
        return f"schema {record.get('schema')!r}, not {RECORD_SCHEMA}"
    for key in ("cell_id", "backbone", "task", "protocol"):
        if not isinstance(record.get(key), str) or not SAFE_NAME.match(record[key]):
            return f"no valid {key!r} (a name of letters, digits and _.+-)"
    if not isinstance(record.get("dataset"), str) or not record["dataset"].strip():
        return "no valid 'dataset'"
    problem = _budget_problem(record)
    if problem:
        return problem
    for key in ("seed", "split_seed"):
        if (key == "seed" or key in record) and not _count(record.get(key)):
            return f"{key} {record.get(key)!r} is not a whole number >= 0"
    if record.get("status") not in ("ok", "failed"):
        return f"status {record.get('status')!r} is neither 'ok' nor 'failed'"
    for key, kind in (("sweep", dict), ("settings", dict), ("options", dict),
                      ("plugins", dict), ("data", dict), ("details", dict),
                      ("pretraining", dict), ("task_plan", dict), ("references", list),
                      ("config_hash", str), ("finished_at", str), ("error", str),
                      ("preset", str), ("protocol_summary", str), ("traceback", str)):
        if not _optional(record, key, kind):
            return f"{key!r} is a {type(record[key]).__name__}, not a {kind.__name__}"
    for key in ("n_train", "n_val", "n_labeled"):
        if record.get(key) is not None and not _count(record[key]):
            return f"{key} {record[key]!r} is not a whole number >= 0"
    for key in ("wall_time_s",):
        if record.get(key) is not None and not (_number(record[key]) and record[key] >= 0):
            return f"{key} {record[key]!r} is not a number >= 0"
    problem = (_sweep_problem(record.get("sweep") or {})
               or _pretraining_problem(record.get("pretraining") or {})
               or references_problem(record.get("references") or []))
    if problem:
        return problem
    if record["status"] == "ok":
        return _metrics_problem(record.get("metrics"))
    return None


def _sweep_problem(sweep: dict) -> str | None:
    for key in ("datasets", "backbones", "tasks", "protocols", "plugins"):
        value = sweep.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            return f"sweep.{key} is not a list of names"
    for key in ("settings", "options", "task_options", "preset_settings"):
        if sweep.get(key) is not None and not isinstance(sweep[key], dict):
            return f"sweep.{key} is not a table"
    return None


def _pretraining_problem(pre: dict) -> str | None:
    for part in ("heldout", "control"):
        value = pre.get(part)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"pretraining.{part} is not a table"
        for key in ("accuracy", "chance"):
            if key in value and value[key] is not None and not _share(value[key]):
                return f"pretraining.{part}.{key} {value[key]!r} is not a number in [0, 1]"
    if pre.get("seconds") is not None and not (_number(pre["seconds"]) and pre["seconds"] >= 0):
        return f"pretraining.seconds {pre['seconds']!r} is not a number >= 0"
    if pre.get("checkpoint") is not None and not (isinstance(pre["checkpoint"], str)
                                                  and SAFE_NAME.match(pre["checkpoint"])):
        return "pretraining.checkpoint is not a checkpoint id"
    return None


def references_problem(references: Any) -> str | None:
    """Why a task's published ``references`` (in its class, and copied into every record of
    its row) cannot be shown beside measured numbers, or None: a list of tables, each with a
    numeric ``accuracy`` in percent, [0, 100], and text where it names something."""
    if not isinstance(references, (list, tuple)):
        return f"references must be a list of tables, not a {type(references).__name__}"
    for ref in references:
        if not isinstance(ref, dict):
            return f"a reference must be a table (dict), not a {type(ref).__name__}"
        if not (_number(ref.get("accuracy")) and 0 <= ref["accuracy"] <= 100):
            return (f"reference {ref.get('paper', '?')!r} has accuracy {ref.get('accuracy')!r}: "
                    "a number of percent in [0, 100]")
        for key in ("paper", "dataset", "backbone", "protocol", "source"):
            if key in ref and not isinstance(ref[key], str):
                return f"reference {ref.get('paper', '?')!r}: {key} must be text"
    return None


def _metrics_problem(metrics: Any) -> str | None:
    if not isinstance(metrics, dict) or "test_accuracy" not in metrics:
        return "a finished record without metrics.test_accuracy"
    if not _share(metrics["test_accuracy"]):
        return f"metrics.test_accuracy {metrics['test_accuracy']!r} is not a number in [0, 1]"
    val = metrics.get("val_accuracy")
    if val is not None and not (_share(val) or (isinstance(val, float) and math.isnan(val))):
        return f"metrics.val_accuracy {val!r} is not a number in [0, 1]"
    for key in ("test_accuracy_by", "per_class_accuracy"):
        values = metrics.get(key)
        if values is not None and not (isinstance(values, dict)
                                       and all(_share(v) for v in values.values())):
            return f"metrics.{key} holds a value that is not a number in [0, 1]"
    correct = metrics.get("test_correct")
    if correct is not None and not (isinstance(correct, str) and set(correct) <= {"0", "1"}):
        return "metrics.test_correct is not a string of 0 and 1"
    predictions = metrics.get("test_predictions")
    if predictions is not None and not (isinstance(predictions, list)
                                        and all(_count(p) for p in predictions)):
        return "metrics.test_predictions is not a list of class indices"
    matrix = metrics.get("confusion_matrix")
    if matrix is not None and not (isinstance(matrix, list) and all(
            isinstance(row, list) and all(_count(v) for v in row) for row in matrix)):
        return "metrics.confusion_matrix is not a table of counts"
    return None
