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
        """The file of a checkpoint id: the id is a name made by sslbench (task and hash),
        never a path; one that is not (it came from a record) is refused."""
        from ..errors import SSLBenchError
        from .names import SAFE_NAME
        if not isinstance(ckpt_id, str) or not SAFE_NAME.match(ckpt_id):
            raise SSLBenchError(f"{ckpt_id!r} is not a checkpoint id")
        return self.directory / f"{ckpt_id}.pt"

    def load(self, ckpt_id: str, expected: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The checkpoint, or ``None`` (a miss: the caller trains it). With ``expected`` (the
        state dict of the backbone it is for), a checkpoint whose tensors do not have the
        same names and shapes is a miss too, named in a warning."""
        path = self.path(ckpt_id)
        saved = safe_torch_load(path, self.warn) if path.is_file() else None
        if saved is None:
            return None
        if not (isinstance(saved, dict) and isinstance(saved.get("backbone"), dict)
                and isinstance(saved.get("info"), dict)):
            self.warn(f"ignoring cache file {str(path)!r} (recomputing it): not a checkpoint "
                      "of this sslbench")
            return None
        if expected is not None:
            problem = state_mismatch(saved["backbone"], expected)
            if problem:
                self.warn(f"ignoring cache file {str(path)!r} (recomputing it): {problem}")
                return None
        return saved["backbone"], saved["info"]

    def save(self, ckpt_id: str, state: dict[str, Any], info: dict[str, Any]) -> None:
        atomic_torch_save({"backbone": state, "info": info}, self.path(ckpt_id))


def state_mismatch(state: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """Why ``state`` does not load into a model whose state dict is ``expected``, or None."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        return (f"its tensors are not the backbone's ({len(missing)} missing, "
                f"{len(extra)} unexpected, e.g. {(missing + extra)[0]!r})")
    for key, value in expected.items():
        got = state[key]
        if not hasattr(got, "shape") or tuple(got.shape) != tuple(value.shape):
            return (f"tensor {key!r} has shape {tuple(getattr(got, 'shape', ()))}, the "
                    f"backbone's is {tuple(value.shape)}")
    return None
