"""BYOL's two augmented views, made for a whole batch on its device with per-image random
parameters (no Python loop over images).

The recipe is BYOL's (Grill et al. 2020, Table 6; ``byol/utils/augmentations.py`` of
google-deepmind/deepmind-research): a random resized crop (area 8-100%, aspect 3/4-4/3)
resized back to the input side, a horizontal flip, with probability 0.8 a colour jitter of
brightness 0.4 (an additive delta, as the authors' code), contrast 0.4, saturation 0.2 and
hue 0.1 applied in a random order per image, grayscale with probability 0.2, a Gaussian
blur (kernel a tenth of the side, sigma in [0.1, 2]) with probability 1.0 in view 1 and 0.1
in view 2, and solarisation with probability 0.0 and 0.2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

VIEWS = ({"blur": 1.0, "solarize": 0.0}, {"blur": 0.1, "solarize": 0.2})


def _uniform(n: int, low: float, high: float, like: torch.Tensor,
             generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=like.device, generator=generator)


def random_resized_crop(x: torch.Tensor, generator: torch.Generator,
                        scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """Per image: a crop of ``scale`` of the area and aspect ``ratio`` (log-uniform), at a
    uniform position, resized to the input side (bilinear). The crop is drawn directly in the
    allowed range (torchvision retries up to ten times, then falls back to a centre crop)."""
    n, _, h, w = x.shape
    area = _uniform(n, *scale, x, generator)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), x, generator)
    aspect = log_r.exp()
    cw = (area * aspect).sqrt().clamp(max=1.0)           # crop width, share of the side
    ch = (area / aspect).sqrt().clamp(max=1.0)
    cx = _uniform(n, 0, 1, x, generator) * (1 - cw) + cw / 2   # centre, share of the side
    cy = _uniform(n, 0, 1, x, generator) * (1 - ch) + ch / 2
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = cw, 2 * cx - 1
    theta[:, 1, 1], theta[:, 1, 2] = ch, 2 * cy - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, None, None, None], a, b)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    v = x.max(1).values
    rng = v - x.min(1).values
    s = torch.where(v > 0, rng / v.clamp_min(1e-12), torch.zeros_like(v))
    norm = 1 / (6 * rng.clamp_min(1e-12))
    hr, hg, hb = norm * (g - b), norm * (b - r) + 2 / 6, norm * (r - g) + 4 / 6
    h = torch.where(r == v, hr, torch.where(g == v, hg, hb)) * (rng > 0)
    return torch.stack([h % 1.0, s, v], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    c = s * v
    m = v - c
    dh = (h % 1.0) * 6
    xx = c * (1 - (dh % 2 - 1).abs())
    k = dh.floor()
    zero = torch.zeros_like(c)
    r = torch.where((k == 0) | (k == 5), c, torch.where((k == 1) | (k == 4), xx, zero))
    g = torch.where((k == 1) | (k == 2), c, torch.where((k == 0) | (k == 3), xx, zero))
    b = torch.where((k == 3) | (k == 4), c, torch.where((k == 2) | (k == 5), xx, zero))
    return torch.stack([r, g, b], 1) + m[:, None]


def grayscale(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.2989, 0.5870, 0.1140], device=x.device, dtype=x.dtype)
    return (x * w.view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(x)


def colour_transform(x: torch.Tensor, generator: torch.Generator, brightness=0.4,
                     contrast=0.4, saturation=0.2, hue=0.1, jitter_p=0.8,
                     grayscale_p=0.2) -> torch.Tensor:
    """Colour jitter in a random order per image (each step clipped to [0, 1], as the
    authors' code), then grayscale."""
    n = x.shape[0]
    jitter = torch.rand(n, device=x.device, generator=generator) < jitter_p
    delta_b = _uniform(n, -brightness, brightness, x, generator)
    factor_c = _uniform(n, 1 - contrast, 1 + contrast, x, generator)
    factor_s = _uniform(n, 1 - saturation, 1 + saturation, x, generator)
    delta_h = _uniform(n, -hue, hue, x, generator)
    order = torch.rand(n, 4, device=x.device, generator=generator).argsort(1)

    def apply(op: int, y: torch.Tensor) -> torch.Tensor:
        if op == 0:
            return y + delta_b[:, None, None, None]
        if op == 1:
            mean = y.mean(dim=(2, 3), keepdim=True)
            return factor_c[:, None, None, None] * (y - mean) + mean
        hsv = rgb_to_hsv(y)
        if op == 2:
            hsv = torch.stack([hsv[:, 0], (hsv[:, 1] * factor_s[:, None, None]).clamp(0, 1),
                               hsv[:, 2]], 1)
        else:
            hsv = torch.stack([(hsv[:, 0] + delta_h[:, None, None]) % 1.0, hsv[:, 1],
                               hsv[:, 2]], 1)
        return hsv_to_rgb(hsv)

    for position in range(4):
        for op in range(4):
            chosen = jitter & (order[:, position] == op)
            if bool(chosen.any()):
                x = _where(chosen, apply(op, x).clamp(0, 1), x)
    gray = torch.rand(n, device=x.device, generator=generator) < grayscale_p
    return _where(gray, grayscale(x), x).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, generator: torch.Generator, p: float,
                  sigma=(0.1, 2.0)) -> torch.Tensor:
    """With probability ``p`` per image, a separable Gaussian blur with kernel size a tenth
    of the side (radius ``int(side / 20)``, as the authors' code) and sigma drawn per image."""
    n, c, h, w = x.shape
    radius = int(h / 10 / 2)
    apply = torch.rand(n, device=x.device, generator=generator) < p
    s = _uniform(n, *sigma, x, generator)
    if radius == 0 or not bool(apply.any()):
        return x
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-offsets[None] ** 2 / (2 * s[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)                      # (N, K)
    k = kernel.repeat_interleave(c, 0)                                 # (N*C, K)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :],
                 groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None],
                 groups=n * c)
    return _where(apply, y.reshape(n, c, h, w), x)


def solarize(x: torch.Tensor, generator: torch.Generator, p: float,
             threshold: float = 0.5) -> torch.Tensor:
    apply = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return _where(apply, torch.where(x < threshold, x, 1 - x), x)


def view(images: torch.Tensor, generator: torch.Generator, which: int) -> torch.Tensor:
    """View ``which`` (0 or 1) of a float batch in [0, 1]."""
    preset = VIEWS[which]
    x = random_resized_crop(images, generator)
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    x = _where(flip, x.flip(3), x)
    x = colour_transform(x, generator)
    x = gaussian_blur(x, generator, preset["blur"])
    x = solarize(x, generator, preset["solarize"])
    return x.clamp(0, 1)
