"""Shared pieces of the speed benchmarks (pytest-benchmark; not part of the test command).

Run them all and write RESULTS.md with ``python benchmarks/run.py``. Each benchmark stores
its throughput in ``benchmark.extra_info`` and in the session-wide ``FIGURES`` so that ratios
(sslbench vs. the naive pipeline, vs. the model-only ceiling) come from one run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

FIGURES: dict[str, float] = {}
REPO = Path(__file__).resolve().parents[1]
FLOWERS = Path(os.environ.get("SSLBENCH_FLOWERS", REPO.parent / "shared" / "data" / "flowers"))


@pytest.fixture(scope="session")
def flowers32():
    """The flowers training images at 32 px as a uint8 tensor (random data where absent)."""
    from sslbench.data import DatasetRequest
    from sslbench.images import decode_all, default_workers
    from sslbench._core.plugins import PluginHost
    if FLOWERS.is_dir():
        spec, _ = PluginHost.from_environment().dataset("imagefolder:x")
        data = spec.load(DatasetRequest(str(FLOWERS), 32, "data"))
        return decode_all(data.train_images, default_workers()), data.train_labels, "flowers"
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (3453, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.randint(0, 5, (3453,), generator=g), "random")


@pytest.fixture(scope="session")
def jpeg_paths(tmp_path_factory) -> list[str]:
    """The flowers JPEG files, or 1,024 random 128 px JPEGs written to a temporary folder."""
    if FLOWERS.is_dir():
        return sorted(str(p) for p in FLOWERS.rglob("*.jpg"))
    import numpy as np
    from PIL import Image
    folder = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(1024):
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def record(benchmark, name: str, images_per_round: int) -> float:
    """Store images/s of the benchmark just run (from its mean round time); nothing when
    benchmarking is disabled (``--benchmark-disable`` runs the code once, as a smoke test)."""
    if getattr(benchmark, "stats", None) is None:
        return float("nan")
    rate = images_per_round / benchmark.stats.stats.mean
    benchmark.extra_info["images_per_s"] = rate
    FIGURES[name] = rate
    return rate
