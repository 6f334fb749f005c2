"""Duplicated images: found when a data set is loaded, reported once, written into the split
file, and removed by --dedup."""

import json
import shutil

import numpy as np
import torch
from conftest import FLOWERS, write_image_folder
from PIL import Image

from sslbench.data import ImageData
from sslbench._core.hygiene import deduplicate, find_duplicates, near_pairs, perceptual_hash


def folder_with_duplicates(root):
    """Three classes of 10 images, plus: a byte-identical copy of cat/000 filed as dog
    (a label conflict), and a re-encoded, slightly brightened copy of fox/003 as fox/099."""
    write_image_folder(root, per_class=10, size=24)
    shutil.copy(root / "cat" / "000.png", root / "dog" / "copy_of_cat.png")
    image = np.asarray(Image.open(root / "fox" / "003.png")).astype(np.int16)
    Image.fromarray(np.clip(image + 6, 0, 255).astype(np.uint8)).save(root / "fox" / "099.jpg",
                                                                      quality=95)
    return root


def test_perceptual_hash_is_robust_to_small_changes_and_tells_images_apart():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 8, 8, generator=g) * 255)
    x = torch.nn.functional.interpolate(x, size=32, mode="bilinear").to(torch.uint8)
    brighter = (x.int() + 5).clamp(0, 255).to(torch.uint8)
    h = perceptual_hash(torch.cat([x, brighter]))
    dist = lambda a, b: bin(int(a) ^ int(b)).count("1")  # noqa: E731
    assert dist(h[0], h[2]) <= 2 and dist(h[1], h[3]) <= 2 and dist(h[0], h[1]) > 10


def test_near_pairs_finds_every_pair_within_the_distance_and_no_other():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2 ** 63, 400, dtype=np.int64).astype(np.uint64)
    hashes[7] = hashes[3] ^ np.uint64(0b1011)            # 3 bits from hashes[3]
    hashes[9] = hashes[3] ^ np.uint64(0b11111)           # 5 bits from hashes[3]
    brute = {(i, j) for i in range(400) for j in range(i + 1, 400)
             if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 4}
    assert set(near_pairs(hashes, 4)) == brute and (3, 7) in brute and (3, 9) not in brute


def test_duplicates_across_splits_and_label_conflicts_are_found(tmp_path):
    from sslbench.data import DatasetRequest
    from sslbench._core.plugins import PluginHost
    root = folder_with_duplicates(tmp_path / "imgs")
    spec, argument = PluginHost.from_environment().dataset(f"imagefolder:{root}")
    data = spec.load(DatasetRequest(argument, 24, str(tmp_path)))
    report = find_duplicates(data)
    kinds = sorted(g.kind for g in report.groups)
    assert kinds == ["exact", "near"]
    exact = next(g for g in report.groups if g.kind == "exact")
    assert exact.conflicting and {m.name for m in exact.members} == {
        "cat/000.png", "dog/copy_of_cat.png"}
    assert "2 groups of duplicated images" in report.message()
    assert "1 with conflicting labels (cat/dog)" in report.message()


def test_dedup_keeps_test_copies_and_drops_label_conflicts():
    def image(v):
        return torch.full((3, 16, 16), v, dtype=torch.uint8)
    noise = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    train = torch.stack([noise[0], noise[1], noise[2], noise[3], image(9)])
    test = torch.stack([noise[0], noise[4], noise[5], noise[3]])
    data = ImageData("toy", ["a", "b"], train, torch.tensor([0, 0, 1, 0, 1]),
                     test, torch.tensor([0, 1, 1, 1]))
    report = find_duplicates(data)
    # train 0 = test 0 (same label); train 3 = test 3 (labels differ)
    assert sorted((g.cross_split, g.conflicting) for g in report.groups) == [
        (True, False), (True, True)]
    clean = deduplicate(data, report)
    assert len(clean.train_labels) == 3 and len(clean.test_labels) == 3
    assert not find_duplicates(clean).groups
    assert report.deduplicated == {"train": 2, "test": 1}


def test_the_sweep_reports_duplicates_once_and_dedup_removes_them(fast_run, tmp_path):
    root = folder_with_duplicates(tmp_path / "imgs")
    args = ("--dataset", f"imagefolder:{root}", "--tasks", "rotation", "--fractions", "1.0",
            "--protocols", "linear", "--split-seeds", "1")
    status, _, err = fast_run(*args)
    assert status == 0, err
    assert err.count("groups of duplicated images") == 1 and "--dedup drops them" in err
    split = json.loads((tmp_path / "results" / "splits" / "imgs-p1.json").read_text())
    assert split["hygiene"]["duplicate_groups"] == 2 and len(split["hygiene"]["groups"]) == 2
    record = json.loads(next((tmp_path / "results" / "records").glob("*")).read_text())
    assert record["data"]["hygiene"]["label_conflict_groups"] == 1
    status, _, err = fast_run(*args, "--dedup", out=tmp_path / "dedup")
    assert status == 0, err
    assert "--dedup dropped" in err
    record = json.loads(next((tmp_path / "dedup" / "records").glob("*")).read_text())
    assert record["data"]["hygiene"]["deduplicated"]["train"] + \
        record["data"]["hygiene"]["deduplicated"]["test"] == 3     # the conflict pair, one copy
    assert record["sweep"]["dedup"] is True


def test_flowers_duplicates_are_the_known_ones():
    """The flowers set has 6 byte-identical pairs, 4 of them filed as rose and as tulip."""
    import pytest
    if not FLOWERS.is_dir():
        pytest.skip(f"flowers data set not found at {FLOWERS}")
    from sslbench.data import DatasetRequest
    from sslbench._core.plugins import PluginHost
    spec, argument = PluginHost.from_environment().dataset(f"imagefolder:{FLOWERS}")
    report = find_duplicates(spec.load(DatasetRequest(argument, 32, "data")), workers=2)
    exact = [g for g in report.groups if g.kind == "exact"]
    assert len(exact) == 6 and sum(g.conflicting for g in exact) == 4
    assert {frozenset(report.classes[m.label] for m in g.members)
            for g in exact if g.conflicting} == {frozenset({"rose", "tulip"})}
