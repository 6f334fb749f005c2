"""Claim files (sslbench._core.claims): one holder at a time, a dead holder's claim taken
over, a waiter that finds the work done does not redo it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from sslbench._core import claims
from sslbench._core.claims import Claim, waiting_claim


def test_a_live_claim_excludes_and_release_frees(tmp_path):
    path = tmp_path / "unit.claim"
    first, second = Claim(path, "unit"), Claim(path, "unit")
    assert first.try_acquire()
    assert not second.try_acquire()                 # this process is alive
    assert json.loads(path.read_text())["pid"] == os.getpid()
    first.release()
    assert not path.exists()
    assert second.try_acquire()
    second.release()


def test_a_dead_holders_claim_is_taken_over(tmp_path):
    path = tmp_path / "unit.claim"
    code = ("import sys; from pathlib import Path; from sslbench._core.claims import Claim; "
            "assert Claim(Path(sys.argv[1])).try_acquire()")     # exits without releasing
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert json.loads(path.read_text())["pid"] != os.getpid()
    claim = Claim(path)
    assert claim.try_acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    claim.release()


def test_an_old_heartbeat_is_stale(tmp_path, monkeypatch):
    path = tmp_path / "unit.claim"
    path.write_text(json.dumps({"host": "another-node", "pid": 1, "token": "t"}))
    assert not Claim(path).try_acquire()            # another node, fresh: respected
    old = time.time() - claims.STALE_AFTER_S - 1
    os.utime(path, (old, old))
    assert Claim(path).try_acquire()                # no heartbeat for too long: taken over


def test_a_held_claim_keeps_its_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    path = tmp_path / "unit.claim"
    claim = Claim(path)
    assert claim.try_acquire()
    os.utime(path, (0, 0))
    time.sleep(0.3)
    assert time.time() - path.stat().st_mtime < 5
    claim.release()


def test_a_waiter_stops_when_the_work_appears(tmp_path):
    path, result = tmp_path / "ckpt.claim", tmp_path / "ckpt.pt"
    holder = Claim(path)
    assert holder.try_acquire()
    said = []

    def finish():
        time.sleep(0.3)
        result.write_text("done")
        holder.release()

    threading.Thread(target=finish).start()
    with waiting_claim(path, "checkpoint x", result.is_file, said.append, poll_s=0.05) as mine:
        assert mine is False                        # made meanwhile: read it, do not redo it
    assert said and "waiting for checkpoint x" in said[0]


def test_a_heartbeat_from_the_future_is_stale(tmp_path):
    """Another host's claim stamped an hour ahead would otherwise never expire: every run
    would skip its unit and exit 0."""
    path = tmp_path / "unit.claim"
    path.write_text(json.dumps({"host": "another-node", "pid": 1, "token": "t"}))
    soon = time.time() + claims.FUTURE_SKEW_S / 2
    os.utime(path, (soon, soon))
    assert not Claim(path).try_acquire()            # a clock a little ahead: respected
    later = time.time() + 3600
    os.utime(path, (later, later))
    assert Claim(path).try_acquire()


def test_a_claim_of_garbage_is_stale_after_a_grace(tmp_path):
    path = tmp_path / "unit.claim"
    path.write_text("\x00garbage")
    assert not Claim(path).try_acquire()            # a holder may be writing it right now
    old = time.time() - claims.GARBAGE_GRACE_S - 1
    os.utime(path, (old, old))
    assert Claim(path).try_acquire()


def test_a_pid_reused_by_another_process_is_not_a_live_holder(tmp_path):
    """The claim names a live pid of this host, but that process started after the claim's
    holder did: it is another process that was given the number."""
    import socket
    path = tmp_path / "unit.claim"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        real = claims._process_start(sleeper.pid)
        assert real is not None
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid,
                                    "started": real, "token": "t"}))
        assert not Claim(path).try_acquire()        # the very process: a live holder
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid,
                                    "started": real + "0", "token": "t"}))
        assert Claim(path).try_acquire()            # the same pid, another process
    finally:
        sleeper.kill()
        sleeper.wait()


def test_what_status_shows_of_a_claim_is_plain_text(tmp_path):
    """A claim is written by whoever shares the folder: the host and time it names reach
    the terminal without control characters (an escape sequence would be a terminal's
    command)."""
    import socket
    path = tmp_path / "unit.claim"
    path.write_text(json.dumps({"host": "node\x1b]0;pwned\x07", "pid": os.getpid(),
                                "since": "\x1b[2Jnow", "token": "t"}))
    # another host's fresh claim is live
    [holder] = claims.live_claims(tmp_path).values()
    assert holder["host"] == "node?]0;pwned?" and holder["since"] == "?[2Jnow"
    assert socket.gethostname() != holder["host"]
