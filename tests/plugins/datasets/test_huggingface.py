"""Hugging Face data sets (sslbench_plugins.datasets.huggingface): folders written here by
``save_to_disk`` of the ``datasets`` library itself, read offline; a hub name that is not in
the library's cache is one line asking for --download (no network in tests)."""

import json

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")
datasets.disable_progress_bars()         # the fixtures' save_to_disk would fill stderr


def pictures(n, seed, size=20):
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for i in range(n):
        c = i % 3
        pixels = np.zeros((size, size + 4, 3), np.uint8)
        pixels[..., c] = 200
        pixels = np.clip(pixels + rng.normal(0, 30, pixels.shape), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(pixels))
        labels.append(c)
    return out, labels


def split(n, seed, label_feature=None):
    images, labels = pictures(n, seed)
    features = datasets.Features({
        "img": datasets.Image(),
        "fine_label": label_feature or datasets.ClassLabel(names=["red", "green", "blue"]),
        "note": datasets.Value("string")})
    return datasets.Dataset.from_dict({"img": images, "fine_label": labels,
                                       "note": [f"n{i}" for i in range(n)]}, features=features)


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "tiny"
    datasets.DatasetDict({"train": split(24, 0), "test": split(9, 1)}).save_to_disk(str(folder))
    return folder


def test_a_saved_dataset_dict_loads_with_its_columns_found(load, saved):
    data = load(f"hf:{saved}")
    assert data.classes == ["red", "green", "blue"]
    assert data.train_images.shape == (24, 3, 16, 16) and len(data.test_labels) == 9
    assert data.train_labels.tolist() == [i % 3 for i in range(24)]
    red = data.train_images[data.train_labels == 0].float().mean((0, 2, 3))
    assert red[0] > red[1] + 50 and red[0] > red[2] + 50          # the pixels, in RGB order
    assert data.provenance["image_column"] == "img"
    assert data.provenance["label_column"] == "fine_label"


def test_a_single_saved_split_gets_a_stratified_test_split(load, tmp_path):
    split(30, 0).save_to_disk(str(tmp_path / "one"))
    data = load(f"hf:{tmp_path / 'one'}")
    assert len(data.train_labels) == 24 and data.test_labels.bincount().tolist() == [2, 2, 2]
    assert data.provenance["test_split"] == "stratified 20%"


def test_a_sweep_runs_on_a_saved_dataset(fast_run, saved, tmp_path):
    status, _, err = fast_run("--dataset", f"hf:{saved}", "--tasks", "rotation",
                              "--fractions", "1.0", "--protocols", "linear")
    assert status == 0, err
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "records").glob("*")]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    assert records[0]["data"]["n_test"] == 9


def test_string_labels_and_chosen_columns(load, tmp_path):
    images, labels = pictures(12, 0)
    datasets.Dataset.from_dict({"a": images, "b": images, "kind": [str(x) for x in labels]},
                               features=datasets.Features({"a": datasets.Image(),
                                                           "b": datasets.Image(),
                                                           "kind": datasets.Value("string")})
                               ).save_to_disk(str(tmp_path / "s"))
    from sslbench.data import DatasetRequest
    from sslbench._core.plugins import PluginHost
    from sslbench.errors import SSLBenchError
    spec, argument = PluginHost.from_environment().dataset(f"hf:{tmp_path / 's'}")
    with pytest.raises(SSLBenchError, match="several image columns .a, b.*hf.image_column"):
        spec.load(DatasetRequest(argument, 16, str(tmp_path), options=spec.resolve(None, {})))
    opts = spec.resolve(None, {"image_column": "b", "label_column": "kind"})
    data = spec.load(DatasetRequest(argument, 16, str(tmp_path), options=opts))
    assert data.classes == ["0", "1", "2"]


def test_bad_hf_input_is_one_line(cli, tmp_path, saved):
    cases = [(f"hf:{tmp_path / 'nowhere'}", "neither a folder nor a data set in the Hugging "
                                            "Face cache; pass --download"),
             (f"hf:{saved / 'dataset_dict.json'}", "is not a folder written by save_to_disk")]
    for dataset, message in cases:
        status, _, err = cli("run", "--quiet", "--dataset", dataset, "--out",
                             str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"))
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    status, _, err = cli("run", "--quiet", "--dataset", f"hf:{saved}", "--opt",
                         "hf.train_split=validation", "--out", str(tmp_path / "o"))
    assert status == 2 and "no split 'validation' (splits: train, test)" in err


def test_columns_of_the_wrong_kind_are_one_line(cli, saved, tmp_path):
    for option, message in (("hf.label_column=img", "column 'img' holds Image, not class-label"),
                            ("hf.image_column=fine_label", "column 'fine_label' holds "
                                                           "ClassLabel, not images"),
                            ("hf.image_column=note", "holds Value(string), not images")):
        status, _, err = cli("run", "--quiet", "--dataset", f"hf:{saved}", "--opt", option,
                             "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
        assert status == 2 and message in err, (option, err)
        assert "Traceback" not in err


def test_a_corrupt_image_is_one_line_naming_its_row(load, tmp_path):
    images, labels = pictures(6, 0)
    features = datasets.Features({"img": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["r", "g", "b"])})
    data = datasets.Dataset.from_dict({"img": images, "label": labels}, features=features)
    stored = data.cast_column("img", datasets.Image(decode=False))
    rows = stored.to_list()
    rows[4]["img"] = {"bytes": rows[4]["img"]["bytes"][:40], "path": None}   # truncated PNG
    broken = datasets.Dataset.from_list(rows, features=stored.features)
    broken.cast_column("img", datasets.Image()).save_to_disk(str(tmp_path / "broken"))
    from sslbench.errors import SSLBenchError
    with pytest.raises(SSLBenchError, match="split train, row 4"):
        load(f"hf:{tmp_path / 'broken'}")
