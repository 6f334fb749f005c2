"""Where a data set's splits live (sslbench._core.placement): held on the device or streamed,
the same pixels either way."""

import torch
from conftest import FILES_RESOLUTION

from sslbench.data import ImageData, carve_validation
from sslbench._core.placement import place

RES = FILES_RESOLUTION     # the shared ``files`` fixture's (conftest)
CPU = torch.device("cpu")


def _data(files) -> ImageData:
    labels = torch.arange(30) // 10
    return ImageData("t", ["a", "b", "c"], files, labels, files.subset(range(6)), labels[:6],
                     unlabeled_images=torch.zeros(5, 3, RES, RES, dtype=torch.uint8))


def test_placement_modes(files, monkeypatch):
    splits = carve_validation(_data(files), 0.2, seed=0)
    resident = place(splits, CPU, "never", workers=0)
    streamed = place(splits, CPU, "always", workers=0)
    assert not resident.streamed and streamed.streamed
    assert streamed.describe()["pretraining"] == "streamed"
    # the same pixels either way; the pretraining set is the pool, then the unlabeled split
    for name in ("pool", "val", "test", "pretraining"):
        a, b = getattr(resident, name), getattr(streamed, name)
        assert torch.equal(a[torch.arange(len(a))], b[torch.arange(len(b))]), name
    assert len(streamed.pretraining) == len(splits.pool_index) + 5
    # channel statistics from a sample that covers the whole pool equal the exact ones
    for exact, sampled in zip(resident.channel_stats, streamed.channel_stats):
        assert torch.allclose(exact, sampled, atol=1e-5)
    # auto streams what does not fit in half the free memory, and still holds the
    # validation split and small labeled subsets on the device
    import sslbench._core.placement as placement
    monkeypatch.setattr(placement, "free_memory", lambda device: 2 * 8 * 3 * RES * RES)
    auto = place(splits, CPU, "auto", workers=0)
    assert auto.streamed and not auto.val.streamed and "GiB" in auto.notes["reason"]
    small, labels = auto.labeled(torch.arange(2))
    assert not small.streamed and torch.equal(labels, splits.pool_labels[:2])
    big, _ = auto.labeled(torch.arange(20))
    assert big.streamed


def test_decoded_sets_stay_in_memory_on_the_cpu(monkeypatch):
    import sslbench._core.placement as placement
    monkeypatch.setattr(placement, "free_memory", lambda device: 0)
    images = torch.randint(0, 256, (20, 3, RES, RES), dtype=torch.uint8)
    labels = torch.arange(20) % 2
    splits = carve_validation(ImageData("t", ["a", "b"], images, labels, images[:4], labels[:4]),
                              0.2, seed=0)
    assert not place(splits, CPU, "auto", workers=0).streamed
