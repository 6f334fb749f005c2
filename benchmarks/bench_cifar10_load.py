"""Loading CIFAR-10 as 60,000 JPEG files (``imagefolder:../shared/data/cifar10``): what a run
does before its first unit, the first time (empty cache) and the second (the decoded pixels
cached under CACHE/decoded), stage by stage:

* ``scan``: listing the class folders of train/ and test/ (the loader, ``spec.load``);
* ``digests``: the SHA-256 of every file's bytes, read serially in this process (the decoded
  cache's key; the duplicate check reuses them);
* ``hygiene``: the duplicate check (decode, pHash, the banded near-duplicate search), which
  decodes through the disk cache on the first run and reads it on the second;
* ``place``: the pixels of both splits for the device, taken from the cache's rows.

2 DataLoader workers, 32 px. The files are in the OS page cache (the sweeps read them): a cold
disk adds its read time to the first run. Skipped where ../shared/data/cifar10 is absent.

    python benchmarks/run.py -k cifar10
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import REPO, record

WORKERS = 2
CIFAR10 = Path(os.environ.get("SSLBENCH_CIFAR10", REPO.parent / "shared" / "data" / "cifar10"))

pytestmark = pytest.mark.skipif(not CIFAR10.is_dir(), reason=f"{CIFAR10} is absent")


def _run(cache_dir: Path, stages: dict[str, float]) -> None:
    """What ``Sweep.prepare`` does with a data set held whole, timed per stage."""
    from sslbench.data import DatasetRequest
    from sslbench._core.decoded import DecodedImages
    from sslbench._core.hygiene import find_duplicates
    from sslbench._core.plugins import PluginHost

    def stage(name, work):
        started = time.perf_counter()
        out = work()
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - started
        return out

    spec, _ = PluginHost.from_environment().dataset("imagefolder:x")
    data = stage("scan", lambda: spec.load(DatasetRequest(str(CIFAR10), 32, "data")))
    cache = DecodedImages(cache_dir)
    stage("digests", lambda: (cache.digests(data.train_images), cache.digests(data.test_images)))
    report = stage("hygiene", lambda: find_duplicates(data, WORKERS, decoded=cache))
    stage("place", lambda: (cache.decode(data.train_images, WORKERS),
                            cache.decode(data.test_images, WORKERS)))
    cache.release()
    stages["near_duplicate_groups"] = report.count("all")


def _bench(benchmark, tmp_path: Path, warm: bool, name: str) -> None:
    cache = tmp_path / "cache"
    if warm:
        _run(cache, {})
    stages: dict[str, float] = {}
    rounds = iter(range(100))
    benchmark.pedantic(
        _run, setup=lambda: ((cache if warm else tmp_path / f"empty{next(rounds)}", stages), {}),
        rounds=2, iterations=1)
    for key, seconds in stages.items():
        benchmark.extra_info[f"{key}_s" if key != "near_duplicate_groups" else key] = (
            seconds / 2 if key != "near_duplicate_groups" else seconds)
    record(benchmark, name, 60_000)


def test_cifar10_first_run(benchmark, tmp_path):
    _bench(benchmark, tmp_path, warm=False, name="cifar10_first")


def test_cifar10_second_run(benchmark, tmp_path):
    _bench(benchmark, tmp_path, warm=True, name="cifar10_second")
