"""Watching a run: plain progress lines when the output is not a terminal, the run's log
under OUT/logs/, and ``sslbench status OUT`` (finished, failed, stale, running, missing
cells)."""

import json
import os
import socket
import subprocess
import sys

from conftest import FAST_FLAGS


def test_a_run_without_a_terminal_prints_lines_and_writes_its_log_and_status_lists_cells(
        cli, tmp_path):
    status, out, err = cli("run", "--out", str(tmp_path / "out"), "--cache-dir",
                           str(tmp_path / "cache"), "--resolution", "16", *FAST_FLAGS,
                           "--tasks", "rotation", "--fractions", "0.5,1.0",
                           "--protocols", "linear")
    assert status == 0, err
    # captured stderr is not a terminal: timestamped lines, no bars
    assert "sweep: 4 cells" in err
    assert "cell digits__smallcnn__rotation__linear__f1__s0: started" in err
    assert "cell digits__smallcnn__rotation__linear__f1__s0: done" in err
    assert "pretrain rotation" in err and "loss" in err and "left" in err
    assert "  linear probe " in err and "4/4" in err          # its stages, one line each
    (log,) = (tmp_path / "out" / "logs").glob("*.log")
    text = log.read_text()
    assert "sweep: 4 cells" in text and "digits__smallcnn__scratch__linear__f1__s0: done" in text
    assert log.stem == next((tmp_path / "out" / "time").glob("*.json")).stem  # one name per run
    # sslbench status: damage the folder, then ask
    records = tmp_path / "out" / "records"
    (records / "digits__smallcnn__scratch__linear__f0.5__s0.json").unlink()
    failed = records / "digits__smallcnn__rotation__linear__f0.5__s0.json"
    r = json.loads(failed.read_text())
    failed.write_text(json.dumps({**r, "status": "failed", "error": "boom: out of memory",
                                  "metrics": None}))
    stale = records / "digits__smallcnn__rotation__linear__f1__s0.json"
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "config_hash": "0" * 16}))
    status, out, err = cli("status", str(tmp_path / "out"))
    assert status == 0, err
    assert "8 cells" not in out and "has 4 cells: 1 finished, 1 failed, 1 stale" in out
    assert "1 missing" in out
    assert "failed  digits__smallcnn__rotation__linear__f0.5__s0: boom: out of memory" in out
    assert "missing digits__smallcnn__scratch__linear__f0.5__s0" in out
    assert "stale   digits__smallcnn__rotation__linear__f1__s0" in out
    # a live process (this one) claims the scratch unit, as a driver or a worker does before
    # it runs it: its cell without a record is running, not missing; a dead holder's claim
    # (a killed driver) is not shown
    from sslbench._core.claims import Claim
    claims = tmp_path / "out" / ".claims"
    claim = Claim(claims / "digits__smallcnn__scratch__s0.claim", "unit scratch")
    assert claim.try_acquire()
    try:
        code = ("import sys; from pathlib import Path; from sslbench._core.claims import "
                "Claim; assert Claim(Path(sys.argv[1])).try_acquire()")   # exits holding it
        subprocess.run([sys.executable, "-c", code,
                        str(claims / "digits__smallcnn__rotation__s0.claim")], check=True)
        status, out, err = cli("status", str(tmp_path / "out"))
    finally:
        claim.release()
    assert status == 0, err
    assert "1 stale (another configuration), 1 running, 0 missing" in out
    assert (f"running unit digits__smallcnn__scratch__s0 (1 cells left): process {os.getpid()}"
            f" on {socket.gethostname()} since ") in out
    assert "missing" not in out.split("\n", 1)[1] and "rotation__s0 (" not in out
    status, _, err = cli("status", str(tmp_path / "nowhere"))
    assert status == 2 and "does not exist" in err
