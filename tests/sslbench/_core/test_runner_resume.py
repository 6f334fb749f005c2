"""Checkpoint cache, feature cache and resume: a second identical run trains nothing."""

import json

from conftest import FAST, FAST_OPTIONS

from sslbench._core.config import build_config
from sslbench._core.plugins import PluginHost
from sslbench._core.dispatch import run
from sslbench._core.runner import Sweep


def make_sweep(tmp_path, **overrides):
    options = dict(datasets=["digits"], tasks=["rotation"], fractions=[0.1, 1.0],
                   protocols=["linear", "finetune"], seeds=[0],
                   settings={**FAST, "resolution": 16}, options=FAST_OPTIONS,
                   out=str(tmp_path / "out"),
                   cache_dir=str(tmp_path / "cache"), device="cpu")
    options.update(overrides)
    config = build_config(**options)
    return Sweep(config, PluginHost.from_environment())


def test_second_identical_run_trains_nothing(tmp_path):
    first = make_sweep(tmp_path)
    records = run(first)
    assert len(records) == 8 and all(r["status"] == "ok" for r in records)
    assert first.checkpoints_trained == 1
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "records").iterdir()}

    second = make_sweep(tmp_path)
    assert all(cell.done for cell in second.cells)
    again = run(second)
    assert second.checkpoints_trained == 0 and second.features.extractions == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "records").iterdir()} == mtimes
    assert sorted(r["cell_id"] for r in again) == sorted(r["cell_id"] for r in records)


def test_resume_reruns_only_missing_cells_from_cached_checkpoint_and_features(tmp_path):
    run(make_sweep(tmp_path))
    missing = tmp_path / "out" / "records" / "digits__smallcnn__rotation__linear__f0.1__s0.json"
    before = json.loads(missing.read_text())
    missing.unlink()
    sweep = make_sweep(tmp_path)
    assert [c.id for c in sweep.cells if not c.done] == [missing.stem]
    run(sweep)
    assert sweep.checkpoints_trained == 0 and sweep.features.extractions == 0
    after = json.loads(missing.read_text())
    assert after["pretraining"]["cached"] is True
    assert after["metrics"]["test_accuracy"] == before["metrics"]["test_accuracy"]


def test_new_fraction_reuses_the_pretrained_checkpoint(tmp_path):
    run(make_sweep(tmp_path))
    sweep = make_sweep(tmp_path, fractions=[0.1, 0.5, 1.0])
    assert sum(not c.done for c in sweep.cells) == 4
    run(sweep)
    assert sweep.checkpoints_trained == 0


def test_changed_settings_rerun_cells_but_reuse_the_checkpoint(tmp_path):
    run(make_sweep(tmp_path))
    sweep = make_sweep(tmp_path, options={**FAST_OPTIONS,
                                          "finetune": {**FAST_OPTIONS["finetune"], "steps": 7}})
    # a protocol's option makes that protocol's records stale, and no other's
    assert not any(c.done for c in sweep.cells if c.protocol == "finetune")
    assert all(c.done for c in sweep.cells if c.protocol == "linear")
    run(sweep)
    assert sweep.checkpoints_trained == 0           # pretraining settings did not change
    sweep = make_sweep(tmp_path, settings={**FAST, "resolution": 16, "pretrain_epochs": 2})
    assert not any(c.done for c in sweep.cells)     # a sweep setting: every record is stale
    run(sweep)
    assert sweep.checkpoints_trained == 1


def test_split_files_are_written(tmp_path):
    run(make_sweep(tmp_path))
    splits = tmp_path / "out" / "splits"
    data = json.loads((splits / "digits.json").read_text())
    seed = json.loads((splits / "digits-seed0.json").read_text())
    train, val = seed["labeled_index"], seed["val_index"]
    # per-cell validation: the cell's validation images come out of its labeled images
    assert data["validation"] == "labeled" and data["val_index"] == []
    for f in ("0.1", "1"):
        assert set(train[f]).isdisjoint(val[f]) and 0 < len(val[f]) <= len(train[f])
    assert set(train["0.1"]) <= set(train["1"]) and set(val["0.1"]) <= set(val["1"])
    assert set(train["1"]) | set(val["1"]) == set(data["pool_index"])
    # the pretext hold-out is part of the pool; the duplicate report is in the split file
    assert set(data["pretext_holdout_index"]) <= set(data["pool_index"])
    assert {"duplicate_groups", "groups"} <= set(data["hygiene"])


def test_fixed_validation_split_stays_available(tmp_path):
    run(make_sweep(tmp_path, settings={**FAST, "resolution": 16, "validation": "fixed"}))
    splits = tmp_path / "out" / "splits"
    data = json.loads((splits / "digits.json").read_text())
    seed = json.loads((splits / "digits-seed0.json").read_text())
    assert data["val_index"] and set(data["pool_index"]).isdisjoint(data["val_index"])
    assert set(seed["labeled_index"]["1"]) == set(data["pool_index"])
    assert seed["val_index"]["1"] == []
    record = json.loads(next((tmp_path / "out" / "records").glob("*linear__f0.1*")).read_text())
    assert record["validation"] == "fixed" and record["n_val"] == len(data["val_index"])


def test_a_sweep_of_other_fractions_keeps_the_subsets_already_written(tmp_path):
    run(make_sweep(tmp_path, fractions=[0.1], protocols=["linear"]))
    run(make_sweep(tmp_path, fractions=[1.0], protocols=["linear"]))
    seed0 = json.loads((tmp_path / "out" / "splits" / "digits-seed0.json").read_text())
    assert sorted(seed0["labeled_index"]) == ["0.1", "1"]
    assert sorted(seed0["val_index"]) == ["0.1", "1"]
