"""The ``nin`` backbone (RotNet's Network-In-Network) and the step schedule of the
``rotnet-cifar10`` preset."""

import torch

from sslbench.training import step_drops
from sslbench_plugins.backbones.nin import NetworkInNetwork
from sslbench_plugins.presets import ROTNET_CIFAR10


def test_stage_maps_are_the_authors_block_outputs_at_32_px():
    net = NetworkInNetwork(blocks=4)
    maps = net.stage_maps(torch.zeros(2, 3, 32, 32))
    # block 1 ends in a stride-2 max-pool, block 2 in a stride-2 average pool (RotNet's
    # 4-block model has no pool after block 3): conv2 is 192 x 8 x 8
    assert [tuple(m.shape[1:]) for m in maps] == [(96, 16, 16), (192, 8, 8), (192, 8, 8),
                                                  (192, 8, 8)]
    assert net.stage_dims == [96, 192, 192, 192] and net(torch.zeros(2, 3, 32, 32)).shape == (2, 192)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 12 and all(c.bias is None for c in convs)
    assert [c.kernel_size[0] for c in convs[:6]] == [5, 1, 1, 5, 1, 1]
    with_pool = NetworkInNetwork(blocks=4, avg_on_block3=True).stage_maps(torch.zeros(1, 3, 32, 32))
    assert with_pool[2].shape[-1] == 4


def test_rotnets_learning_rate_table_is_the_step_schedule():
    """0.1, 0.02, 0.004, 0.0008 after 60, 120, 160 of 200 epochs (the authors' LUT_lr)."""
    drops = ROTNET_CIFAR10.settings["pretrain_lr_drops"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    schedule = step_drops(opt, 200, drops)
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    for epoch, lr in ((0, 0.1), (59, 0.1), (60, 0.02), (119, 0.02), (120, 0.004),
                      (160, 0.0008), (199, 0.0008)):
        assert abs(lrs[epoch] - lr) < 1e-12, (epoch, lrs[epoch])
