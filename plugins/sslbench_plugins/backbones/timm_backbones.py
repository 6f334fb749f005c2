"""Any timm model as a backbone (``--backbone resnet18``), with per-stage pooled features.

Models are built with ``features_only=True`` so that every stage can be probed. For small
images (64 px or less) the stem of ResNet-style models is adapted as is usual for CIFAR: the
7x7 stride-2 convolution becomes a 3x3 stride-1 one and the max-pool is removed, so that a
32 px image is not reduced to 1x1 before the last stage. Weights are random: sslbench
measures what pretext tasks learn, so no ImageNet weights are ever loaded.
"""

from __future__ import annotations

import torch
from torch import nn

import sslbench
from sslbench.backbone import Backbone, BackboneSpec

SMALL_IMAGE_MAX = 64
LISTED = {"resnet18": "ResNet-18 (timm), CIFAR stem at <=64 px; any other timm model name "
                      "works too",
          "resnet50": "ResNet-50 (timm), CIFAR stem at <=64 px"}


class TimmBackbone(Backbone):
    def __init__(self, name: str, resolution: int) -> None:
        super().__init__()
        self.model_name = name
        self.stem_adapted = False
        import timm   # here, not when sslbench starts: importing timm takes seconds
        try:
            self.net = timm.create_model(name, pretrained=False, features_only=True)
            self.multi_stage = True
        except (RuntimeError, AssertionError, TypeError, ValueError):
            # models without feature extraction support: one stage, the pooled output
            self.net = timm.create_model(name, pretrained=False, num_classes=0)
            self.multi_stage = False
        if resolution <= SMALL_IMAGE_MAX:
            self.stem_adapted = self._adapt_stem()
        if self.multi_stage:
            self.stage_dims = list(self.net.feature_info.channels())
            reduction = self.net.feature_info.reduction()[-1] // (4 if self.stem_adapted else 1)
        else:
            self.stage_dims = [self.net.num_features]
            reduction = 32
        self.min_input_size = max(8, reduction)

    def _adapt_stem(self) -> bool:
        conv = getattr(self.net, "conv1", None)
        if not isinstance(conv, nn.Conv2d) or conv.stride != (2, 2):
            return False
        self.net.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
        if isinstance(getattr(self.net, "maxpool", None), nn.MaxPool2d):
            self.net.maxpool = nn.Identity()
        return True

    def stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.multi_stage:
            return list(self.net(x))
        return [self.net(x)[:, :, None, None]]


def _spec(name: str) -> BackboneSpec:
    return BackboneSpec(name, lambda resolution: TimmBackbone(name, resolution),
                        LISTED.get(name, f"timm model {name}"))


@sslbench.hookimpl
def sslbench_backbones():
    return [_spec(name) for name in LISTED]


@sslbench.hookimpl
def sslbench_resolve_backbone(name: str):
    import timm
    return _spec(name) if name in timm.list_models() else None
