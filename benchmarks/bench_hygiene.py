"""The cost of the duplicate check (``sslbench._core.hygiene``) when a data set is loaded: one pass
over the train and test images (read once each: SHA-256 of the bytes, decode, pHash), then
the banded near-duplicate search, on the flowers JPEG files at 32 px with 2 DataLoader
workers (1,024 random JPEGs where flowers is absent). Compared in the same run with decoding
the same files alone, the pass a run makes anyway to place a data set on the device."""

from __future__ import annotations

import pytest
import torch
from conftest import FIGURES, FLOWERS, record

from sslbench.data import DatasetRequest, ImageData
from sslbench._core.hygiene import find_duplicates
from sslbench.images import ImageFiles, decode_all

WORKERS = 2


@pytest.fixture(scope="module")
def data(jpeg_paths) -> ImageData:
    from sslbench._core.plugins import PluginHost
    if FLOWERS.is_dir():
        spec, _ = PluginHost.from_environment().dataset("imagefolder:x")
        return spec.load(DatasetRequest(str(FLOWERS), 32, "data"))
    files = ImageFiles(jpeg_paths, 32)
    paths = files.paths
    labels = torch.zeros(len(paths), dtype=torch.int64)
    return ImageData("random", ["a"], files.subset(range(800)), labels[:800],
                     files.subset(range(800, 1024)), labels[800:])


def test_hygiene_pass(benchmark, data):
    n = len(data.train_labels) + len(data.test_labels)
    report = benchmark.pedantic(lambda: find_duplicates(data, WORKERS), rounds=3, iterations=1)
    benchmark.extra_info["duplicate_groups"] = report.count("all")
    record(benchmark, "hygiene", n)


def test_decode_only(benchmark, data):
    n = len(data.train_labels) + len(data.test_labels)
    benchmark.pedantic(lambda: (decode_all(data.train_images, WORKERS),
                                decode_all(data.test_images, WORKERS)), rounds=3, iterations=1)
    rate = record(benchmark, "hygiene_decode", n)
    if "hygiene" in FIGURES and rate == rate:
        benchmark.extra_info["hygiene_vs_decode"] = FIGURES["hygiene"] / rate


# ------------------------------------------------------------------ the decode cache (issue 15)
# What a run does with a data set it holds whole: the duplicate check (which decodes), then
# placing the same pixels. With sslbench._core.decoded the check decodes through the disk
# cache and placement takes the rows from memory; a second run (a new process: a new
# DecodedImages) reads the digests and the cached pixels instead of decoding.

def _load_for_a_run(data: ImageData, cache) -> None:
    find_duplicates(data, WORKERS, decoded=cache)
    cache.decode(data.train_images, WORKERS)
    cache.decode(data.test_images, WORKERS)
    cache.release()


def test_data_pass_first_run(benchmark, data, tmp_path):
    from sslbench._core.decoded import DecodedImages
    n = len(data.train_labels) + len(data.test_labels)
    rounds = iter(range(100))
    benchmark.pedantic(_load_for_a_run, setup=lambda: (
        (data, DecodedImages(tmp_path / f"empty{next(rounds)}")), {}), rounds=3, iterations=1)
    record(benchmark, "data_pass_first", n)


def test_data_pass_second_run(benchmark, data, tmp_path):
    from sslbench._core.decoded import DecodedImages
    n = len(data.train_labels) + len(data.test_labels)
    _load_for_a_run(data, DecodedImages(tmp_path / "warm"))
    benchmark.pedantic(_load_for_a_run, setup=lambda: (
        (data, DecodedImages(tmp_path / "warm")), {}), rounds=3, iterations=1)
    rate = record(benchmark, "data_pass_second", n)
    if "data_pass_first" in FIGURES and rate == rate:
        benchmark.extra_info["second_vs_first"] = rate / FIGURES["data_pass_first"]
