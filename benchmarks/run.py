"""Run the speed benchmarks and write benchmarks/RESULTS.md.

    python benchmarks/run.py                 # all benchmarks, writes RESULTS.md
    python benchmarks/run.py --no-write      # print only
    python benchmarks/run.py -k streaming    # a subset (arguments go on to pytest)

The figures, the machine (CPU model, cores, threads; GPU where there is one), the library
versions and this command go into RESULTS.md together.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    text = f"{cpu}; {os.cpu_count()} cores visible, torch uses {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f"; GPU: {torch.cuda.get_device_name()}"
    else:
        text += "; no GPU"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true")
    # every other argument goes on to pytest, in order (e.g. -k sweep)
    args, pytest_args = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
               "-o", "python_files=bench_*.py",
               f"--benchmark-json={out}", *pytest_args]
        status = subprocess.call(cmd, cwd=HERE.parent)
        if status != 0 or not out.exists():
            sys.exit(status or 1)
        data = json.loads(out.read_text())
    rows = []
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        rows.append((b["name"], b["stats"]["mean"], info))
    import timm
    import torch
    import torchvision

    import sslbench
    lines = ["| benchmark | mean s/round | figures |", "| --- | ---: | --- |"]
    for name, mean, info in rows:
        figures = ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in info.items())
        lines.append(f"| {name} | {mean:.3f} | {figures} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        (HERE / "RESULTS.generated.md").write_text(
            f"Machine: {machine()}\n\nVersions: sslbench {sslbench.__version__}, torch "
            f"{torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__},"
            f" Python {platform.python_version()}\n\nCommand: `python benchmarks/run.py`\n\n"
            + text + "\n")
        print(f"wrote {HERE / 'RESULTS.generated.md'}")


if __name__ == "__main__":
    main()
