"""Atomic file writes: write to a temporary file in the same folder, then rename over the
target, so that a result file is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
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
    except RuntimeError:
        # torch.save reports a full disk as "PytorchStreamWriter failed writing file ...":
        # say what it means when the disk is indeed (nearly) full
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else None
        if free is not None and free < 64 * 2**20:
            raise SSLBenchError(f"cannot write {str(path)!r}: no space left on the device "
                                f"({free // 2**10} KiB free)") from None
        raise


# a temporary file's name says who is writing it: ``.NAME~HOST~PID~RANDOM.tmp``, so that
# one left behind by a killed writer can be told from one being written now
_TMP_SUFFIX = ".tmp"
_STALE_TMP_S = 24 * 3600.0          # another host's leftover: removed after a day
_swept: set[Path] = set()          # folders this process has tidied


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}~{socket.gethostname()}~{os.getpid()}~"


def remove_stale_tmp(folder: Path) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder``: those of a
    process of this host that no longer runs, and any older than a day (another host's,
    or an older sslbench's, whose names do not say who wrote them). Done on the first
    write of a process to a folder. Returns what was removed."""
    from .claims import _pid_alive
    removed = []
    host = socket.gethostname()
    try:
        candidates = [p for p in folder.iterdir()
                      if p.name.startswith(".") and p.name.endswith(_TMP_SUFFIX)]
    except OSError:
        return removed
    for tmp in candidates:
        parts = tmp.name[:-len(_TMP_SUFFIX)].split("~")
        try:
            age = time.time() - tmp.lstat().st_mtime
        except OSError:
            continue
        if len(parts) == 4 and parts[1] == host and parts[2].isdigit():
            stale = int(parts[2]) != os.getpid() and not _pid_alive(int(parts[2]))
        else:
            stale = age > _STALE_TMP_S
        if stale and tmp.is_file():
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent.resolve()
    if folder not in _swept:
        _swept.add(folder)
        remove_stale_tmp(folder)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX)
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


# A cached tensor file (checkpoint, features, decoded images, resume snapshot) starts with
# the SHA-256 of what follows: a file damaged on disk or in a copy (a flipped bit that torch
# would load without a word) is named and recomputed rather than used.
_DIGEST_MAGIC = b"sslbench-sha256:"
_DIGEST_LINE = len(_DIGEST_MAGIC) + 64 + 1


def torch_bytes(obj: Any) -> bytes:
    """``obj`` as :func:`atomic_torch_save` writes it: its digest line, then torch's bytes."""
    import io

    import torch
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    return _DIGEST_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def atomic_torch_save(obj: Any, path: Path) -> None:
    _atomic(path, lambda f: f.write(torch_bytes(obj)))


def _verified_payload(data: bytes) -> tuple[bytes | None, str | None]:
    """(torch's bytes, None) when the digest line matches them, else (None, why not)."""
    if not data.startswith(_DIGEST_MAGIC) or data[_DIGEST_LINE - 1:_DIGEST_LINE] != b"\n":
        return None, "no checksum (not written by this sslbench)"
    expected = data[len(_DIGEST_MAGIC):_DIGEST_LINE - 1].decode("ascii", "replace")
    payload = data[_DIGEST_LINE:]
    if hashlib.sha256(payload).hexdigest() != expected:
        return None, "its checksum does not match its contents (the file is damaged)"
    return payload, None


def safe_torch_load(path: Path, warn: Callable[[str], None] | None = None) -> Any | None:
    """Load a file written by :func:`atomic_torch_save` **without running code**: only
    tensors and plain containers (``weights_only=True``), whatever torch's default, and only
    when its checksum matches. A cache directory may be shared or planted; a file that
    cannot be read this way (truncated, damaged, without a checksum, holding anything else,
    or a link out of its folder) is ``None``: the caller recomputes it, and ``warn`` is told
    which file and why."""
    import io

    import torch

    def miss(reason: str) -> None:
        if warn is not None:
            warn(f"ignoring cache file {str(path)!r} (recomputing it): {reason}")
        return None

    path = Path(path)
    try:
        if path.resolve().parent != path.parent.resolve():
            return miss("a link to a file outside the cache (not followed)")
        with timed("io"):
            data = path.read_bytes()
    except (OSError, RuntimeError) as exc:
        return miss(f"unreadable: {exc}")
    payload, problem = _verified_payload(data)
    if payload is None:
        return miss(problem)
    try:
        with timed("io"):
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable cache file is a cache miss
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return miss(f"{type(exc).__name__}: {reason[:200]}")
