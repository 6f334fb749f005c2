"""Budgets that converge, and validation that fits the label budget it serves."""

import json

import numpy as np
import pytest
from sslbench_plugins.protocols.finetune import FineTune, budget, convergence

from sslbench._core.budgets import labeled_split, labeled_subset, val_count

LABELS = np.repeat(np.arange(5), [764, 1052, 784, 733, 984]) [: 3453]


def test_finetune_budget_scales_with_the_labeled_set():
    s = FineTune.for_preset("quick").options
    small, large = budget(s, 276), budget(s, 2764)
    assert small == s["min_steps"]                                 # the floor at few labels
    assert large == -(-s["epochs"] * 2764 // s["batch_size"])
    assert large * s["batch_size"] / 2764 >= s["epochs"]
    assert budget({**s, "steps": 300}, 2764) == 300                # explicit fixed budget


def curve(accs):
    return [{"step": 10 * (i + 1), "val_accuracy": a} for i, a in enumerate(accs)]


def test_a_run_chosen_at_its_last_check_beyond_noise_is_flagged():
    # the last check beats every earlier one by 3 points; se at 0.7 with 400 images: 2.3
    flags = convergence(curve([0.5, 0.6, 0.62, 0.63, 0.64, 0.66, 0.67, 0.70]), n_val=400)
    assert flags["chosen_at_last_check"] and flags["still_improving"] and not flags["converged"]


def test_a_run_rising_into_its_last_checks_is_flagged():
    flags = convergence(curve([0.5, 0.55, 0.58, 0.6, 0.59, 0.6, 0.70, 0.69]), n_val=400)
    assert not flags["chosen_at_last_check"] and flags["still_improving"]
    assert not flags["converged"]


def test_a_last_check_best_within_noise_is_a_plateau():
    """Chosen at the last check by 2 of 689 images: recorded, not called unconverged."""
    accs = [0.70, 0.73, 0.72, 0.721, 0.723, 0.734, 0.731, 0.733, 0.733, 0.737]
    flags = convergence(curve(accs), n_val=689)
    assert flags == {"converged": True, "chosen_at_last_check": True, "still_improving": False}


def test_an_early_spike_is_not_a_rise():
    accs = [0.6, 0.7, 0.731, 0.73, 0.737, 0.768, 0.739, 0.752, 0.75, 0.75]
    assert convergence(curve(accs), n_val=689)["converged"]


def test_a_plateau_is_converged():
    flags = convergence(curve([0.5, 0.6, 0.66, 0.67, 0.68, 0.67, 0.675, 0.67]), n_val=400)
    assert flags == {"converged": True, "chosen_at_last_check": False, "still_improving": False}


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 1.0])
def test_validation_comes_out_of_the_label_budget(fraction):
    train, val = labeled_split(LABELS, fraction, seed=3, val_share=0.2)
    budget = labeled_subset(LABELS, fraction, seed=3)
    assert set(train) | set(val) == set(budget) and not set(train) & set(val)
    assert len(val) <= len(train)                                  # never larger than it serves
    for c in range(5):
        k = int((LABELS[budget] == c).sum())
        assert int((LABELS[val] == c).sum()) == val_count(k, 0.2)  # stratified


def test_validation_and_training_parts_are_each_nested():
    parts = [labeled_split(LABELS, f, seed=0, val_share=0.2) for f in (0.1, 0.5, 1.0)]
    for (t1, v1), (t2, v2) in zip(parts, parts[1:]):
        assert set(t1) <= set(t2) and set(v1) <= set(v2)


def test_a_cells_validation_set_is_no_larger_than_its_labeled_set(fast_run, tmp_path):
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "0.1,1.0",
                              "--protocols", "linear,finetune")
    assert status == 0, err
    paths = sorted((tmp_path / "results" / "records").glob("*.json"))
    assert len(paths) == 2 * 2 * 2            # rotation and scratch, 2 fractions, 2 protocols
    for path in paths:
        record = json.loads(path.read_text())
        assert 0 < record["n_val"] <= record["n_train"]
        assert record["n_labeled"] == record["n_train"] + record["n_val"]
        assert record["validation"] == "labeled"


def test_checks_since_best_counts_from_the_first_best_check():
    from sslbench.training import checks_since_best
    assert checks_since_best([]) == 0
    assert checks_since_best([0.5, 0.6, 0.7]) == 0
    assert checks_since_best([0.5, 0.7, 0.6, 0.7]) == 2          # a tie is no improvement
    assert checks_since_best([0.9, 0.1, 0.2]) == 2


def test_a_stopped_run_is_converged_even_if_its_curve_looks_rising():
    rising = curve([0.5, 0.6, 0.62, 0.63, 0.64, 0.66, 0.67, 0.70])
    assert not convergence(rising, n_val=400)["converged"]
    assert convergence(rising, n_val=400, stopped_early=True)["converged"]


def test_early_stopping_stops_after_patience_checks_and_keeps_the_best_model(fast_run, tmp_path):
    """With a learning rate too small to change any prediction, validation accuracy is flat:
    the first check stays the best, and patience 2 stops the run at the third of 8 checks.
    The stopped run predicts every test image as the full run does (same chosen model), and
    its record says where it stopped and that the budget was not reached."""
    opts = ["--tasks", "rotation", "--protocols", "finetune", "--fractions", "1.0",
            "--opt", "finetune.steps=16", "--opt", "finetune.evals=8",
            "--opt", "finetune.lr=1e-12"]
    runs = {}
    for patience in (0, 2):
        out = tmp_path / f"p{patience}"
        status, _, err = fast_run(*opts, "--opt", f"finetune.patience={patience}", out=out)
        assert status == 0, err
        runs[patience] = {json.loads(p.read_text())["task"]: json.loads(p.read_text())
                          for p in (out / "records").glob("*.json")}
    for task in ("scratch", "rotation"):
        full, stopped = runs[0][task]["details"], runs[2][task]["details"]
        assert [p["step"] for p in full["curve"]] == [2, 4, 6, 8, 10, 12, 14, 16]
        assert full["last_step"] == 16 and full["budget_reached"]
        assert [p["step"] for p in stopped["curve"]] == [2, 4, 6]
        assert stopped["last_step"] == 6 and not stopped["budget_reached"]
        assert stopped["converged"] and stopped["chosen_step"] == full["chosen_step"] == 2
        assert stopped["curve"] == full["curve"][:3]
        assert (runs[2][task]["metrics"]["test_correct"]
                == runs[0][task]["metrics"]["test_correct"])
        assert runs[2][task]["options"]["protocol"]["patience"] == 2
