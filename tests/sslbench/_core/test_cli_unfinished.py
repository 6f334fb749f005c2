"""A run that ends with grid cells lacking a record says so: exit 1 when no live process is
running them (a garbage claim, a claim of an unrelated process), exit 0 naming the process
when a live driver is."""

import json
import socket
import subprocess
import sys

from sslbench._core import claims

ARGS = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")


def plant(tmp_path, unit, holder):
    folder = tmp_path / "results" / ".claims"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{unit}.claim").write_text(holder if isinstance(holder, str)
                                          else json.dumps(holder))


def test_a_complete_run_exits_0(fast_run):        # the control of the two cases below
    status, out, err = fast_run(*ARGS)
    assert status == 0 and "2 records" in out, err
    assert "no record" not in err


def test_cells_skipped_for_a_garbage_claim_fail_the_run(fast_run, tmp_path):
    plant(tmp_path, "digits__smallcnn__rotation__s0", "not json at all")
    status, out, err = fast_run(*ARGS)
    assert status == 1, (out, err)
    assert "1 cells of the grid have no record and no live process is running them" in err
    assert "Traceback" not in err


def test_cells_a_live_driver_runs_are_named_and_the_run_exits_0(fast_run, tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        plant(tmp_path, "digits__smallcnn__rotation__s0", {
            "host": socket.gethostname(), "pid": driver.pid, "token": "other-driver",
            "started": claims._process_start(driver.pid), "since": "2026-12-02T08:00:00"})
        status, out, err = fast_run(*ARGS)
    finally:
        driver.kill()
        driver.wait()
    assert status == 0, (out, err)
    assert (f"unit digits__smallcnn__rotation__s0 is being run by process {driver.pid} on "
            f"{socket.gethostname()}") in out
