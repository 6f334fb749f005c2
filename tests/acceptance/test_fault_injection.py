"""Kill a real sweep process at random moments (SIGKILL: no clean-up runs) and rerun it until
it finishes. After every kill and at the end: each record is a whole JSON record of the
schema, no temporary file is left as a record, no two cells share a file; at the end the grid
is complete and its leaderboard equals that of a run never interrupted."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST_FLAGS, isolate_plugins

from sslbench._core.cli import main
from sslbench._core.record_checks import record_problem

# one task and one fraction keep the suite inside its time budget; the grid still has two
# units (a pretraining and scratch), each with a probe and a fine-tuning cell
ARGS = ["--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear,finetune",
        "--seeds", "0", "--resolution", "16", "--device", "cpu", "--quiet"]
CELLS = 2 * 1 * 2              # (scratch, rotation) x fractions x protocols


def sweep(out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "sslbench._core.cli", "run", *ARGS, *FAST_FLAGS,
                             "--out", str(out), "--cache-dir", str(cache)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def check_folder(out: Path) -> dict[str, dict]:
    records = {}
    folder = out / "records"
    for path in folder.glob("*") if folder.exists() else []:
        assert path.suffix == ".json" or path.name.startswith("."), path
        if path.suffix != ".json":
            continue                              # a temporary file of a killed write
        record = json.loads(path.read_text())
        assert record_problem(record) is None, path
        assert path.stem == record["cell_id"]     # one cell, one file
        records[path.stem] = record
    return records


def leaderboard(out: Path) -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "sslbench._core.cli", "report", str(out),
                             "--format", "csv"], capture_output=True, text=True, check=True)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    return [{k: r[k] for k in ("task", "protocol", "fraction", "mean", "n")} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's leaderboard, run in this process (a process start costs
    seconds of the suite) with one thread, as the killed commands have."""
    root = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp, pytest.raises(SystemExit) as exit_info:
            isolate_plugins(mp, tmp_path_factory.getbasetemp())
            main(["run", *ARGS, *FAST_FLAGS, "--out", str(root / "out"),
                  "--cache-dir", str(root / "cache")])
    finally:
        torch.set_num_threads(threads)
    assert exit_info.value.code in (0, None)
    return leaderboard(root / "out")


def kill_after_records(process: subprocess.Popen, out: Path, count: int, delay: float) -> bool:
    """Kill `process` `delay` seconds after `count` records exist; False if it ended first.
    Waiting for progress rather than for a share of a reference run's time keeps the kill
    inside the run however fast the machine is (a timed kill once raced the run's own end)."""
    folder = out / "records"
    while process.poll() is None and len(list(folder.glob("*.json")) if folder.exists() else []) < count:
        time.sleep(0.02)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return True


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])      # two kills at random moments, then the rerun
def test_killed_sweeps_resume_to_the_uninterrupted_leaderboard(reference, tmp_path, seed):
    rng = random.Random(seed)
    out, cache = tmp_path / "out", tmp_path / "cache"
    # the first kill comes just after the first of four records (three cells still to run,
    # so it cannot miss), the second at a random moment after the second
    for count in (1, 2):
        process = sweep(out, cache)
        killed = kill_after_records(process, out, count, rng.uniform(0.0, 0.5))
        assert killed or count > 1, "the sweep ended before its first kill"
        if not killed:
            assert process.returncode == 0, process.stderr.read().decode()
        check_folder(out)                         # whole records only, after every kill
    process = sweep(out, cache)
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    records = check_folder(out)
    assert len(records) == CELLS
    assert all(r["status"] == "ok" for r in records.values())
    assert leaderboard(out) == reference
