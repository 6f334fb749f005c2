"""The times a new user meets first, measured as the README states them: the default sweep
(`sslbench run`, fresh results folder and cache), the fast test lane (`python -m pytest -m
"not sweep"`) and the full suite (`python -m pytest`), each as wall time and CPU time of the
command and everything it starts. Run it on an idle machine, inside the environment the
README's install command made (the install's own time is what `.ci/run` prints)::

    python benchmarks/setup_times.py            # all three, about 15 minutes on 2 cores
    python benchmarks/setup_times.py sweep      # one of: sweep, fast, full

It prints a markdown table (the README and benchmarks/RESULTS.md quote it) and the machine.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def commands(scratch: Path) -> dict[str, tuple[str, list[str]]]:
    return {
        "sweep": ("sslbench run (the default sweep; fresh --out and cache)",
                  [sys.executable, "-m", "sslbench", "run", "--out", str(scratch / "out"),
                   "--cache-dir", str(scratch / "cache"), "--quiet"]),
        "fast": ('python -m pytest -m "not sweep" (the fast lane)',
                 [sys.executable, "-m", "pytest", "-q", "-m", "not sweep"]),
        "full": ("python -m pytest (the full suite, as CI runs it)",
                 [sys.executable, "-m", "pytest", "-q"]),
    }


def measure(argv: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the command and its children, exit status)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(round(seconds % 60)):02d} s"


def main(which: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = commands(Path(tmp))
        rows = []
        for name in which or list(table):
            label, argv = table[name]
            wall, cpu, status = measure(argv)
            rows.append(f"| {label} | {minutes(wall)} | {minutes(cpu)} | {status} |")
            print(rows[-1], flush=True)
    load = os.getloadavg()
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average before the last command ended {load[0]:.2f}; "
          f"python {platform.python_version()}\n")
    print("| command | wall | CPU | exit |\n| --- | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
