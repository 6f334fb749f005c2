import torch
from sslbench_plugins.tasks.relpatch import (NEIGHBOURS, RelativePatch, drop_colours,
                                             patch_geometry)

from sslbench.seeding import make_generator


def test_geometry_keeps_the_papers_proportions_and_fits():
    assert patch_geometry(398, 96 / 398, 48 / 398, 7 / 398) == (96, 48, 7)
    assert patch_geometry(32, 96 / 398, 48 / 398, 7 / 398) == (8, 3, 1)
    for size in (32, 48, 64, 96):
        p, g, j = patch_geometry(size, 96 / 398, 48 / 398, 7 / 398)
        assert 3 * p + 2 * g + 2 * j <= size and p >= 1


def test_label_matches_the_neighbours_geometry():
    size = 96
    rows = torch.arange(size, dtype=torch.float32)
    # channel 0 holds the row, channel 1 the column of every pixel
    image = torch.stack([rows[:, None].expand(size, size), rows[None, :].expand(size, size),
                         torch.zeros(size, size)])
    task = RelativePatch(color_drop=False)
    pairs, label, top, left = task.make_pairs(image.expand(64, 3, size, size).clone(),
                                              make_generator(0, "t"))
    p, g, j = patch_geometry(size, 96 / 398, 48 / 398, 7 / 398)
    assert pairs.shape == (64, 2, 3, p, p)
    assert torch.equal(pairs[:, :, 0, 0, 0], top.float()) and torch.equal(pairs[:, :, 1, 0, 0], left.float())
    for n in range(64):
        r, c = NEIGHBOURS[int(label[n])]
        dy, dx = int(top[n, 1] - top[n, 0]), int(left[n, 1] - left[n, 0])
        # the neighbour sits one patch+gap away in the labelled direction, give or take jitter
        assert abs(dy - (r - 1) * (p + g)) <= 2 * j and abs(dx - (c - 1) * (p + g)) <= 2 * j
        if r != 1:
            assert abs(dy) >= p  # never overlapping along the offset axis
    assert sorted(label.unique().tolist()) == list(range(8))


def test_colour_dropping_keeps_one_channel():
    patches = torch.rand(5, 2, 3, 8, 8)
    dropped = drop_colours(patches, make_generator(0, "c"))
    same = (dropped == patches).flatten(-2).all(-1)          # (5, 2, 3)
    assert same.sum(-1).eq(1).all()
    noisy = dropped[~same.unsqueeze(-1).unsqueeze(-1).expand_as(dropped)].view(-1, 64)
    assert noisy.std(-1).max() < patches.std() / 20


def test_loss_runs_on_small_images():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    backbone = SmallCNN()
    task = RelativePatch()
    step = task.pretext_loss(backbone, task.build_head(backbone), torch.rand(4, 3, 32, 32),
                             make_generator(0, "x"))
    assert step.logits.shape == (4, 8) and torch.isfinite(step.loss)
