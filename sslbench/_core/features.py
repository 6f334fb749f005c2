"""Frozen-backbone features, extracted once per (checkpoint, data set, split) and cached.

The linear and kNN protocols train on these instead of running the frozen network at every
probe epoch: one forward pass over the data per checkpoint, shared by every fraction, seed and
protocol of that checkpoint. The cache lives in memory for the run and on disk under the cache
directory, so that a resumed or extended sweep does not extract again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .atomic import atomic_torch_save, safe_torch_load
from .timing import timed
from ..augment import to_float
from ..images import Images, chunks
from ..training import autocast


@torch.no_grad()
def extract_features(backbone: torch.nn.Module, images: Images | torch.Tensor,
                     device: torch.device, dtype: torch.dtype | None,
                     batch_size: int = 512) -> list[torch.Tensor]:
    """Pooled features of every stage for uint8 ``images`` (on ``device``, or streamed), in
    eval mode."""
    was_training = backbone.training
    backbone.eval()
    parts: list[list[torch.Tensor]] = []
    for x in chunks(images, batch_size):
        with autocast(device, dtype):
            parts.append([f.float() for f in backbone.forward_stages(to_float(x))])
    backbone.train(was_training)
    return [torch.cat([c[s] for c in parts]) for s in range(len(parts[0]))]


@torch.no_grad()
def extract_maps(backbone: torch.nn.Module, images: Images | torch.Tensor, stage: int,
                 device: torch.device, dtype: torch.dtype | None,
                 batch_size: int = 512) -> torch.Tensor:
    """Feature maps (N, C, H, W) of stage ``stage`` (1-based) for uint8 ``images``, in eval
    mode, float."""
    was_training = backbone.training
    backbone.eval()
    parts = []
    for x in chunks(images, batch_size):
        with autocast(device, dtype):
            parts.append(backbone.stage_maps(backbone.normalise(to_float(x)))[stage - 1].float())
    backbone.train(was_training)
    return torch.cat(parts)


class FeatureCache:
    """Memory + disk cache of stage features, keyed by checkpoint id and split name."""

    def __init__(self, directory: Path | None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.warn = warn
        self._memory: dict[str, list[torch.Tensor] | torch.Tensor] = {}
        self.extractions = 0  # how many times features were actually computed (for tests)

    def get(self, key: str, compute: Callable[[], list[torch.Tensor]],
            device: torch.device) -> list[torch.Tensor]:
        if key in self._memory:
            return self._memory[key]
        path = self.directory / f"{key}.pt" if self.directory else None
        loaded = safe_torch_load(path, self.warn) if path is not None and path.exists() else None
        if loaded is not None and not (isinstance(loaded, list)
                                       and all(isinstance(f, torch.Tensor) for f in loaded)):
            if self.warn:
                self.warn(f"ignoring cache file {str(path)!r} (recomputing it): not a list "
                          "of feature tensors")
            loaded = None
        if loaded is not None:
            feats = [f.to(device) for f in loaded]
        else:
            feats = compute()
            self.extractions += 1
            if path is not None:
                atomic_torch_save([f.cpu() for f in feats], path)
        self._memory[key] = feats
        return feats

    def in_memory(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Computed once and kept in memory only, until :meth:`forget`."""
        if key not in self._memory:
            self._memory[key] = compute()
        return self._memory[key]

    def forget(self, prefix: str) -> None:
        """Drop in-memory entries of one checkpoint once its cells are done."""
        for k in [k for k in self._memory if k.startswith(prefix)]:
            del self._memory[k]


class FeatureStore:
    """The frozen features of one checkpoint on the pool, validation and test images:
    extracted on first use by a backbone built with ``make_backbone()`` (the checkpoint's
    weights, on ``device``) and kept in a :class:`FeatureCache` under ``ckpt_id``. Protocols
    reach it through :attr:`sslbench.protocol.Split.features`."""

    def __init__(self, cache: FeatureCache, ckpt_id: str, splits: dict[str, Images],
                 make_backbone: Callable[[], torch.nn.Module], device: torch.device,
                 dtype: torch.dtype | None) -> None:
        self.cache, self.ckpt_id, self.splits = cache, ckpt_id, splits
        self.make_backbone, self.device, self.dtype = make_backbone, device, dtype
        self._backbone: torch.nn.Module | None = None

    def get(self, split: str) -> list[torch.Tensor]:
        # the checkpoint id hashes the data, the splits and the resolution already
        return self.cache.get(f"{self.ckpt_id}-{split}",
                              lambda: self._extract(self.splits[split]), self.device)

    def maps(self, images: Images, stage: int, split: str | None = None) -> torch.Tensor:
        """Feature maps of one stage for ``images``; kept in memory for the checkpoint's
        cells when ``split`` names a whole split (the test split), computed afresh for a
        cell's own subset. Not written to disk: at 8x8 and 96 channels the maps of 60,000
        CIFAR-10 images are 1.5 GB per checkpoint."""
        compute = lambda: self._extract_maps(images, stage)  # noqa: E731
        if split is None:
            return compute()
        return self.cache.in_memory(f"{self.ckpt_id}-{split}-maps{stage}", compute)

    def _extract_maps(self, images: Images, stage: int) -> torch.Tensor:
        if self._backbone is None:
            self._backbone = self.make_backbone()
        with timed("features"):
            return extract_maps(self._backbone, images, stage, self.device, self.dtype)

    def _extract(self, images: Images) -> list[torch.Tensor]:
        if self._backbone is None:
            self._backbone = self.make_backbone()
        with timed("features"):
            return extract_features(self._backbone, images, self.device, self.dtype)
