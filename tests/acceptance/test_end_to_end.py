"""``sslbench run`` end to end on the embedded digits and, where present, the real flowers."""

import json

import pytest
from conftest import FLOWERS

import sslbench


def leaderboard_rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


def header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith("┃"))
    return [c.strip() for c in line.strip("┃").split("┃")]


def test_digits_rotation_sweep(fast_run, tmp_path):
    status, out, err = fast_run("--tasks", "rotation", "--fractions", "0.1,1.0")
    assert status == 0, err
    assert header(out) == ["task", "linear 10% (n=1)", "linear 100% (n=1)",
                           "finetune 10% (n=1)", "finetune 100% (n=1)", "pretext (held-out)",
                           "control", "pretraining"]
    rows = leaderboard_rows(out)
    assert list(rows) == ["labels (train+val)", "rotation", "scratch"]
    for task in ("rotation", "scratch"):
        for cell in rows[task][:4]:
            assert 0 <= float(cell.split()[0]) <= 100
    records = sorted((tmp_path / "results" / "records").glob("*.json"))
    assert len(records) == 8    # 2 tasks x 2 fractions x 2 protocols x 1 seed
    rec = json.loads(records[0].read_text())
    for key in ("sweep", "settings", "metrics", "wall_time_s", "peak_memory_mib", "device",
                "versions", "task_plan", "data"):
        assert key in rec
    m = rec["metrics"]
    assert len(m["confusion_matrix"]) == 10 and len(m["per_class_accuracy"]) == 10
    assert sum(map(sum, m["confusion_matrix"])) == rec["data"]["n_test"]
    assert len(m["test_correct"]) == rec["data"]["n_test"] == len(m["test_predictions"])
    assert m["test_correct"].count("1") == round(m["test_accuracy"] * rec["data"]["n_test"])
    rotation = json.loads(next(p for p in records if "rotation" in p.name).read_text())
    held = rotation["pretraining"]["heldout"]
    assert held["n"] == 4 * rotation["data"]["n_pretext_holdout"] and held["chance"] == 0.25
    control = rotation["pretraining"]["control"]
    assert control["name"] == "symmetric input" and control["accuracy"] == 0.25


def test_cpu_run_is_deterministic(tmp_path):
    from conftest import FAST, FAST_OPTIONS
    kwargs = dict(tasks=["rotation"], fractions=[0.5], seeds=[1], device="cpu",
                  settings={**FAST, "resolution": 16}, options=FAST_OPTIONS)
    a = sslbench.run_sweep(out=str(tmp_path / "a"), cache_dir=str(tmp_path / "ca"), **kwargs)
    b = sslbench.run_sweep(out=str(tmp_path / "b"), cache_dir=str(tmp_path / "cb"), **kwargs)
    a, b = a.to_frame(), b.to_frame()
    assert a["mean"].tolist() == b["mean"].tolist()
    assert set(a["task"]) == {"rotation", "scratch"} and len(a) == 4


def test_toml_config_and_flag_precedence(fast_run, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text('dataset = "digits"\ntasks = ["rotation"]\nfractions = [0.5]\n'
                      'protocols = ["linear", "knn"]\n[options.finetune]\nsteps = 3\n')
    status, out, err = fast_run("--config", str(config), "--fractions", "1.0")
    assert status == 0, err
    assert header(out)[1:3] == ["linear 100% (n=1)", "knn 100% (n=1)"]
    rec = json.loads(next((tmp_path / "results" / "records").glob("*knn*")).read_text())
    assert rec["fraction"] == 1.0 and rec["details"]["chosen_k"] in (1, 5, 10, 20)


@pytest.mark.skipif(not FLOWERS.is_dir(), reason=f"flowers data set not found at {FLOWERS}")
def test_flowers_image_folder(fast_run, tmp_path):
    status, out, err = fast_run("--dataset", f"imagefolder:{FLOWERS}", "--tasks", "rotation",
                                "--fractions", "0.1", "--protocols", "linear,finetune")
    assert status == 0, err
    assert list(leaderboard_rows(out)) == ["labels (train+val)", "rotation", "scratch"]
    split = json.loads((tmp_path / "results" / "splits" / "flowers.json").read_text())
    assert split["classes"] == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    assert len(split["provenance"]["test_files"]) + len(split["provenance"]["train_files"]) == 4317
