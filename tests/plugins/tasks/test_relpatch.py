"""Relative patch location: Doersch's sampling (random grid origin, every adjacent pair in both
orders), preprocessing, and the shortcut that the pre-0.4 centred layout left open."""

import pytest
import torch
from conftest import FAST
from sslbench_plugins.tasks.relpatch import (NEIGHBOURS, RelativePatch, drop_colours,
                                             oracle_accuracy, pair_table, pixelate)

from sslbench.errors import SSLBenchError
from sslbench._core.seeding import make_generator


def test_geometry_follows_doerschs_proportions():
    # 96/48/7 px on Doersch's 548 px images; at 32 px: 6 px patches, 3 px gaps, 1 px jitter
    assert RelativePatch().geometry(548) == (96, 48, 7)
    assert RelativePatch().geometry(32) == (6, 3, 1)
    for size in (24, 32, 64, 96):
        p, g, j = RelativePatch().geometry(size)
        assert 2 * j < g or g == 0          # jittered neighbours never touch


def coordinate_images(n: int, size: int) -> torch.Tensor:
    """Channel 0 holds each pixel's row, channel 1 its column."""
    rows = torch.arange(size, dtype=torch.float32)
    image = torch.stack([rows[:, None].expand(size, size), rows[None, :].expand(size, size),
                         torch.zeros(size, size)])
    return image.expand(n, 3, size, size).clone()


@pytest.mark.parametrize("size", [32, 96])
def test_every_pair_sits_where_its_label_says(size):
    task = RelativePatch()
    patches, valid, label, top, left = task.make_grid(coordinate_images(64, size),
                                                      make_generator(0, "t"))
    p, g, j = task.geometry(size)
    first, second, _, cells = pair_table(size, p, g, False, torch.device("cpu"))
    assert patches.shape == (64, cells * cells, 3, p, p)
    # patches are cut where layout says
    assert torch.equal(patches[:, :, 0, 0, 0], top.float())
    assert torch.equal(patches[:, :, 1, 0, 0], left.float())
    for n in range(64):
        for k in torch.nonzero(valid[n]).flatten().tolist():
            dy, dx = NEIGHBOURS[int(label[k])]
            step_y = top[n, second[k]] - top[n, first[k]]
            step_x = left[n, second[k]] - left[n, first[k]]
            assert abs(step_y - dy * (p + g)) <= 2 * j and abs(step_x - dx * (p + g)) <= 2 * j
            assert max(abs(step_y), abs(step_x)) >= p        # never overlapping
    # pairs come in both orders, from every cell, with every label
    used = valid.any(0)
    assert sorted(label[used].unique().tolist()) == list(range(8))
    assert set(first[used].tolist()) == set(range(cells * cells))


def test_the_first_patch_is_anywhere_not_at_a_fixed_place():
    task = RelativePatch()
    _, valid, _, top, left = task.make_grid(torch.rand(256, 3, 32, 32), make_generator(1, "o"))
    # with a random origin the patches' corners take many values, not one per grid cell
    assert len(top.unique()) > 9 and len(left.unique()) > 9
    centred = RelativePatch(grid="centred")
    _, _, _, ctop, _ = centred.make_grid(torch.rand(256, 3, 32, 32), make_generator(1, "o"))
    assert len((ctop[:, 4] - ctop[:, 4].median()).abs().unique()) <= 2   # centre +- jitter


def test_position_alone_gives_the_answer_only_in_the_centred_layout():
    """Doersch's sampling leaves the label of a pair poorly predictable from where the second
    patch was cut (an oracle that knows its exact position: 22.5% at 32 px, chance 15-12.5%;
    Doersch's own layout gives about 24% at 548 px); the pre-0.4 centred grid gives it away."""
    assert oracle_accuracy(RelativePatch(grid="centred"), 32) == 1.0
    assert oracle_accuracy(RelativePatch(), 32) < 0.25


def test_colour_dropping_keeps_one_channel_minus_its_mean():
    patches = torch.rand(5, 2, 3, 8, 8)
    dropped = drop_colours(patches, make_generator(0, "c"))
    centred = patches - patches.mean(dim=(-2, -1), keepdim=True)
    kept = torch.isclose(dropped, centred).flatten(-2).all(-1)           # (5, 2, 3)
    assert kept.sum(-1).eq(1).all()
    noise = dropped[~kept]
    assert noise.abs().max() <= 0.5 / 255 and noise.std() > 0.1 / 255      # +-0.5 grey levels


def test_pixelation_hits_about_a_third_of_patches_and_keeps_the_size():
    patches = torch.rand(3000, 1, 3, 12, 12)
    out = pixelate(patches, 1 / 3, make_generator(0, "p"))
    assert out.shape == patches.shape
    changed = ~torch.isclose(out, patches).flatten(1).all(1)
    assert 0.28 < changed.float().mean() < 0.39


def test_normalised_patches_have_unit_rms():
    task = RelativePatch(pixelate=0.0)
    out = task.preprocess(torch.rand(8, 9, 3, 6, 6), make_generator(0, "n"))
    rms = out.square().mean(dim=(-3, -2, -1)).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-4)


def test_loss_runs_on_small_images_over_every_pair():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    backbone = SmallCNN()
    task = RelativePatch()
    step = task.pretext_loss(backbone, task.build_head(backbone), torch.rand(4, 3, 32, 32),
                             make_generator(0, "x"))
    assert step.logits.shape == (4 * 40, 8) and torch.isfinite(step.loss)   # 3x3 grid: 40 pairs
    only = RelativePatch(neighbour_only=True)
    step = only.pretext_loss(backbone, only.build_head(backbone), torch.rand(4, 3, 32, 32),
                             make_generator(0, "x"))
    assert step.logits.shape == (160, 8)
    four = RelativePatch(grids_per_image=4)
    step = four.pretext_loss(backbone, four.build_head(backbone), torch.rand(4, 3, 32, 32),
                             make_generator(0, "x"))
    assert step.logits.shape == (4 * 4 * 40, 8)


def test_too_small_an_image_is_refused_in_one_line():
    with pytest.raises(SSLBenchError, match="relpatch at 8 px"):
        RelativePatch().validate(8)
    with pytest.raises(SSLBenchError, match="relpatch.grid"):
        RelativePatch(grid="diagonal")


def ramp_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Noise plus a strong brightness ramp across the image: a pixel's value says where it is
    (the vignetting and colour gradients of real photographs, exaggerated)."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 0.8, size)
    base = (ramp[:, None] + ramp[None, :]) / 2
    return (0.1 * torch.rand(n, 3, size, size, generator=g) + base).clamp(0, 1)


@pytest.mark.slow
def test_neighbour_only_control_is_at_chance_where_position_would_give_the_answer(
        tmp_path, monkeypatch):
    """On images whose brightness gives away where a patch was cut, a network that sees only
    the neighbour patch learns the label from its position in the pre-0.4 layout (no
    normalisation, centred grid: far above chance), and stays at chance with Doersch's
    sampling and per-patch normalisation (tolerance: 5 points above the most frequent label)."""
    from sslbench.images import ResidentImages
    from sslbench._core.progress import Reporter
    from sslbench._core.pretraining import evaluate_pretext, pretrain
    from sslbench_plugins.backbones.smallcnn import SmallCNN

    settings = {**FAST, "pretrain_epochs": 4, "pretrain_batch_size": 64, "pretrain_lr": 0.05,
                "weight_decay": 5e-4}
    train, held = ramp_images(768, seed=0), ramp_images(256, seed=1)
    results = {}
    for name, options in (("old", dict(grid="centred", normalise=False, color_drop=False,
                                      pixelate=0.0)),
                          ("doersch", {})):
        torch.manual_seed(0)
        backbone = SmallCNN()
        task = RelativePatch(neighbour_only=True, **options)
        out = pretrain(task, backbone, (train * 255).to(torch.uint8), settings,
                       torch.device("cpu"), None, 0, Reporter(), "control")
        results[name] = evaluate_pretext(task, backbone, out["head"],
                                         ResidentImages((held * 255).to(torch.uint8)), False,
                                         torch.device("cpu"), None, 0)
    old, new = results["old"], results["doersch"]
    assert old["accuracy"] > 0.6                                   # position gave the answer
    assert new["accuracy"] < new["chance"] + 0.05                  # ... and now it does not
