"""A budget of one label per class holds no validation image: every protocol then makes its
choices by a rule fixed in advance (docs/evaluation.md), says so in the record and the
report, and never fails or claims a choice "on validation"."""

import json


def test_cells_without_validation_images_use_the_fixed_rule(fast_run, cli, tmp_path):
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "0.005",
                              "--protocols", "linear,finetune,knn")
    assert status == 0, err
    records = [json.loads(p.read_text())
               for p in (tmp_path / "results" / "records").glob("*.json")]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    for r in records:
        assert r["n_val"] == 0 and r["metrics"]["val_accuracy"] is None
        assert r["chosen_on"].startswith("fixed in advance")
        assert r["details"]["chosen_on"] == "preset"
        assert "no validation image" in r["details"]["chosen"]
    linear = next(r for r in records if r["protocol"] == "linear")
    assert linear["details"]["chosen_stage"] == 4             # smallcnn's last stage
    assert linear["details"]["chosen_l2"] == 1e-3             # the median of [1e-3, 1e-1]
    tuned = next(r for r in records if r["protocol"] == "finetune")
    assert tuned["details"]["chosen_step"] == tuned["details"]["steps"]   # the last step
    status, out, err = cli("report", str(tmp_path / "results"), "--format", "markdown")
    assert status == 0, err
    assert "6 cells had no validation image" in out and "no validation image" in out


def test_cells_with_validation_images_choose_on_them(finished_sweep):      # the control
    paths = sorted((finished_sweep[0] / "records").glob("*.json"))
    assert len(paths) == 8
    for path in paths:
        r = json.loads(path.read_text())
        assert r["chosen_on"] == "validation" and r["details"]["chosen_on"] == "validation"
        assert r["n_val"] > 0 and 0 <= r["metrics"]["val_accuracy"] <= 1
