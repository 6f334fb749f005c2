"""The backbone interface: a network that maps images to pooled features, stage by stage.

Every backbone takes float images in [0, 1] and normalises them itself with the training
set's channel statistics (stored as buffers, so a checkpoint carries them). It exposes the
globally pooled output of each stage, so that the linear protocol can probe every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .options import Range, resolve_options

__all__ = [
    'Backbone', 'BackboneSpec'
]


class Backbone(nn.Module):
    """Base class: subclasses set ``stages`` (one module per stage, run in order) or
    implement :meth:`stage_maps`, and set ``stage_dims``.

    Attributes:
        stage_dims: channels of each stage's feature map (and of its pooled features).
        feature_dim: size of :meth:`forward`'s output, the last stage's pooled features.
        min_input_size: the smallest image side the network accepts; tasks that cut tiles
            or patches resize them up to this.
    """

    stage_dims: list[int]
    min_input_size: int = 8

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("input_std", torch.full((1, 3, 1, 1), 0.25))

    @property
    def feature_dim(self) -> int:
        return self.stage_dims[-1]

    def set_input_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        self.input_mean.copy_(mean.reshape(1, 3, 1, 1))
        self.input_std.copy_(std.reshape(1, 3, 1, 1).clamp_min(1e-3))

    def stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps (N, C_i, H_i, W_i) of every stage for normalised input ``x``. The
        default runs ``self.stages`` (one module per stage, in order); a backbone built
        otherwise overrides it."""
        stages = getattr(self, "stages", None)
        if stages is None:
            raise NotImplementedError(f"{type(self).__name__} has no stages: override "
                                      "stage_maps")
        maps = []
        for stage in stages:
            x = stage(x)
            maps.append(x)
        return maps

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Globally average-pooled features of every stage, each (N, stage_dims[i])."""
        return [m.float().mean(dim=(2, 3)) for m in self.stage_maps(self.normalise(x))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage_maps(self.normalise(x))[-1].mean(dim=(2, 3))


@dataclass
class BackboneSpec:
    """A backbone offered by a plugin: ``create(resolution)`` returns a fresh, randomly
    initialised :class:`Backbone` for square images of that side.

    ``defaults`` declares the backbone's options (:mod:`sslbench.options`; ``presets`` the
    values that differ per sweep preset): with any, ``create(resolution, **options)`` is
    called with the resolved ones (``--opt smallcnn.widths=[16,32,64,128]``)."""

    name: str
    create: Callable[..., Backbone]
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    ranges: dict[str, Range] = field(default_factory=dict)   # of numeric options

    def resolve(self, preset: str | None, given: dict[str, Any]) -> dict[str, Any]:
        """The options a run uses: defaults, the preset's values, the user's."""
        return resolve_options("backbone", self.name, self.defaults, given,
                               self.presets.get(preset or "", {}), self.ranges)

    def build(self, resolution: int, options: dict[str, Any] | None = None) -> Backbone:
        """``create(resolution, **options)``, or ``create(resolution)`` for a backbone
        without options."""
        return self.create(resolution, **(options or {})) if self.defaults \
            else self.create(resolution)
