"""A small four-stage CNN: the quick preset's backbone.

Sized so that training runs at about 1,800 inputs/s at 32x32 on a 2-core CPU: rotation
pretraining, whose inputs are four rotated copies of each source image, at 440 source images/s
(benchmarks/RESULTS.md, test_model_only[rotation]), which keeps a quick sweep within minutes
on a laptop. "Inputs" are the images the network trains on, "source images" those of the data
set; the two differ wherever a task builds several inputs from each image. Each stage
is conv3x3-BN-ReLU; stages 2-4 start with a 2x2 max-pool. Widths 24-48-96-192.
"""

from __future__ import annotations

from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.backbone import Backbone, BackboneSpec


def _block(cin: int, cout: int, pool: bool) -> nn.Sequential:
    layers = [nn.MaxPool2d(2)] if pool else []
    layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
               nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


WIDTHS = (24, 48, 96, 192)


class SmallCNN(Backbone):
    min_input_size = 8

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.stage_dims = list(widths)
        chans = (3,) + tuple(widths)
        self.stages = nn.ModuleList(_block(chans[i], chans[i + 1], pool=i > 0)
                                    for i in range(len(widths)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


@sslbench.hookimpl
def sslbench_backbones():
    return [BackboneSpec("smallcnn", lambda resolution, widths=WIDTHS: SmallCNN(tuple(widths)),
                         "4-stage CNN (24-48-96-192), ~1,800 inputs/s training at 32 px on 2 CPU cores",
                         defaults={"widths": list(WIDTHS)},
                         ranges={"widths": Range(ge=1, le=4096)})]
