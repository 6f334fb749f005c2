"""Decoded images are cached by the content of their files (sslbench._core.decoded): a second
sweep on the same folder decodes nothing, and gets the same pixels and the same results."""

import json
import shutil

import pytest
import torch
from PIL import Image

import sslbench._core.decoded as decoded_module
from sslbench._core.atomic import safe_torch_load, torch_bytes
from sslbench._core.decoded import DecodedImages
from sslbench.images import ImageFiles, decode_all


@pytest.fixture
def decodes(monkeypatch):
    """How many images each run decoded (the cache's own decoding calls, counted)."""
    counted = []
    real = decoded_module.decode_all

    def counting(images, workers):
        counted.append(len(images))
        return real(images, workers)
    monkeypatch.setattr(decoded_module, "decode_all", counting)
    return counted


def sweep(fast_run, folder, out):
    status, _, err = fast_run("--dataset", f"imagefolder:{folder}", "--tasks", "rotation",
                              "--fractions", "1.0", "--protocols", "linear", out=out)
    assert status == 0, err
    records = {}
    for path in (out / "records").glob("*.json"):
        r = json.loads(path.read_text())
        records[r["cell_id"]] = r
    return records, err


def test_a_second_sweep_decodes_nothing_and_a_damaged_entry_is_decoded_again(fast_run, image_folder, tmp_path,
                                                            decodes):
    first, _ = sweep(fast_run, image_folder, tmp_path / "a")
    assert sum(decodes) == 30                    # 24 training and 6 test images, once each
    second, _ = sweep(fast_run, image_folder, tmp_path / "b")
    assert sum(decodes) == 30                    # nothing decoded again
    assert first.keys() == second.keys()
    for cell, record in first.items():
        assert record["metrics"]["test_correct"] == second[cell]["metrics"]["test_correct"]
        assert record["data"]["hygiene"] == second[cell]["data"]["hygiene"]
    # a damaged entry is named and decoded again, with the same results
    files = sorted((tmp_path / "cache" / "decoded").glob("*.pt"))
    assert len(files) == 2                                      # the training and test splits
    files[0].write_bytes(files[0].read_bytes()[:200])           # truncated
    third, err = sweep(fast_run, image_folder, tmp_path / "c")
    assert f"ignoring cache file '{files[0]}'" in err
    assert sum(decodes) > 30
    for cell, record in first.items():
        assert record["metrics"]["test_correct"] == third[cell]["metrics"]["test_correct"]


def test_an_edited_file_is_decoded_again(image_folder, tmp_path):
    paths = sorted(str(p) for p in image_folder.rglob("*.png"))
    before = DecodedImages(tmp_path / "decoded").decode(ImageFiles(paths, 16), 0)
    Image.new("RGB", (20, 20), (1, 2, 3)).save(paths[0])       # same name, new content
    again = DecodedImages(tmp_path / "decoded")
    after = again.decode(ImageFiles(paths, 16), 0)
    assert again.decoded == len(paths) and again.loaded == 0   # another key: decoded afresh
    assert torch.equal(after[1:], before[1:]) and not torch.equal(after[0], before[0])


def test_cached_pixels_whose_checksum_fails_are_decoded_again(image_folder, tmp_path):
    files = ImageFiles(sorted(str(p) for p in image_folder.rglob("*.png")), 16)
    warnings = []
    cache = DecodedImages(tmp_path / "decoded", warn=warnings.append)
    fresh = cache.decode(files, workers=0)
    path = next((tmp_path / "decoded").glob("*.pt"))
    entry = safe_torch_load(path)
    entry["images"][0, 0, 0, 0] ^= 1                          # one bit of one pixel
    path.write_bytes(torch_bytes(entry))        # a valid file checksum: the pixels' catches it
    again = DecodedImages(tmp_path / "decoded", warn=warnings.append)
    assert torch.equal(again.decode(files, workers=0), fresh)
    assert again.decoded == len(files) and again.loaded == 0
    assert any("do not match their checksum" in w and str(path) in w for w in warnings)
    assert torch.equal(fresh, decode_all(files, 0))


def test_a_subset_of_a_decoded_split_is_taken_from_memory(image_folder, tmp_path):
    """--dedup places a subset of the split the duplicate check decoded: no decoding again."""
    files = ImageFiles(sorted(str(p) for p in image_folder.rglob("*.png")), 16)
    cache = DecodedImages(None)
    whole = cache.decode(files, workers=0)
    part = cache.decode(files.subset([3, 1, 7]), workers=0)
    assert cache.decoded == len(files)
    assert torch.equal(part, whole[[3, 1, 7]])


def test_the_cache_does_not_hold_another_folders_pixels(image_folder, tmp_path):
    """Two folders with the same names but different content get different entries."""
    other = tmp_path / "other"
    shutil.copytree(image_folder, other)
    for p in other.rglob("*.png"):
        Image.new("RGB", (20, 20), (9, 9, 9)).save(p)
    cache = DecodedImages(tmp_path / "decoded")
    a = cache.decode(ImageFiles(sorted(str(p) for p in image_folder.rglob("*.png")), 16), 0)
    b = DecodedImages(tmp_path / "decoded").decode(
        ImageFiles(sorted(str(p) for p in other.rglob("*.png")), 16), 0)
    assert not torch.equal(a, b) and len(list((tmp_path / "decoded").glob("*.pt"))) == 2
