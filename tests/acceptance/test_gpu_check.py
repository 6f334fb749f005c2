"""benchmarks/gpu_check.py: what it refuses without a GPU, and its estimate's arithmetic.
(Its measuring branches run with ``--device cpu --quick``, a few minutes of NIN on a CPU:
benchmarks/RESULTS.md has that run.)"""

import importlib.util

import pytest
import torch

from conftest import REPO


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check",
                                                  REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_a_gpu_it_is_one_line_and_exit_2(capsys, tmp_path):
    assert gpu_check().main(["--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpu_check: error: no CUDA device")
    assert not (tmp_path / "x.json").exists()


def test_the_paper_table_estimate_adds_up_the_papers_schedules():
    # 10 s an epoch, 100 conv-head steps/s, 50 supervised steps/s
    t = gpu_check().paper_table_hours(10.0, 100.0, 50.0, seeds=3)
    pretrain = 200 * 10.0
    conv = 2 * 5 * 100 * 391 / 100.0          # scratch and rotation, 5 budgets, 100 epochs
    supervised = 2 * 5 * 78_125 / 50.0
    assert t["per_seed_h"] == pytest.approx((pretrain + conv + supervised) / 3600)
    assert t["total_h"] == pytest.approx(3 * t["per_seed_h"])
