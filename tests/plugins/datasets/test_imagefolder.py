"""Image folders (sslbench_plugins.datasets.imagefolder): splits, hidden folders, links."""

import os

import torch

from sslbench.data import DatasetRequest
from sslbench._core.plugins import PluginHost

RES = 16   # the load fixture's resolution (tests/conftest.py)


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


def test_a_decompression_bomb_in_a_class_folder_is_one_line(fast_run, image_folder):
    from PIL import Image
    Image.new("L", (20000, 20000)).save(image_folder / "cat" / "huge.png", optimize=True)
    status, _, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--tasks", "rotation",
                              "--fractions", "1.0", "--protocols", "linear")
    assert status == 2 and "huge.png" in err and "decompression bomb" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_extensions_are_torchvisions():
    from torchvision.datasets.folder import IMG_EXTENSIONS
    from sslbench_plugins.datasets.imagefolder import _extensions
    assert _extensions() == IMG_EXTENSIONS


def test_names_are_paths_below_the_folder_with_and_without_links(load, tmp_path):
    """The fast path (a prefix cut) gives what os.path.relpath gives; a link into the folder
    keeps its own name."""
    import os
    from conftest import write_image_folder
    root = write_image_folder(tmp_path / "set", per_class=3)
    os.symlink(root / "cat" / sorted(os.listdir(root / "cat"))[0], root / "dog" / "linked.png")
    data = load(f"imagefolder:{root}")
    files = data.provenance["train_files"] + data.provenance["test_files"]
    paths = data.train_images.paths + data.test_images.paths
    assert sorted(files) == sorted(os.path.relpath(p, root) for p in paths)
    assert all(not f.startswith(("/", "..")) for f in files)
