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
from conftest import FAST_FLAGS

from sslbench._core.records import record_problem

# one fraction keeps the suite inside its time budget; the grid still has three units (two
# pretrainings and scratch), each with a probe and a fine-tuning cell
ARGS = ["--tasks", "rotation,exemplar", "--fractions", "1.0", "--protocols",
        "linear,finetune", "--seeds", "0", "--resolution", "16",
        "--task-opt", "exemplar.num_exemplars=50", "--device", "cpu", "--quiet"]
CELLS = 3 * 1 * 2              # (scratch, rotation, exemplar) x fractions x protocols


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
    root = tmp_path_factory.mktemp("reference")
    started = time.perf_counter()
    process = sweep(root / "out", root / "cache")
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    return leaderboard(root / "out"), time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])      # two kills at random moments, then the rerun
def test_killed_sweeps_resume_to_the_uninterrupted_leaderboard(reference, tmp_path, seed):
    expected, duration = reference
    rng = random.Random(seed)
    out, cache = tmp_path / "out", tmp_path / "cache"
    kills = 0
    for attempt in range(6):
        process = sweep(out, cache)
        try:
            process.wait(timeout=rng.uniform(0.3, 0.8) * duration if attempt < 2 else 300)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL          # it was killed, not finished
            kills += 1
            check_folder(out)                     # whole records only, after every kill
            continue
        assert process.returncode == 0, process.stderr.read().decode()
        break
    # the first attempt is stopped before 80% of an uninterrupted run's time: at least that
    # one kill happened (a resumed second attempt may finish before its own)
    assert kills >= 1
    records = check_folder(out)
    assert len(records) == CELLS
    assert all(r["status"] == "ok" for r in records.values())
    assert leaderboard(out) == expected
