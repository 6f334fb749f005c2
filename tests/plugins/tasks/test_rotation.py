import torch
from sslbench_plugins.tasks.rotation import Rotation, rotate_batch

from sslbench._core.seeding import make_generator


def marked_image(size=8):
    """A black image with one bright pixel in the top-left corner."""
    img = torch.zeros(1, 3, size, size)
    img[0, :, 0, 0] = 1.0
    return img


def test_targets_say_how_many_quarter_turns():
    images = torch.rand(5, 3, 8, 8)
    rotated, targets = rotate_batch(images)
    assert rotated.shape == (20, 3, 8, 8)
    assert targets.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for k in range(4):
        block = rotated[5 * k:5 * (k + 1)]
        assert torch.equal(block, torch.rot90(images, k, dims=(2, 3)))


def test_rotation_geometry_is_counter_clockwise():
    rotated, targets = rotate_batch(marked_image())
    corner = {int(t): tuple((img[0] == 1).nonzero()[0].tolist()) for img, t in zip(rotated, targets)}
    # top-left -> (90° ccw) bottom-left -> (180°) bottom-right -> (270°) top-right
    assert corner == {0: (0, 0), 1: (7, 0), 2: (7, 7), 3: (0, 7)}


def test_loss_and_targets_through_a_backbone():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    backbone = SmallCNN()
    task = Rotation()
    head = task.build_head(backbone)
    step = task.pretext_loss(backbone, head, torch.rand(6, 3, 16, 16), make_generator(0, "t"))
    assert step.logits.shape == (24, 4)
    assert step.targets.bincount().tolist() == [6, 6, 6, 6]
    assert torch.isfinite(step.loss) and step.loss.requires_grad


def test_images_are_cropped_with_black_padding_then_rotated_together():
    """RotNet's CIFAR code: RandomCrop(32, padding=4) (black padding), then a flip, then the
    four rotations of that one cropped image."""
    task = Rotation(flip=False)
    assert task.options["crop"] == 4 / 32
    images = torch.ones(64, 3, 32, 32)
    inputs, targets = task.inputs(images, make_generator(0, "c"))
    upright = inputs[:64]
    black = (upright == 0).all(1)                                  # (N, H, W) padded pixels
    assert black.any() and black.float().mean() < 0.25
    rows_black = black.all(2).sum(1)                               # whole black rows: <= 4
    assert rows_black.max() <= 4
    for k in range(1, 4):
        assert torch.equal(inputs[64 * k:64 * (k + 1)], torch.rot90(upright, k, dims=(2, 3)))
    assert torch.equal(Rotation(crop=0.0, flip=False).inputs(images, make_generator(0, "c"))[0],
                       torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)]))
