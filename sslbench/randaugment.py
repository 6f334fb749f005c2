"""RandAugment on whole batches, with random choices per image, in two variants.

* ``policy="cubuk"``: RandAugment as Cubuk et al. (2020) describe it: ``num_ops`` operations
  per image drawn from 14 (identity included), each applied, its magnitude drawn uniformly
  from [0, ``max_magnitude``] out of 10; translation up to ``translate`` of the side
  (torchvision's 150/331).
* ``policy="uda"``: the variant in the UDA authors' code (``image/randaugment/policies.py``
  and ``augmentation_transforms.py`` of google-research/uda): ``num_ops`` operations drawn
  from 15 (Invert and Cutout included, no identity), each applied with probability 1/2, with
  an integer level drawn from 1..9 (of 10); enhancement factors 0.1 + 1.8 * level/10 without a
  sign, posterize to 4 - int(4 * level/10) bits, solarize at 256 - level*25.6, cutout of
  int(20 * level/10) px at 32 px (a share of the side here), translation up to 10 px at 32 px
  (10/32 of the side), rotation up to 30 degrees, shear up to 0.3.

Every operation is computed for the whole batch with per-image parameters and selected per
image with a mask; the geometric ones (rotate, shear, translate) are folded into one affine
warp per round. No Python loop over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import constant, grayscale

__all__ = [
    'CUBUK_OPS', 'UDA_OPS', 'OPS', 'GEOMETRIC', 'POLICIES', 'UDA_CUTOUT_FILL', 'cutout',
    'rand_augment'
]

CUBUK_OPS = ["identity", "autocontrast", "equalize", "rotate", "solarize", "color",
             "posterize", "contrast", "brightness", "sharpness", "shear_x", "shear_y",
             "translate_x", "translate_y"]
UDA_OPS = ["invert", "cutout", "sharpness", "autocontrast", "posterize", "shear_x",
           "translate_x", "translate_y", "shear_y", "rotate", "equalize", "contrast", "color",
           "solarize", "brightness"]
OPS = CUBUK_OPS            # the pre-0.4 name
GEOMETRIC = {"rotate", "shear_x", "shear_y", "translate_x", "translate_y"}
POLICIES = ("cubuk", "uda")
UDA_CUTOUT_FILL = (125 / 255, 122 / 255, 113 / 255)    # the grey UDA's Cutout op paints


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """b + factor * (a - b): factor 1 gives a, 0 gives b (PIL ImageEnhance semantics)."""
    return (b + factor.view(-1, 1, 1, 1) * (a - b)).clamp(0, 1)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    scale = torch.where(hi > lo, 1 / (hi - lo).clamp_min(1e-6), torch.ones_like(hi))
    return torch.where(hi > lo, (x - lo) * scale, x)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per image and channel, via one scatter-add over the batch."""
    n, c, h, w = x.shape
    q = (x * 255).round().long().clamp(0, 255).view(n, c, -1)
    hist = torch.zeros(n, c, 256, device=x.device).scatter_add_(2, q, torch.ones_like(q, dtype=torch.float))
    cdf = hist.cumsum(-1)
    cdf_min = torch.where(hist > 0, cdf, torch.full_like(cdf, float("inf"))).amin(-1, keepdim=True)
    lut = ((cdf - cdf_min) / (h * w - cdf_min).clamp_min(1)).clamp(0, 1)
    return lut.gather(2, q).view(n, c, h, w)


def _sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    kernel = constant((1.0, 1, 1, 1, 5, 1, 1, 1, 1), x.device, x.dtype).view(3, 3) / 13
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"),
                       kernel.expand(3, 1, 3, 3), groups=3)
    return _blend(x, blurred, factor)


def _affine(x: torch.Tensor, angle, shear_x, shear_y, tx, ty) -> torch.Tensor:
    """One warp per image: rotation (radians), shears, translations (fractions of the side)."""
    n = len(x)
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones(n, device=x.device), torch.zeros(n, device=x.device)
    rot = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1),
                       torch.stack([zero, zero, one], 1)], 1)
    shear = torch.stack([torch.stack([one, shear_x, 2 * tx], 1),
                         torch.stack([shear_y, one, 2 * ty], 1),
                         torch.stack([zero, zero, one], 1)], 1)
    theta = (rot @ shear)[:, :2]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grey fill outside the image, as the reference implementations do
    return F.grid_sample(x - 0.5, grid, align_corners=False, padding_mode="zeros") + 0.5


def cutout(x: torch.Tensor, size: torch.Tensor | float, generator: torch.Generator,
           fill: torch.Tensor | tuple | float = 0.5) -> torch.Tensor:
    """Paint a square of side ``size`` (a share of the image side, per image or one for all)
    centred at a uniformly random pixel, clipped at the border (Cutout, DeVries & Taylor 2017,
    as UDA's ``create_cutout_mask``), with ``fill``."""
    n, c, h, w = x.shape
    size = torch.as_tensor(size, device=x.device, dtype=torch.float32).expand(n)
    half = (size * h).floor().long() // 2
    cy = torch.randint(0, h, (n,), device=x.device, generator=generator)
    cx = torch.randint(0, w, (n,), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= (cy - half).view(-1, 1, 1)) & (rows < (cy + half).view(-1, 1, 1))
              & (cols >= (cx - half).view(-1, 1, 1)) & (cols < (cx + half).view(-1, 1, 1)))
    fill = torch.as_tensor(fill, device=x.device, dtype=x.dtype).reshape(-1)
    fill = fill.view(1, -1, 1, 1) if fill.numel() == c else fill.view(1, 1, 1, 1)
    return torch.where(inside[:, None], fill.expand_as(x), x)


def rand_augment(x: torch.Tensor, generator: torch.Generator, num_ops: int = 2,
                 max_magnitude: float = 10.0, policy: str = "cubuk",
                 translate: float | None = None) -> torch.Tensor:
    """Strongly augmented copy of the float batch ``x`` (values in [0, 1]); see the module
    docstring for the two ``policy`` variants. ``translate`` (a share of the side) overrides
    the policy's largest translation."""
    if policy not in POLICIES:
        raise ValueError(f"unknown RandAugment policy {policy!r}; use {', '.join(POLICIES)}")
    uda = policy == "uda"
    ops = UDA_OPS if uda else CUBUK_OPS
    if translate is None:
        translate = 10 / 32 if uda else 0.45
    n, dev = len(x), x.device
    for _ in range(num_ops):
        op = torch.randint(0, len(ops), (n,), device=dev, generator=generator)
        if uda:
            level = torch.randint(1, 10, (n,), device=dev, generator=generator)
            m = level.float() / 10
            applied = torch.rand(n, device=dev, generator=generator) < 0.5
        else:
            m = torch.rand(n, device=dev, generator=generator) * max_magnitude / 10   # in [0, 1]
            applied = torch.ones(n, dtype=torch.bool, device=dev)
        sign = torch.where(torch.rand(n, device=dev, generator=generator) < 0.5, -1.0, 1.0)
        is_op = {name: (op == i) & applied for i, name in enumerate(ops)}
        pick = lambda name, value: torch.where(is_op[name], value, torch.zeros_like(value))  # noqa: E731
        # geometric operations, folded into one warp (identity for the other images)
        geo = torch.zeros(n, dtype=torch.bool, device=dev)
        for name in GEOMETRIC:
            geo |= is_op[name]
        warped = _affine(x, pick("rotate", sign * m * 30 * math.pi / 180),
                         pick("shear_x", sign * m * 0.3), pick("shear_y", sign * m * 0.3),
                         pick("translate_x", sign * m * translate),
                         pick("translate_y", sign * m * translate))
        out = torch.where(geo.view(-1, 1, 1, 1), warped, x)
        if uda:
            enhance = 0.1 + 1.8 * m                                   # no sign: [0.1, 1.9]
            bits = (4 - (4 * m).floor()).clamp(1, 4)                  # posterize to 4..1 bits
            solarize_at = 1 - (256 * m).floor() / 256
        else:
            enhance = 1 + sign * m * 0.9                              # PIL enhance factor
            bits = (8 - (m * 4).round()).clamp(4, 8)                  # keep 4..8 bits
            solarize_at = 1 - m
        step = (2 ** (8 - bits)).view(-1, 1, 1, 1)
        candidates = {
            "autocontrast": lambda: _autocontrast(x),
            "equalize": lambda: _equalize(x),
            "solarize": lambda: torch.where(x >= solarize_at.view(-1, 1, 1, 1), 1 - x, x),
            "color": lambda: _blend(x, grayscale(x), enhance),
            "posterize": lambda: torch.floor(x * 255 / step) * step / 255,
            "contrast": lambda: _blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
                                       .expand_as(x), enhance),
            "brightness": lambda: _blend(x, torch.zeros_like(x), enhance),
            "sharpness": lambda: _sharpness(x, enhance),
            "invert": lambda: 1 - x,
            "cutout": lambda: cutout(x, m * 20 / 32, generator, UDA_CUTOUT_FILL),
        }
        for name, compute in candidates.items():
            if name not in is_op:
                continue
            # on the CPU skip unused ops; on an accelerator, asking would be a host sync
            if x.device.type != "cpu" or bool(is_op[name].any()):
                out = torch.where(is_op[name].view(-1, 1, 1, 1), compute(), out)
        x = out.clamp(0, 1)
    return x.contiguous(memory_format=torch.channels_last)
