"""Hugging Face ``datasets`` as data sets: ``--dataset hf:PATH_OR_NAME``.

``PATH`` is a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``
(read offline); anything else is a name on the Hugging Face hub, read through the library's
cache: from the network only with ``--download`` (as torchvision sets are), otherwise the
cache must already hold it.

The image column is the one whose feature is ``datasets.Image`` and the label column the one
that is a ``ClassLabel`` (its names become the class names), each found automatically when
only one column qualifies; ``--opt hf.image_column=...`` and ``--opt hf.label_column=...``
choose otherwise (a label column of integers or strings works too; its sorted values are the
classes). The training split is ``train_split`` (default ``train``) and the test split
``test_split`` (default ``test``); a data set with no such test split (or
``test_split=""``) gets sslbench's stratified, seeded 80/20 split, as an image folder does.
``config`` names a hub data set's configuration. Images are decoded once, when the set is
loaded, to uint8 at the run's resolution (RGB, shorter side resized, centre crop).

Needs the ``datasets`` package: ``pip install 'sslbench[hf]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import sslbench
from sslbench.data import DatasetRequest, DatasetSpec, ImageData, stratified_split
from sslbench.images import decode_bytes
from sslbench.errors import SSLBenchError

DEFAULTS = {"train_split": "train", "test_split": "test", "image_column": "",
            "label_column": "", "config": ""}


def _library():
    try:
        import datasets
    except ImportError:
        raise SSLBenchError("hf: data sets need the 'datasets' package: "
                            "pip install 'sslbench[hf]'") from None
    datasets.disable_progress_bars()      # a sweep shows its own progress
    return datasets


def _open(request: DatasetRequest):
    """A ``DatasetDict`` (or a single ``Dataset``) from a folder or the hub's cache."""
    datasets = _library()
    target = request.argument
    if not target:
        raise SSLBenchError("hf: needs a folder or a hub name: --dataset hf:PATH_OR_NAME")
    folder = Path(target).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise SSLBenchError(f"hf: {target!r} is not a folder written by save_to_disk")
        try:
            return datasets.load_from_disk(str(folder))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise SSLBenchError(f"hf: {target!r} is not a folder written by save_to_disk: "
                                f"{str(exc).splitlines()[0][:200]}") from None
    config = request.options.get("config") or None
    import datasets.config as hf_config
    previous = hf_config.HF_HUB_OFFLINE
    if not request.download:          # the library's cache only, as --no-download means
        hf_config.HF_HUB_OFFLINE = True
    try:
        return datasets.load_dataset(target, config)
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds for "not there"
        if not request.download:
            raise SSLBenchError(f"hf: {target!r} is neither a folder nor a data set in the "
                                "Hugging Face cache; pass --download to fetch it from the hub"
                                ) from None
        raise SSLBenchError(f"hf: cannot load {target!r}: "
                            f"{str(exc).splitlines()[0][:200]}") from None
    finally:
        hf_config.HF_HUB_OFFLINE = previous


def _column(features, wanted: str, kinds: tuple, what: str, option: str,
            allowed: tuple = ()) -> str:
    """The column of ``what``: the one named (which must be of ``kinds`` or ``allowed``),
    else the only one of ``kinds``."""
    if wanted:
        if wanted not in features:
            raise SSLBenchError(f"hf: no column {wanted!r} (columns: {', '.join(features)})")
        if not isinstance(features[wanted], kinds + allowed):
            raise SSLBenchError(f"hf: column {wanted!r} holds {_kind(features[wanted])}, not "
                                f"{what}s; choose another with --opt hf.{option}=NAME")
        return wanted
    found = [name for name, f in features.items() if isinstance(f, kinds)]
    if len(found) != 1:
        raise SSLBenchError(
            f"hf: {'no' if not found else 'several'} {what} column"
            f"{'s' if found else ''}{' (' + ', '.join(found) + ')' if found else ''} among "
            f"{', '.join(features)}; choose one with --opt hf.{option}=NAME")
    return found[0]


def _kind(feature) -> str:
    """A column's feature type in words: ``Image``, ``ClassLabel``, ``Value(string)``."""
    dtype = getattr(feature, "dtype", None)
    name = type(feature).__name__
    return f"{name}({dtype})" if name == "Value" and dtype else name


def _images(split, column: str, resolution: int, what: str) -> torch.Tensor:
    """Every image of a split as uint8 (N, 3, R, R), decoded batch by batch by sslbench's
    own decoder (from the stored bytes: a corrupt image or a decompression bomb is one line
    naming its row, and EXIF orientation is applied as for image folders)."""
    import io

    import datasets
    out = torch.empty((len(split), 3, resolution, resolution), dtype=torch.uint8)
    raw = split.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    i = 0
    for batch in raw.iter(batch_size=256):
        for stored in batch[column]:
            name = f"{what}, row {i}" + (f" ({stored['path']})" if stored.get("path") else "")
            if stored.get("bytes") is not None:
                source = io.BytesIO(stored["bytes"])
            elif stored.get("path"):
                source = stored["path"]
            else:
                raise SSLBenchError(f"hf: {name} holds no image")
            out[i] = decode_bytes(source, resolution, name)
            i += 1
    return out


def load(request: DatasetRequest) -> ImageData:
    datasets = _library()
    o = {**DEFAULTS, **request.options}
    data = _open(request)
    splits = dict(data) if isinstance(data, datasets.DatasetDict) else {"train": data}
    if o["train_split"] not in splits:
        raise SSLBenchError(f"hf: no split {o['train_split']!r} (splits: {', '.join(splits)}); "
                            "choose one with --opt hf.train_split=NAME")
    train = splits[o["train_split"]]
    features = train.features
    image_col = _column(features, o["image_column"], (datasets.Image,), "image", "image_column")
    label_col = _column(features, o["label_column"], (datasets.ClassLabel,), "class-label",
                        "label_column", allowed=(datasets.Value,))
    if label_col == image_col:
        raise SSLBenchError(f"hf: column {label_col!r} cannot be both the images and the labels")
    if isinstance(features[label_col], datasets.Value) and not (
            features[label_col].dtype.startswith(("int", "uint")) or
            features[label_col].dtype in ("string", "large_string")):
        raise SSLBenchError(f"hf: column {label_col!r} holds {_kind(features[label_col])}: "
                            "class labels are whole numbers, strings or a ClassLabel")
    label_feature = features[label_col]
    test = splits.get(o["test_split"]) if o["test_split"] else None

    def labels_of(split) -> list[Any]:
        return list(split[label_col])

    train_values = labels_of(train)
    test_values = labels_of(test) if test is not None else []
    if isinstance(label_feature, datasets.ClassLabel):
        classes = list(label_feature.names)
        to_index = {i: i for i in range(len(classes))}
    else:
        classes_raw = sorted(set(train_values) | set(test_values), key=str)
        classes = [str(c) for c in classes_raw]
        to_index = {c: i for i, c in enumerate(classes_raw)}
    res = request.resolution
    images = _images(train, image_col, res, f"split {o['train_split']}")
    labels = torch.tensor([to_index[v] for v in train_values], dtype=torch.int64)
    provenance: dict[str, Any] = {"source": "huggingface datasets", "path": request.argument,
                                  "train_split": o["train_split"], "image_column": image_col,
                                  "label_column": label_col}
    if test is not None:
        test_images = _images(test, image_col, res, f"split {o['test_split']}")
        test_labels = torch.tensor([to_index[v] for v in test_values], dtype=torch.int64)
        provenance["test_split"] = o["test_split"]
    else:
        keep, held = stratified_split(labels.numpy(), 0.2, request.split_seed)
        keep_t, held_t = torch.from_numpy(keep), torch.from_numpy(held)
        images, test_images = images[keep_t], images[held_t]
        labels, test_labels = labels[keep_t], labels[held_t]
        provenance.update({"test_split": "stratified 20%", "split_seed": request.split_seed,
                           "test_rows": np.asarray(held).tolist()})
    name = Path(request.argument).name or request.argument
    return ImageData(name, classes, images, labels, test_images, test_labels,
                     provenance=provenance)


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("hf", load, "a Hugging Face data set: a save_to_disk folder, or a hub "
                        "name (--download)", takes_argument=True, defaults=DEFAULTS)]
