"""``sslbench run --dry-run`` estimates before running (sslbench._core.estimate): every unit
from a cost model calibrated on this machine (cached), refined by finished records; never
"0.0 min"; and it checks what the run checks first."""

import json
import re

import pytest

from sslbench._core import estimate as estimate_module


def spans(out):
    return re.findall(r"(\d+(?:\.\d+)?) (s|min|h)\b", out)


def test_a_grid_never_run_gets_a_finite_estimate_per_unit(fast_run, tmp_path):
    status, out, err = fast_run("--tasks", "rotation", "--fractions", "0.5,1.0",
                                "--protocols", "linear,finetune", "--dry-run")
    assert status == 0, err
    assert "2 units, 8 of 8 cells to run" in out and "0.0 min" not in out and "?" not in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("estimated ") and "for 2 units" in summary
    assert spans(summary) and all(float(v) > 0 for v, _ in spans(summary))
    for unit in ("digits__smallcnn__scratch__s0", "digits__smallcnn__rotation__s0"):
        line = next(l for l in out.splitlines() if unit in l)
        assert "model" in line and spans(line), line
    assert not (tmp_path / "results" / "records").exists()          # nothing ran
    assert list((tmp_path / "cache" / "calibration").glob("*.json"))


def test_the_calibration_is_measured_once_and_a_bad_file_remeasured(fast_run, tmp_path,
                                                                     monkeypatch):
    counts = []
    real = estimate_module.Calibration.__init__

    def counting(self, sweep):
        real(self, sweep)
        counts.append(self)
    monkeypatch.setattr(estimate_module.Calibration, "__init__", counting)
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "finetune",
            "--dry-run")
    assert fast_run(*args)[0] == 0
    assert counts[-1].measured == 3                  # pretraining, supervised, forward
    assert fast_run(*args)[0] == 0
    assert counts[-1].measured == 0                  # all from the cache
    for path in (tmp_path / "cache" / "calibration").glob("*.json"):
        path.write_text(json.dumps({"fast": "fast", "slow": -1}))   # not usable: remeasured
    assert fast_run(*args)[0] == 0
    assert counts[-1].measured == 3


def test_finished_records_refine_the_estimate(fast_run):
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    assert fast_run(*args)[0] == 0
    status, out, err = fast_run(*args, "--seeds", "0,1", "--dry-run")
    assert status == 0, err
    assert "2 units, 2 of 4 cells to run (2 finished)" in out
    line = next(l for l in out.splitlines() if "rotation__s1" in l)
    assert "records" in line                     # the seed-0 cells' and pretraining's times


def test_nothing_to_run_says_so(fast_run):
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    assert fast_run(*args)[0] == 0
    status, out, _ = fast_run(*args, "--dry-run")
    assert status == 0 and "nothing to run" in out and "0.0" not in out


@pytest.mark.parametrize("dataset, message", [
    ("imagefolder:{tmp}/nowhere", "does not exist"),
    ("cifar10", "pass --download"),
])
def test_a_dry_run_checks_what_the_run_checks_first(fast_run, tmp_path, dataset, message):
    status, _, err = fast_run("--dataset", dataset.format(tmp=tmp_path), "--tasks", "rotation",
                              "--data-dir", str(tmp_path / "data"), "--dry-run")
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_durations_read_as_amounts():
    assert estimate_module.duration(0.2) == "1 s"
    assert estimate_module.duration(600) == "10 min"
    assert estimate_module.span(30, 4000) == "30 s to 67 min"
