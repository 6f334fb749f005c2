"""torchvision data sets (sslbench_plugins.datasets.torchvision_sets) on tiny files in the real on-disk formats, written here (no network).

torchvision verifies the official files' MD5 sums; tiny files cannot match them, so these
tests replace only that check (``check_integrity``) with an existence check.
"""

import os
import pickle

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from sslbench.errors import SSLBenchError

RES = 16   # the load fixture's resolution (tests/conftest.py)


@pytest.fixture(autouse=True)
def existence_instead_of_md5(monkeypatch):
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.flowers102 as flowers102
    import torchvision.datasets.stl10 as stl10
    import torchvision.datasets.svhn as svhn
    for module in (cifar, stl10, svhn, flowers102):
        monkeypatch.setattr(module, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def _pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _pickle(folder / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                "labels": list(range(n))})
    _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def write_cifar100(root, n=4):
    folder = root / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        _pickle(folder / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                "fine_labels": [0, 1, 2, 99][:n]})
    _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})


def test_cifar10(load, tmp_path):
    write_cifar10(tmp_path)
    data = load("cifar10")
    assert data.train_images.shape == (30, 3, RES, RES) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (6, 3, RES, RES)
    assert data.classes[:2] == ["c0", "c1"] and data.train_labels[:6].tolist() == list(range(6))


def test_cifar100(load, tmp_path):
    write_cifar100(tmp_path)
    data = load("cifar100")
    assert data.num_classes == 100 and data.train_labels.tolist() == [0, 1, 2, 99]


def test_stl10_unlabeled_split_joins(load, tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 3), ("unlabeled", 5)):
        rng.integers(0, 256, n * 3 * 96 * 96, dtype=np.uint8).tofile(folder / f"{split}_X.bin")
        if split != "unlabeled":
            (np.arange(n, dtype=np.uint8) % 10 + 1).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"k{i}" for i in range(10)))
    (folder / "fold_indices.txt").write_text("0 1\n")
    data = load("stl10")
    assert data.unlabeled_images.shape == (5, 3, RES, RES)
    assert data.train_labels.tolist() == [0, 1, 2, 3] and data.classes[0] == "k0"


def test_svhn_label_ten_is_digit_zero(load, tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("test", 3)):
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat",
                         {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                          "y": np.array([[10], [1], [2], [3], [4]][:n], dtype=np.uint8)})
    data = load("svhn")
    assert data.train_labels.tolist() == [0, 1, 2, 3, 4]
    assert data.train_images.shape == (5, 3, RES, RES)


def test_flowers102_train_and_val_form_the_training_split(load, tmp_path):
    folder = tmp_path / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    for i in range(1, 7):
        Image.new("RGB", (40, 30), (i * 30, 0, 0)).save(folder / "jpg" / f"image_{i:05d}.jpg")
    scipy.io.savemat(folder / "imagelabels.mat", {"labels": np.array([1, 2, 1, 2, 1, 2])})
    scipy.io.savemat(folder / "setid.mat", {"trnid": np.array([1, 2]), "valid": np.array([3, 4]),
                                            "tstid": np.array([5, 6])})
    data = load("flowers102")
    assert len(data.train_labels) == 4 and len(data.test_labels) == 2
    assert data.train_labels.tolist() == [0, 1, 0, 1]
    assert data.train_images.shape == (4, 3, RES, RES)


def test_missing_download_says_how_to_get_it(load):
    with pytest.raises(SSLBenchError, match="cifar10 not found.*--download"):
        load("cifar10")
