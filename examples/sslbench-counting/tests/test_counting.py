import torch
from sslbench_counting.plugin import Counting, quadrants

from sslbench.testing import check_task


def test_quadrants_are_the_four_tiles():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    q = quadrants(x)
    assert q.shape == (1, 4, 1, 2, 2)
    assert q[0, 0, 0].tolist() == [[0, 1], [4, 5]] and q[0, 3, 0].tolist() == [[10, 11], [14, 15]]


def test_loss_penalises_counts_that_do_not_add_up():
    task = Counting(margin=1.0)

    class Identity(torch.nn.Module):
        feature_dim, min_input_size = 3, 1

        def forward(self, x):          # "counts" = total intensity per channel
            return x.sum(dim=(2, 3))

    # the sum over tiles equals 4x the downsampled image's sum; scale the head to match
    head = torch.nn.Identity()
    images = torch.zeros(2, 3, 4, 4)
    images[0] = 1.0
    step = task.pretext_loss(Identity(), head, images, torch.Generator())
    assert step.loss.item() > 0                  # counts of tiles (16) != counts of D x (4)


def test_conforms_to_sslbench():
    check_task(Counting(dim=32), backbones=("smallcnn",), resolutions=(32,))
