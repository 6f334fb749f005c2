"""Atomic file writes: write to a temporary file in the same folder, then rename over the
target, so that a result file is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..errors import SSLBenchError
from .distributed import is_writer
from .timing import timed


def _umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file and a rename. An operating-system error (a read-only
    folder, a full disk, a path through a file) is an :class:`SSLBenchError` naming the path
    and the cause: the CLI shows one line and exits 2, and no file is left half-written."""
    path = Path(path)
    if not is_writer():          # one of several torchrun processes: the first one writes
        return
    try:
        with timed("io"):
            _write_atomically(path, write)
    except OSError as exc:
        raise SSLBenchError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    except RuntimeError as exc:
        # torch.save reports a full disk as "PytorchStreamWriter failed writing file ...":
        # say what it means when the disk is indeed (nearly) full
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else None
        if free is not None and free < 64 * 2**20:
            raise SSLBenchError(f"cannot write {str(path)!r}: no space left on the device "
                                f"({free // 2**10} KiB free)") from None
        raise


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600 files; a results folder is shared with colleagues, so the file
        # gets the mode any other new file would (0666 minus the umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch
    _atomic(path, lambda f: torch.save(obj, f))


def safe_torch_load(path: Path, warn: Callable[[str], None] | None = None) -> Any | None:
    """Load a file written by :func:`atomic_torch_save` **without running code**: only
    tensors and plain containers (``weights_only=True``), whatever torch's default. A cache
    directory may be shared or planted; a file that cannot be read this way (truncated,
    corrupt, or holding anything else) is ``None``: the caller recomputes it, and ``warn`` is
    told which file and why."""
    import torch
    try:
        with timed("io"):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable cache file is a cache miss
        if warn is not None:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warn(f"ignoring cache file {str(path)!r} (recomputing it): {type(exc).__name__}: "
                 f"{reason[:200]}")
        return None
