"""``nin``: the Network-In-Network of RotNet's CIFAR-10 experiments (Gidaris, Singh &
Komodakis 2018; ``architectures/NetworkInNetwork.py`` of gidariss/FeatureLearningRotNet).

Each block is three conv-BN-ReLU layers (bias-free convolutions): block 1 is 5x5 to 192,
1x1 to 160, 1x1 to 96, then a 3x3 stride-2 max-pool; block 2 is 5x5 to 192 and two 1x1,
then a 3x3 stride-2 average pool; blocks 3 and up are 3x3 and two 1x1 at 192 channels (an
average pool after block 3 only with ``avg_on_block3``, which RotNet's 4-block model turns
off). At 32 px the maps are 16x16 after block 1 and 8x8 after block 2 on: "conv2", the block
the paper's semi-supervised table classifies, is stage 2 here (192 x 8 x 8).

The authors' class defines a ``weight_initialization`` that its constructor never calls, so
their networks start from PyTorch's default initialisation; so does this one.
"""

from __future__ import annotations

from torch import nn

import sslbench
from sslbench.backbone import Backbone, BackboneSpec
from sslbench.options import Range


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class NetworkInNetwork(Backbone):
    min_input_size = 8

    def __init__(self, blocks: int = 4, avg_on_block3: bool = False) -> None:
        super().__init__()
        stages = [
            nn.Sequential(*_conv(3, 192, 5), *_conv(192, 160, 1), *_conv(160, 96, 1),
                          nn.MaxPool2d(3, stride=2, padding=1)),
            nn.Sequential(*_conv(96, 192, 5), *_conv(192, 192, 1), *_conv(192, 192, 1),
                          nn.AvgPool2d(3, stride=2, padding=1)),
        ]
        for b in range(3, blocks + 1):
            layers = [*_conv(192, 192, 3), *_conv(192, 192, 1), *_conv(192, 192, 1)]
            if b == 3 and blocks > 3 and avg_on_block3:
                layers.append(nn.AvgPool2d(3, stride=2, padding=1))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.stage_dims = [96] + [192] * (blocks - 1)


@sslbench.hookimpl
def sslbench_backbones():
    return [BackboneSpec(
        "nin", lambda resolution, blocks=4, avg_on_block3=False:
        NetworkInNetwork(int(blocks), bool(avg_on_block3)),
        "RotNet's Network-In-Network (4 blocks of 3 conv layers, 192 channels): the paper's "
        "CIFAR-10 network; wants a GPU",
        defaults={"blocks": 4, "avg_on_block3": False},
        ranges={"blocks": Range(ge=3, le=8)})]
