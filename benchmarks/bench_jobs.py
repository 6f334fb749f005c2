"""Two one-thread workers (``--jobs 2 --cpus-per-job 1``) against one process using both
cores (two torch threads): which finishes the same grid sooner on this 2-core machine
(issue 27, item 3).

The grid is several units, so that two workers have work side by side: the quick preset on
digits (the embedded data set), scratch and rotation, seeds 0-2 (6 units), budgets 10% and
100%, linear probe and fine-tuning (24 cells). Each configuration is a fresh ``sslbench
run`` with its own results folder and cache (no checkpoint or feature reused). The records
are not compared here (a record's numbers depend on its thread count; the suite checks that
``--jobs 2`` gives exactly one one-thread process's records); the grid is the same.

    python -m pytest benchmarks/bench_jobs.py --benchmark-only -n 0 \
        --benchmark-json=benchmarks/jobs.json

``SSLBENCH_BENCH_JOBS_DATASET=imagefolder:../shared/data/flowers`` runs it on flowers
instead (longer units, images streamed or held as the placement decides)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FIGURES

DATASET = os.environ.get("SSLBENCH_BENCH_JOBS_DATASET", "digits")
GRID = ["run", "--quiet", "--dataset", DATASET, "--tasks", "rotation", "--seeds", "0,1,2",
        "--fractions", "0.1,1.0", "--protocols", "linear,finetune"]
# name: (flags, OMP threads of the command)
LAYOUTS = {"one process, 2 threads": ([], 2),
           "--jobs 2, 1 thread each": (["--jobs", "2", "--cpus-per-job", "1"], 1)}


def _sweep(flags: list[str], threads: int) -> tuple[float, int, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "sslbench", *GRID, "--out", f"{tmp}/out",
                "--cache-dir", f"{tmp}/cache", *flags]
        t0 = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=env)
        seconds = time.perf_counter() - t0
        records = [json.loads(p.read_text()) for p in Path(tmp, "out", "records").glob("*.json")]
    assert records and all(r["status"] == "ok" for r in records)
    assert {r["torch_threads"] for r in records} == {threads}
    return seconds, len(records), sum(r["wall_time_s"] for r in records)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_jobs_against_one_process(benchmark, layout):
    flags, threads = LAYOUTS[layout]
    seconds, n, cells = benchmark.pedantic(lambda: _sweep(flags, threads), rounds=1,
                                           iterations=1)
    FIGURES[f"jobs/{layout}"] = seconds
    benchmark.extra_info.update({"wall_s": seconds, "records": n, "cells_s": cells,
                                 "dataset": DATASET})
    first = FIGURES.get(f"jobs/{next(iter(LAYOUTS))}")
    if first and layout != next(iter(LAYOUTS)):
        benchmark.extra_info["vs_one_process"] = seconds / first
