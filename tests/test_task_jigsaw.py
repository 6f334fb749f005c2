import numpy as np
import pytest
import torch
from sslbench_plugins.tasks.jigsaw import (Jigsaw, all_permutations, hamming_stats,
                                           permutation_set, tile_geometry)

from sslbench.errors import SSLBenchError
from sslbench.seeding import make_generator


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
    cell, tile = tile_geometry(size, 64 / 75)
    assert (cell, tile) == (12, 10)
    # every grid cell filled with its own index as the pixel value
    grid = torch.arange(9, dtype=torch.float32).view(3, 3)
    image = grid.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    images = image.expand(4, 3, size, size).clone()
    task = Jigsaw(permutations=10)
    tiles, label, perm = task.make_puzzles(images, make_generator(0, "t"))
    assert tiles.shape == (4, 9, 3, tile, tile)
    assert torch.equal(perm, task.perms[label])
    for n in range(4):
        for i in range(9):
            values = tiles[n, i].unique()
            assert values.tolist() == [float(perm[n, i])]   # position i holds cell perm[i]


def test_tile_offsets_vary_so_edges_do_not_line_up():
    images = torch.rand(64, 3, 36, 36)
    task = Jigsaw(permutations=10)
    a, _, _ = task.make_puzzles(images, make_generator(0, "a"))
    b, _, _ = task.make_puzzles(images, make_generator(1, "b"))
    assert not torch.equal(a, b)


def test_loss_and_recorded_hamming_stats():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    task = Jigsaw(permutations=10, grayscale=1.0)
    backbone = SmallCNN()
    step = task.pretext_loss(backbone, task.build_head(backbone), torch.rand(3, 3, 32, 32),
                             make_generator(0, "x"))
    assert step.logits.shape == (3, 10) and torch.isfinite(step.loss)
    assert set(task.config()["hamming_distance"]) == {"average", "minimum"}
