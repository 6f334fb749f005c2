"""What an engine adds to a sweep's wall time: the same one-unit sweep (scratch on digits,
linear probe and fine-tuning on all labels, the quick preset: a unit of about a minute or
more on a CPU) through ``--executor local``, ``ray`` (a local Ray started by the command)
and ``slurm --slurm-cluster local`` (submitit's local executor: the pickling, the job
folder, a fresh Python process, as on Slurm), each a fresh ``sslbench run`` with its own
results folder and cache, 2 CPUs and 2 torch threads for the unit. The ratio to local is the
engine's overhead (start-up, a worker importing torch and sslbench, loading the data again,
waiting); the target is at most 1.10 once a unit runs longer than a minute. The records are
checked to be equal to the local run's."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FIGURES

SWEEP = ["run", "--quiet", "--tasks", "scratch", "--fractions", "1.0", "--seeds", "0",
         "--protocols", "linear,finetune"]
ENGINES = {"local": [], "ray": ["--executor", "ray", "--cpus-per-job", "2"],
           "submitit-local": ["--executor", "slurm", "--slurm-cluster", "local",
                              "--cpus-per-job", "2", "--wait"]}


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
    if engine != "local":
        pytest.importorskip("ray" if engine == "ray" else "submitit")
    result = benchmark.pedantic(lambda: _sweep(ENGINES[engine]), rounds=1, iterations=1)
    seconds, accuracies = result
    FIGURES[f"executor/{engine}"] = seconds
    FIGURES[f"executor/{engine}/records"] = accuracies
    benchmark.extra_info["wall_s"] = seconds
    if engine != "local" and "executor/local" in FIGURES:
        benchmark.extra_info["vs_local"] = seconds / FIGURES["executor/local"]
        benchmark.extra_info["same_records"] = accuracies == FIGURES["executor/local/records"]
