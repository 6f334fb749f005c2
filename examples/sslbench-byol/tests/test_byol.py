import math

import torch
from sslbench_byol import plugin
from sslbench_byol.plugin import BYOL, ema_update, regression_loss, target_decay
from sslbench_byol.views import gaussian_blur, hsv_to_rgb, rgb_to_hsv, view

from sslbench.testing import check_plugin
from sslbench.training import effective_schedule


def generator(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_target_decay_follows_the_authors_cosine_from_base_to_one():
    assert target_decay(0, 100, 0.996) == 0.996
    assert math.isclose(target_decay(50, 100, 0.996), 0.998)
    assert target_decay(100, 100, 0.996) == 1.0


def test_ema_update_moves_the_target_towards_the_online_network():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = target.weight.detach().clone()
    ema_update(target, online, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight.detach())


def test_after_step_updates_only_the_target_and_with_the_scheduled_tau():
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    task = BYOL(hidden=32, out=16)
    backbone = SmallCNN((8, 16))
    head = task.build_head(backbone)
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(1.0)                                   # the online network moved
    old = [p.detach().clone() for p in head.target_backbone.parameters()]
    task.after_step(backbone, head, step=0, total_steps=10)  # tau = 0.996
    for t, o, b in zip(head.target_backbone.parameters(), old, backbone.parameters()):
        assert torch.allclose(t, 0.996 * o + 0.004 * b.detach(), atol=1e-6)


def test_the_loss_is_zero_for_aligned_and_four_for_opposite_vectors():
    x = torch.randn(5, 8)
    assert torch.allclose(regression_loss(x, 3 * x), torch.zeros(5), atol=1e-6)
    assert torch.allclose(regression_loss(x, -x), torch.full((5,), 4.0), atol=1e-6)


def test_views_differ_per_image_and_stay_in_range():
    images = torch.rand(6, 3, 32, 32)
    a, b = view(images, generator(), 0), view(images, generator(), 1)
    assert a.shape == images.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert not torch.allclose(a, b)
    same = images[:1].expand(6, -1, -1, -1)
    v = view(same, generator(1), 0)
    assert not torch.allclose(v[0], v[1])                 # parameters drawn per image


def test_hsv_round_trip():
    x = torch.rand(4, 3, 5, 5)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)


def test_blur_keeps_a_constant_image():
    x = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(gaussian_blur(x, generator(), p=1.0), x, atol=1e-6)


def test_the_schedule_is_lars_with_the_learning_rate_scaled_by_the_batch():
    settings = {"pretrain_epochs": 15, "pretrain_lr": 0.1, "pretrain_batch_size": 128,
                "weight_decay": 5e-4}
    plan = effective_schedule(BYOL(), settings)
    assert plan["optimizer"] == "lars"
    assert math.isclose(plan["lr"], 0.2 * 128 / 256)
    assert plan["weight_decay"] == 1.5e-6 and plan["epochs"] == 15


def test_conforms_to_sslbench():
    check_plugin(plugin, backbones=("smallcnn",), resolutions=(32,))
