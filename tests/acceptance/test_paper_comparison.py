"""benchmarks/paper_comparison.py: sslbench's cells paired as RotNet's figure pairs its rows
(the frozen pretrained network with a conv head against a network trained from scratch),
beside the paper's numbers in the paper's units."""

import importlib.util

from conftest import REPO

from sslbench._core.budgets import Budget


def module():
    spec = importlib.util.spec_from_file_location(
        "paper_comparison", REPO / "benchmarks" / "paper_comparison.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def record(task, protocol, per_class, seed, acc):
    return {"task": task, "protocol": protocol, "seed": seed, "status": "ok",
            "budget": Budget.per_class(per_class).to_json(),
            "metrics": {"test_accuracy": acc}}


def test_rotation_nonlinear_is_paired_with_scratch_finetune_by_seed():
    m = module()
    records = [record("scratch", "finetune", 20, s, a) for s, a in ((0, 0.30), (1, 0.34))]
    records += [record("rotation", "nonlinear", 20, s, a) for s, a in ((0, 0.40), (1, 0.46))]
    records += [record("scratch", "nonlinear", 20, 0, 0.29)]
    table, gains = m.rotnet_table(records)
    row = table[table["labels per class"] == 20].iloc[0]
    assert row["RotNet: supervised NIN"] == "33.66" and row["RotNet: gain"] == "+30.97"
    assert row["sslbench: scratch, finetune"] == "32.0 ± 2.8 (n=2)"
    assert row["sslbench: gain (rotation nonlinear - scratch finetune)"].startswith("+11.0 [")
    assert "1 seed, not tested" in row["sslbench: gain (rotation - scratch, both nonlinear)"]
    paper_gain, ours = gains[20]
    assert abs(paper_gain - 30.97) < 1e-9 and ours.n == 2 and abs(ours.mean - 11.0) < 1e-9
    assert table[table["labels per class"] == 100].iloc[0]["sslbench: scratch, finetune"] == "—"


def test_uda_rows_read_labels_in_all_as_per_class_budgets():
    m = module()
    records = [record("scratch", "finetune", 25, 0, 0.40), record("uda", "finetune", 25, 0, 0.5)]
    table = m.uda_table(records)
    row = table[table["labels (per class)"] == "250 (25)"].iloc[0]
    assert row["USB: UDA"] == "94.88" and row["sslbench: uda, finetune"] == "50.0 (n=1)"
