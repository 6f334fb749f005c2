"""Budgets in the literature's units, end to end: ``--labels-per-class`` and ``--labels``
give nested, stratified subsets, written to the split files, and every record, report and
reconstructed command names the budget as it was given."""

import json

from sslbench._core.budgets import Budget
from sslbench._core.config import build_config


def test_budgets_in_labels_are_named_in_records_split_files_and_reports(fast_run, cli,
                                                                        tmp_path):
    status, _, err = fast_run("--tasks", "rotation", "--labels-per-class", "1,4",
                              "--labels", "30", "--protocols", "linear,nonlinear")
    assert status == 0, err
    out = tmp_path / "results"
    records = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert len(records) == 2 * 3 * 2 and all(r["status"] == "ok" for r in records.values())
    for r in records.values():
        budget = Budget.of_record(r)
        assert r["budget"] == budget.to_json() and "fraction" not in r
        assert f"__{budget.id_part}__" in r["cell_id"]
        per_class = {"c1": 1, "c4": 4, "n30": 3}[budget.key]       # digits: 10 classes
        assert r["n_labeled"] == 10 * per_class
        # 20% of each class's labels choose: none of 1, one of 3 or 4
        assert r["n_val"] == (0 if per_class == 1 else 10)
        assert r["chosen_on"] == ("validation" if per_class > 1 else
                                  "fixed in advance: no validation image (docs/evaluation.md)")
        if r["protocol"] == "nonlinear":
            assert r["details"]["chosen_on"] == ("validation" if per_class > 1 else "preset")
            # the quick preset's stage (the 8x8 one at 32 px; 2x2 at these tests' 16 px)
            assert r["details"]["chosen_stage"] == 3 and r["details"]["epochs"] == 2
    split = json.loads((out / "splits" / "digits-seed0.json").read_text())
    labeled = {k: set(split["labeled_index"][k]) | set(split["val_index"][k])
               for k in ("c1", "c4", "n30")}
    assert labeled["c1"] < labeled["n30"] < labeled["c4"]        # nested along one order
    status, report, err = cli("report", str(out), "--format", "markdown")
    assert status == 0, err
    for column in ("linear 1/class", "nonlinear 4/class", "linear 30 labels"):
        assert column in report
    assert "--labels-per-class 1,4 --labels 30" in report and "--fractions" not in report
    status, csv, _ = cli("report", str(out), "--format", "csv")
    assert status == 0 and "4/class" in csv and "30 labels" in csv


def test_toml_and_api_budgets_replace_the_default_fractions_and_combine():
    only = build_config({"labels-per-class": [100, 20]})
    assert only.fractions == [] and [b.label for b in only.budgets] == ["20/class",
                                                                        "100/class"]
    both = build_config(None, fractions=[0.5], labels=[250, 40], labels_per_class=[20])
    assert [b.label for b in both.budgets] == ["50%", "20/class", "40 labels", "250 labels"]
    assert [b.label for b in build_config().budgets] == ["10%", "100%"]     # the default
