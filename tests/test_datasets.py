"""Data set loaders on tiny files in the real on-disk formats, written here (no network).

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

from sslbench.data import DatasetRequest
from sslbench.errors import SSLBenchError
from sslbench._core.plugins import PluginHost

RES = 16


@pytest.fixture
def load(tmp_path):
    host = PluginHost.from_environment()

    def run(name, download=False):
        spec, argument = host.dataset(name)
        return spec.load(DatasetRequest(argument, RES, str(tmp_path), download=download))
    return run


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


def test_imagefolder_split_is_stratified_and_recorded(load, image_folder):
    data = load(f"imagefolder:{image_folder}")
    assert data.classes == ["cat", "dog", "fox"]
    assert len(data.train_labels) == 24 and len(data.test_labels) == 6
    assert torch.bincount(data.test_labels).tolist() == [2, 2, 2]
    assert len(data.provenance["test_files"]) == 6
    assert data.train_images.shape[1:] == (3, RES, RES)


def test_imagefolder_with_train_and_test_folders(load, tmp_path):
    from conftest import write_image_folder
    write_image_folder(tmp_path / "ds" / "train", per_class=4)
    write_image_folder(tmp_path / "ds" / "test", per_class=2, seed=1)
    data = load(f"imagefolder:{tmp_path / 'ds'}")
    assert len(data.train_labels) == 12 and len(data.test_labels) == 6


def test_digits_is_embedded(load):
    data = load("digits")
    assert data.num_classes == 10 and len(data.train_labels) + len(data.test_labels) == 1797
    assert data.train_images.shape[1:] == (3, RES, RES)


def test_image_folder_ignores_hidden_folders_and_follows_links_once(tmp_path):
    """A notebook's .ipynb_checkpoints is not a class; a symlink loop inside a class folder
    (daisy/up -> ..) and a second link to a file add nothing."""
    from conftest import write_image_folder
    root = write_image_folder(tmp_path / "imgs", classes=("daisy", "rose"), per_class=10)
    (root / ".ipynb_checkpoints").mkdir()
    (root / "daisy" / ".hidden.png").write_bytes((root / "daisy" / "000.png").read_bytes())
    os.symlink("..", root / "daisy" / "up")
    os.symlink(root / "rose" / "000.png", root / "rose" / "link.png")
    spec, argument = PluginHost.from_environment().dataset(f"imagefolder:{root}")
    data = spec.load(DatasetRequest(argument, 16, str(tmp_path)))
    assert data.classes == ["daisy", "rose"]
    assert len(data.train_labels) + len(data.test_labels) == 20


def test_16_bit_and_float_greyscale_keep_their_values(tmp_path):
    import numpy as np
    from PIL import Image

    from sslbench.images import decode_file
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")               # 16-bit greyscale PNG
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    x = decode_file(str(tmp_path / "deep.png"), 32).float()
    assert x.min() < 5 and x.max() > 250 and 100 < x.mean() < 155     # a ramp, not white
    Image.fromarray((ramp / 65535).astype(np.float32)).save(tmp_path / "float.tif")
    y = decode_file(str(tmp_path / "float.tif"), 32).float()
    assert (x - y).abs().max() <= 1


def test_links_out_of_the_data_set_are_followed(tmp_path):
    """Class folders made of links to images stored elsewhere are the usual way to build a
    subset: those are followed (a link into another class's folder is not)."""
    import os

    from conftest import write_image_folder
    store = write_image_folder(tmp_path / "store", classes=("daisy", "rose"), per_class=6)
    root = tmp_path / "subset"
    for name in ("daisy", "rose"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            os.symlink(store / name / f"{i:03d}.png", root / name / f"{i}.png")
    os.symlink(store / "daisy", root / "daisy" / "more")        # a linked folder
    os.symlink(root / "rose", root / "daisy" / "roses")          # another class: not followed
    spec, argument = PluginHost.from_environment().dataset(f"imagefolder:{root}")
    data = spec.load(DatasetRequest(argument, 16, str(tmp_path)))
    labels = torch.cat([data.train_labels, data.test_labels])
    assert (labels == 0).sum() == 6 and (labels == 1).sum() == 3
