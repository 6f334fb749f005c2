"""Batched augmentation on the device: one call transforms a whole batch, with per-image
random parameters, and no Python loop over images."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = [
    'to_float', 'random_flip', 'random_crop', 'standard_augment', 'crop_patches',
    'resize_to', 'constant', 'grayscale'
]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float in [0, 1] (same device)."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator,
                mode: str = "reflect") -> torch.Tensor:
    """Pad by ``padding`` (``mode``: ``"reflect"``, or ``"constant"`` for black as
    torchvision's ``RandomCrop(padding=...)``) and cut a random crop of the original size from
    each image."""
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode=mode)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]     # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]     # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols]                      # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def standard_augment(images: torch.Tensor, generator: torch.Generator,
                     padding: int | None = None) -> torch.Tensor:
    """The usual small-image fine-tuning augmentation: random crop with reflect padding
    (``padding`` px, default 1/8 of the side: 4 px at 32 as on CIFAR) and a horizontal flip,
    on float images in [0, 1]."""
    x = to_float(images)
    x = random_crop(x, max(1, x.shape[-1] // 8) if padding is None else padding, generator)
    return random_flip(x, generator)


def crop_patches(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                 size: int) -> torch.Tensor:
    """Cut K square patches of side ``size`` from each image, all in one gather.

    ``x`` is (N, C, H, W); ``top`` and ``left`` are (N, K) integer tensors (in range). Returns
    (N, K, C, size, size).
    """
    n, c, _, _ = x.shape
    ar = torch.arange(size, device=x.device)
    rows = (top[:, :, None] + ar)[:, :, :, None]                 # (N, K, S, 1)
    cols = (left[:, :, None] + ar)[:, :, None, :]                # (N, K, 1, S)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    patches = x.permute(0, 2, 3, 1)[batch, rows, cols]           # (N, K, S, S, C)
    return patches.permute(0, 1, 4, 2, 3)


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a (..., C, H, W) float batch to ``size`` (bilinear) if it differs."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    lead = x.shape[:-3]
    y = F.interpolate(x.reshape(-1, *x.shape[-3:]), size=(size, size), mode="bilinear",
                      align_corners=False)
    return y.reshape(*lead, *y.shape[-3:])


@functools.lru_cache(maxsize=32)
def constant(values: tuple, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A small constant tensor, made once per device: building it from a Python list at every
    step would be a blocking host-to-device copy on CUDA."""
    return torch.tensor(values, device=device, dtype=dtype)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, repeated over the 3 channels (channel dim -3)."""
    w = constant((0.299, 0.587, 0.114), x.device, x.dtype)
    luma = (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)
    return luma.expand_as(x)
