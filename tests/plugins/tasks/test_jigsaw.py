import numpy as np
import pytest
import torch
from sslbench_plugins.tasks.jigsaw import (Jigsaw, all_permutations, hamming_stats,
                                           min_resolution, permutation_set, shuffle_pixels,
                                           tile_geometry)

from sslbench.errors import SSLBenchError
from sslbench._core.seeding import make_generator


@pytest.mark.parametrize("selection", ["mean", "maximin"])
def test_each_greedy_pick_is_the_best_candidate(selection):
    """What the greedy selection promises: at every step the added permutation has the
    largest (summed, or smallest) Hamming distance to those chosen so far."""
    chosen = permutation_set(12, seed=3, selection=selection)
    perms = all_permutations().astype(np.int64)
    for k in range(1, len(chosen)):
        dist = (perms[:, None, :] != chosen[None, :k, :]).sum(-1)        # (9!, k)
        score = dist.sum(1) if selection == "mean" else dist.min(1)
        taken = (perms[:, None, :] == chosen[None, :k, :]).all(-1).any(1)
        own = (chosen[k][None] != chosen[:k]).sum(-1)
        assert (own.sum() if selection == "mean" else own.min()) == score[~taken].max()


def test_maximin_set_reaches_its_promised_minimal_distance():
    perms = permutation_set(100, seed=0, selection="maximin")
    _, minimum = hamming_stats(perms)
    # the minimum over pairs equals the last pick's maximin score, and beats random sets
    last = (perms[-1][None] != perms[:-1]).sum(-1).min()
    assert minimum == last >= 6
    rng = np.random.default_rng(0)
    random_set = all_permutations()[rng.choice(362880, 100, replace=False)]
    assert minimum > hamming_stats(random_set)[1]


def test_paper_selection_has_higher_average_distance_than_random():
    avg, _ = hamming_stats(permutation_set(100, seed=0, selection="mean"))
    rng = np.random.default_rng(1)
    random_avg, _ = hamming_stats(all_permutations()[rng.choice(362880, 100, replace=False)])
    assert avg > random_avg


def test_set_is_distinct_and_deterministic_for_a_seed():
    a = permutation_set(30, seed=1)
    assert len({tuple(p) for p in a}) == 30
    assert np.array_equal(a, permutation_set(30, seed=1))
    assert not np.array_equal(a, permutation_set(30, seed=2))
    with pytest.raises(SSLBenchError):
        permutation_set(1, seed=0)


def test_tiles_are_in_the_order_the_label_says():
    size = 36
    cell, tile, shift, _ = tile_geometry(size, 64 / 75, 3)
    assert (cell, tile, shift) == (12, 9, 0)
    # every grid cell filled with its own index as the pixel value (no grid slack at 36 px)
    grid = torch.arange(9, dtype=torch.float32).view(3, 3)
    image = grid.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    images = image.expand(4, 3, size, size).clone()
    task = Jigsaw(permutations=10, grayscale=0.0)
    tiles, label, perm = task.make_puzzles(images, make_generator(0, "t"))
    assert tiles.shape == (4, 9, 3, tile, tile)
    assert torch.equal(perm, task.perms[label])
    for n in range(4):
        for i in range(9):
            values = tiles[n, i].unique()
            assert values.tolist() == [float(perm[n, i])]   # position i holds cell perm[i]


def footprint_gaps(task: Jigsaw, size: int, n: int = 256) -> torch.Tensor:
    """Pixels between horizontally and vertically adjacent tiles, channel shifts included."""
    _, tile, shift, _ = task.geometry(size)
    _, top, left = task.cut(torch.rand(n, 3, size, size), make_generator(0, "g"))
    top, left = top.view(n, 3, 3), left.view(n, 3, 3)
    across = left[:, :, 1:] - (left[:, :, :-1] + tile)           # same row, next column
    down = top[:, 1:, :] - (top[:, :-1, :] + tile)
    return torch.cat([across.flatten(), down.flatten()]) - 2 * shift


@pytest.mark.parametrize("options", [{}, {"min_gap": 5}, {"channel_jitter": 0.2}])
def test_tiles_never_come_closer_than_min_gap(options):
    """The footprints of adjacent tiles (their pixels and shifted channels) are at least
    min_gap apart, at the default resolution, at the smallest one the task accepts, and at a
    large one: edge continuity cannot give the answer."""
    task = Jigsaw(permutations=10, **options)
    o = task.options
    smallest = min_resolution(o["tile_fraction"], o["min_gap"], o["channel_jitter"])
    for size in (32, smallest, 96):
        task.validate(size)
        assert footprint_gaps(task, size).min() >= o["min_gap"]
    with pytest.raises(SSLBenchError, match=f"--resolution {smallest}"):
        task.validate(smallest - 1)


def test_pre_04_geometry_let_tiles_touch():
    """The old default (9 px tiles in 10 px cells, no minimum gap) left a gap of 0 px between
    a quarter of adjacent tiles: what min_gap fixes."""
    old = Jigsaw(permutations=10, min_gap=0, channel_jitter=0.0)
    assert old.geometry(32)[1] == 9
    gaps = footprint_gaps(old, 30, n=2000)          # 30 px: no grid slack, as before
    assert abs((gaps == 0).float().mean() - 0.25) < 0.03


def test_whole_images_are_grayed_before_cutting():
    task = Jigsaw(permutations=10, grayscale=1.0)
    tiles, _, _ = task.make_puzzles(torch.rand(8, 3, 32, 32), make_generator(0, "g"))
    assert torch.allclose(tiles[:, :, 0], tiles[:, :, 1]) and torch.allclose(tiles[:, :, 1], tiles[:, :, 2])
    colour = Jigsaw(permutations=10, grayscale=0.0)
    tiles, _, _ = colour.make_puzzles(torch.rand(8, 3, 32, 32), make_generator(0, "g"))
    assert not torch.allclose(tiles[:, :, 0], tiles[:, :, 1])


def test_colour_channels_are_shifted_apart():
    """channel_jitter moves each colour channel of a tile on its own (Noroozi & Favaro)."""
    size = 96
    rows = torch.arange(size, dtype=torch.float32)
    image = rows[None, :].expand(3, size, size).clone()         # every channel holds the column
    task = Jigsaw(permutations=10, grayscale=0.0, channel_jitter=0.1)
    shift = task.geometry(size)[2]
    assert shift >= 2
    tiles, _, _ = task.cut(image.expand(64, 3, size, size).clone(), make_generator(0, "j"))
    offsets = tiles[..., 0, 0] - tiles[..., :1, 0, 0]            # (N, 9, 3) vs channel 0
    assert offsets.abs().max() <= 2 * shift and (offsets != 0).any()


def test_shuffled_pixel_control_keeps_each_tiles_pixels():
    images = torch.rand(4, 3, 32, 32)
    plain, _, _ = Jigsaw(permutations=10, grayscale=0.0).cut(images, make_generator(0, "s"))
    shuffled = shuffle_pixels(plain, make_generator(1, "s"))
    assert not torch.equal(plain, shuffled)
    assert torch.equal(plain.flatten(-2).sort(-1).values, shuffled.flatten(-2).sort(-1).values)
    control = Jigsaw(permutations=10).control()
    assert control.task.options["shuffle_pixels"] and not control.retrain
    tiles, _, _ = control.task.make_puzzles(images, make_generator(2, "s"))
    assert tiles.shape == (4, 9, 3, 7, 7)


def test_loss_and_recorded_hamming_stats():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    task = Jigsaw(permutations=10, grayscale=1.0)
    backbone = SmallCNN()
    step = task.pretext_loss(backbone, task.build_head(backbone), torch.rand(3, 3, 32, 32),
                             make_generator(0, "x"))
    assert step.logits.shape == (3, 10) and torch.isfinite(step.loss)
    assert set(task.config()["hamming_distance"]) == {"average", "minimum"}
