"""Pretrained checkpoints in the cache directory: one file per (task, backbone, seed, data,
settings, code), named by a hash of all of it, so that any sweep that needs the same
pretraining finds it, and none finds a stale one.

A file is read with ``weights_only=True`` (:func:`sslbench._core.atomic.safe_torch_load`): a file
planted in a shared cache cannot run code, and one that is damaged or holds anything else
is named in a warning and recomputed. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_torch_save, safe_torch_load


def cache_key(obj: Any) -> str:
    """A short, stable hash of a JSON-able description of what a cache file depends on."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CheckpointStore:
    """``load(ckpt_id)`` -> (backbone state dict, pretraining info) or ``None``;
    ``save(ckpt_id, state, info)``. Lives under ``CACHE/checkpoints``."""

    def __init__(self, cache_dir: Path, warn: Callable[[str], None]) -> None:
        self.directory = Path(cache_dir) / "checkpoints"
        self.warn = warn

    def path(self, ckpt_id: str) -> Path:
        return self.directory / f"{ckpt_id}.pt"

    def load(self, ckpt_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        path = self.path(ckpt_id)
        saved = safe_torch_load(path, self.warn) if path.is_file() else None
        if saved is None:
            return None
        if isinstance(saved, dict) and isinstance(saved.get("backbone"), dict) \
                and isinstance(saved.get("info"), dict):
            return saved["backbone"], saved["info"]
        self.warn(f"ignoring cache file {str(path)!r} (recomputing it): not a checkpoint of "
                  "this sslbench")
        return None

    def save(self, ckpt_id: str, state: dict[str, Any], info: dict[str, Any]) -> None:
        atomic_torch_save({"backbone": state, "info": info}, self.path(ckpt_id))
