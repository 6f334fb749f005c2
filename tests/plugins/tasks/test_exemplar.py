import torch
from sslbench_plugins.tasks.exemplar import Exemplar, hsv_to_rgb, rgb_to_hsv

from sslbench._core.seeding import make_generator


def test_hsv_round_trip():
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    assert torch.allclose(rgb_to_hsv(red).flatten(), torch.tensor([0.0, 1.0, 1.0]))


def test_prepare_draws_the_surrogate_classes_deterministically():
    images = torch.randint(0, 256, (50, 3, 16, 16), dtype=torch.uint8)
    task = Exemplar(num_exemplars=20, fill_epoch=False)
    chosen = task.prepare(images, make_generator(0, "p"))
    assert chosen.shape == (20, 3, 16, 16) and task.num_classes == 20
    again = Exemplar(num_exemplars=20, fill_epoch=False).prepare(images, make_generator(0, "p"))
    assert torch.equal(chosen, again)
    assert Exemplar().prepare(images, make_generator(0, "p")).shape[0] == 50  # pool smaller than N


def test_an_epoch_repeats_the_surrogates_to_the_pools_size():
    """fill_epoch: as many views per epoch as the pool has images, whatever num_exemplars;
    the class of position i is i mod N, and held-out accuracy is measured on each class once."""
    from sslbench.images import ResidentImages
    images = torch.randint(0, 256, (50, 3, 16, 16), dtype=torch.uint8)
    task = Exemplar(num_exemplars=20)
    filled = task.prepare(images, make_generator(0, "p"))
    assert filled.shape[0] == 50 and task.num_classes == 20
    assert torch.equal(filled[20:40], filled[:20]) and torch.equal(filled[40:], filled[:10])
    evaluated, uses_index = task.evaluation_images(None, ResidentImages(filled))
    assert uses_index and torch.equal(evaluated.tensor, filled[:20])


def test_views_of_one_exemplar_share_its_label_and_differ():
    images = torch.randint(0, 256, (30, 3, 16, 16), dtype=torch.uint8)
    task = Exemplar(views=3)
    pool = task.prepare(images, make_generator(0, "p"))
    index = torch.tensor([4, 7, 9])
    views, labels = task.make_views(pool[index].float() / 255, index, make_generator(1, "v"))
    assert views.shape == (9, 3, 16, 16) and labels.tolist() == [4, 7, 9] * 3
    assert views.min() >= 0 and views.max() <= 1
    for k in range(3):
        same = views[labels == index[k]]
        assert not torch.allclose(same[0], same[1], atol=1e-3)
        assert not torch.allclose(same[1], same[2], atol=1e-3)


def test_loss_over_the_surrogate_classes():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    task = Exemplar()
    pool = task.prepare(images, make_generator(0, "p"))
    backbone = SmallCNN()
    head = task.build_head(backbone)
    step = task.pretext_loss(backbone, head, pool[:4].float() / 255, make_generator(0, "x"),
                             index=torch.arange(4))
    assert step.logits.shape == (8, 10) and torch.isfinite(step.loss)
