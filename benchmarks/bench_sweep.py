"""Wall time of a quick-preset sweep on the flowers image set, end to end through the CLI
(loading, pretraining, features, probes, fine-tuning, records). Opt-in, since it takes
minutes: ``SSLBENCH_BENCH_SWEEP=1 python benchmarks/run.py -k sweep``.
Default grid: rotation vs. scratch, fractions 0.1,0.5,1.0, one seed
(``SSLBENCH_BENCH_SWEEP_TASKS`` changes the tasks); timed with the images held in memory
(``--stream never``) and streamed from the JPEG files (``--stream always``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import FIGURES, FLOWERS


@pytest.mark.skipif(not os.environ.get("SSLBENCH_BENCH_SWEEP"), reason="opt-in: set SSLBENCH_BENCH_SWEEP=1")
@pytest.mark.skipif(not FLOWERS.is_dir(), reason=f"flowers not found at {FLOWERS}")
@pytest.mark.parametrize("stream", ["never", "always"])
def test_quick_sweep_wall_time(benchmark, tmp_path, stream):
    tasks = os.environ.get("SSLBENCH_BENCH_SWEEP_TASKS", "rotation")
    cmd = [sys.executable, "-m", "sslbench._core.cli", "run", "--quiet", "--dataset",
           f"imagefolder:{FLOWERS}", "--tasks", tasks, "--fractions", "0.1,0.5,1.0",
           "--seeds", "0", "--stream", stream, "--out", str(tmp_path / "out"),
           "--cache-dir", str(tmp_path / "cache")]

    def run():
        subprocess.run(cmd, check=True, capture_output=True)
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["command"] = " ".join(cmd[2:]).replace(str(tmp_path), "TMP")
    FIGURES[f"sweep/{stream}/seconds"] = benchmark.stats.stats.mean
