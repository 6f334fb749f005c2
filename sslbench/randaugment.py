"""RandAugment (Cubuk et al. 2020) on whole batches, with random choices per image.

Each image gets ``num_ops`` operations drawn independently from the 14 of the paper, each
with its own magnitude drawn uniformly from [0, ``max_magnitude``] out of 10 (UDA samples the
magnitude at random instead of fixing it). Every operation is computed for the whole batch
with per-image parameters and selected per image with a mask; the geometric ones (rotate,
shear, translate) are folded into one affine warp per round. No Python loop over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import constant, grayscale

OPS = ["identity", "autocontrast", "equalize", "rotate", "solarize", "color", "posterize",
       "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x",
       "translate_y"]
GEOMETRIC = {"rotate", "shear_x", "shear_y", "translate_x", "translate_y"}


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


def rand_augment(x: torch.Tensor, generator: torch.Generator, num_ops: int = 2,
                 max_magnitude: float = 10.0) -> torch.Tensor:
    """Strongly augmented copy of the float batch ``x`` (values in [0, 1])."""
    n, dev = len(x), x.device
    for _ in range(num_ops):
        op = torch.randint(0, len(OPS), (n,), device=dev, generator=generator)
        m = torch.rand(n, device=dev, generator=generator) * max_magnitude / 10   # in [0, 1]
        sign = torch.where(torch.rand(n, device=dev, generator=generator) < 0.5, -1.0, 1.0)
        is_op = {name: (op == i) for i, name in enumerate(OPS)}
        pick = lambda name, value: torch.where(is_op[name], value, torch.zeros_like(value))  # noqa: E731
        # geometric operations, folded into one warp (identity for the other images)
        geo = torch.zeros(n, dtype=torch.bool, device=dev)
        for name in GEOMETRIC:
            geo |= is_op[name]
        warped = _affine(x, pick("rotate", sign * m * 30 * math.pi / 180),
                         pick("shear_x", sign * m * 0.3), pick("shear_y", sign * m * 0.3),
                         pick("translate_x", sign * m * 0.45), pick("translate_y", sign * m * 0.45))
        out = torch.where(geo.view(-1, 1, 1, 1), warped, x)
        enhance = 1 + sign * m * 0.9                                 # PIL enhance factor
        bits = (8 - (m * 4).round()).clamp(4, 8)                     # posterize: keep 4..8 bits
        step = (2 ** (8 - bits)).view(-1, 1, 1, 1)
        candidates = {
            "autocontrast": lambda: _autocontrast(x),
            "equalize": lambda: _equalize(x),
            "solarize": lambda: torch.where(x >= (1 - m).view(-1, 1, 1, 1), 1 - x, x),
            "color": lambda: _blend(x, grayscale(x), enhance),
            "posterize": lambda: torch.floor(x * 255 / step) * step / 255,
            "contrast": lambda: _blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
                                       .expand_as(x), enhance),
            "brightness": lambda: _blend(x, torch.zeros_like(x), enhance),
            "sharpness": lambda: _sharpness(x, enhance),
        }
        for name, compute in candidates.items():
            # on the CPU skip unused ops; on an accelerator, asking would be a host sync
            if x.device.type != "cpu" or bool(is_op[name].any()):
                out = torch.where(is_op[name].view(-1, 1, 1, 1), compute(), out)
        x = out.clamp(0, 1)
    return x.contiguous(memory_format=torch.channels_last)
