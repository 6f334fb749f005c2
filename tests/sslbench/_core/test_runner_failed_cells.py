"""A failure inside one cell is recorded with its reason and the sweep goes on."""

import json

from conftest import NAN_TASK


def test_nan_loss_fails_its_cells_and_the_sweep_goes_on(fast_run, tmp_path):
    plugin = tmp_path / "exploding.py"
    plugin.write_text(NAN_TASK)
    status, out, err = fast_run("--plugin", str(plugin), "--tasks", "exploding,rotation",
                                "--fractions", "1.0")
    assert status == 1                      # finished, but with failed cells
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "records").iterdir()]
    failed = [r for r in records if r["status"] == "failed"]
    assert {r["task"] for r in failed} == {"exploding"} and len(failed) == 2
    assert all("pretraining failed: NonFiniteLoss: pretext loss of exploding" in r["error"]
               and "became nan" in r["error"] for r in failed)
    ok = [r for r in records if r["status"] == "ok"]
    assert {r["task"] for r in ok} == {"rotation", "scratch"} and len(ok) == 4
    assert "2 failed" in out
    table = [line for line in out.splitlines() if line.startswith("│ exploding")]
    assert table and "failed" in table[0]
