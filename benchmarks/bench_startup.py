"""How long the command line takes to start: ``sslbench --help``, ``sslbench list``, against
importing torch alone, each in a fresh Python process (what a user waits for). Heavy imports
(torch for ``--help``; timm, torchvision's data sets, scikit-learn, pandas, scipy and
matplotlib for ``list``) happen only where they are used; the benchmark also records which of
them each command imported."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FIGURES

HEAVY = ["torch", "timm", "torchvision", "sklearn", "pandas", "scipy", "matplotlib"]
PROBE = ("import sys, json\nfrom sslbench._core.cli import main\ntry:\n    main({argv!r})\n"
         "except SystemExit:\n    pass\nprint(json.dumps([m for m in {heavy!r} "
         "if m in sys.modules]), file=sys.stderr)\n")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def _command(benchmark, name: str, argv: list[str]) -> None:
    code = PROBE.format(argv=argv, heavy=HEAVY)
    imported = benchmark.pedantic(lambda: _run(code), rounds=5, iterations=1)
    FIGURES[name] = benchmark.stats.stats.median
    benchmark.extra_info["median_s"] = benchmark.stats.stats.median
    benchmark.extra_info["imported"] = " ".join(json.loads(imported)) or "none of them"


def test_import_torch(benchmark):
    benchmark.pedantic(lambda: _run("import torch"), rounds=5, iterations=1)
    FIGURES["torch"] = benchmark.stats.stats.median
    benchmark.extra_info["median_s"] = benchmark.stats.stats.median


def test_help(benchmark):
    _command(benchmark, "help", ["--help"])


def test_list(benchmark):
    _command(benchmark, "list", ["list"])
    if "torch" in FIGURES:
        benchmark.extra_info["beyond_torch_s"] = FIGURES["list"] - FIGURES["torch"]
