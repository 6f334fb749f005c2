"""What an engine adds to a sweep's wall time: the same one-unit sweep (scratch on digits,
linear probe and fine-tuning on all labels, the quick preset: a unit of about a minute or
more on a CPU) through ``--executor local``, ``ray`` (a local Ray started by the command)
and ``slurm --slurm-cluster local`` (submitit's local executor: the pickling, the job
folder, a fresh Python process, as on Slurm), each a fresh ``sslbench run`` with its own
results folder and cache, 2 CPUs and 2 torch threads for the unit. The ratio to local is the
engine's overhead (start-up, a worker importing torch and sslbench, loading the data again,
waiting); the target is at most 1.10 once a unit runs longer than a minute. The same with
three units in one sweep shows what of it is paid once. The records are checked to be equal
to the local run's."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FIGURES

SWEEP = ["run", "--quiet", "--tasks", "scratch", "--fractions", "1.0",
         "--protocols", "linear,finetune"]
RAY = ["--executor", "ray", "--cpus-per-job", "2"]
ENGINES = {"local": ["--seeds", "0"], "ray": [*RAY, "--seeds", "0"],
           "submitit-local": ["--executor", "slurm", "--slurm-cluster", "local",
                              "--cpus-per-job", "2", "--wait", "--seeds", "0"],
           # three units one after another (2 CPUs each on a 2-CPU Ray): Ray's start-up and
           # the worker's imports are paid once (a Ray worker is reused), as in a real sweep
           "local-3units": ["--seeds", "0,1,2"], "ray-3units": [*RAY, "--seeds", "0,1,2"]}


def _sweep(flags: list[str]) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "sslbench", *SWEEP, "--out", f"{tmp}/out",
                "--cache-dir", f"{tmp}/cache", *flags]
        t0 = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env={
            **__import__("os").environ, "OMP_NUM_THREADS": "2"})
        seconds = time.perf_counter() - t0
        accuracies = {p.stem: json.loads(p.read_text())["metrics"]["test_accuracy"]
                      for p in Path(tmp, "out", "records").glob("*.json")}
    return seconds, accuracies


@pytest.mark.parametrize("engine", list(ENGINES))
def test_executor_overhead(benchmark, engine):
    if not engine.startswith("local"):
        pytest.importorskip("submitit" if engine.startswith("submitit") else "ray")
    result = benchmark.pedantic(lambda: _sweep(ENGINES[engine]), rounds=1, iterations=1)
    seconds, accuracies = result
    FIGURES[f"executor/{engine}"] = seconds
    FIGURES[f"executor/{engine}/records"] = accuracies
    benchmark.extra_info["wall_s"] = seconds
    reference = "local-3units" if engine.endswith("3units") else "local"
    if engine != reference and f"executor/{reference}" in FIGURES:
        benchmark.extra_info["vs_local"] = seconds / FIGURES[f"executor/{reference}"]
        benchmark.extra_info["same_records"] = \
            accuracies == FIGURES[f"executor/{reference}/records"]
