"""Claim files: "this process is doing that piece of work", in a folder every worker sees.

Several processes may share a results folder and a cache: two drivers started on the same
``--out``, Ray workers, Slurm array tasks on different nodes. Before a unit runs, its worker
claims it (``OUT/.claims/UNIT.claim``); before a checkpoint is trained, the trainer claims it
(``CACHE/checkpoints/ID.claim``). A second process that finds a live claim skips the unit, or
waits for the checkpoint and then reads it from the cache instead of training it again.

A claim must not outlive its holder: a worker killed by the out-of-memory killer or by
Slurm's time limit cannot remove its file. A claim made under the Slurm job that now asks
again (requeued after preemption) is that job's own. So a holder refreshes its claim's time stamp
every :data:`HEARTBEAT_S` seconds from a background thread, and a claim is *stale*, and
taken over, when its holder is a process of this host that no longer exists, or when its
time stamp is older than :data:`STALE_AFTER_S` (a holder on another node, or one frozen) or
more than :data:`FUTURE_SKEW_S` in the future (no live holder's clock gave it), when its
pid now belongs to another process (the holder's start time, recorded in the claim, differs),
and when it holds no holder at all for :data:`GARBAGE_GRACE_S` (a file of garbage, or a
holder killed while writing it). A claim is a file anyone sharing the folder can write: it
is read as data, and none of it decides more than "skip this unit for now".

Claims are created with ``O_CREAT | O_EXCL``, which is atomic on local file systems and on
NFSv3 and later, the file systems clusters share.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import SSLBenchError

HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


def _slurm_job() -> str | None:
    """This process's Slurm job (``JOBID`` or ``ARRAYJOB_TASK``), which a requeue keeps."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if job:
        return f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host is running (a killed one its parent has not yet
    reaped, a zombie, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        pass             # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True      # no /proc (macOS): signal 0 is all we know
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _process_start(pid: int) -> str | None:
    """When a process of this host started (boot id and start time in clock ticks, from
    /proc), or None where /proc does not tell: with its pid it names the process, so a claim
    whose pid was reused by an unrelated process is not taken for a live holder."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return f"{boot}:{fields[19]}"           # field 22 of stat: starttime
    except (OSError, IndexError):
        return None


GARBAGE_GRACE_S = 10.0    # a claim file without a holder (killed while writing it), then stale
FUTURE_SKEW_S = 60.0      # a heartbeat this far in the future is not a clock's drift


class Claim:
    """One claim file. :meth:`try_acquire` takes it if it is free or stale; :meth:`release`
    removes it (only if it is still ours). While held, a daemon thread keeps it fresh."""

    def __init__(self, path: Path, what: str = "") -> None:
        self.path = Path(path)
        self.what = what
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ inspecting
    def holder(self) -> dict[str, Any] | None:
        """What the claim file says (``host``, ``pid``, ``token``, ``what``), ``None`` if absent.
        A file that cannot be parsed (a holder killed while writing it) reads as ``{}``."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def stale(self, holder: dict[str, Any] | None = None) -> bool:
        """Whether an existing claim may be taken over (see the module docstring)."""
        holder = self.holder() if holder is None else holder
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if age > STALE_AFTER_S or age < -FUTURE_SKEW_S:
            return True          # no heartbeat for too long, or one no live clock gave
        if not (isinstance(holder.get("host"), str) and isinstance(holder.get("pid"), int)
                and not isinstance(holder.get("pid"), bool)):
            return age > GARBAGE_GRACE_S      # not a claim its holder finished writing
        if holder.get("slurm_job") and holder.get("slurm_job") == _slurm_job():
            return True          # made by this Slurm job before it was requeued
        if holder["host"] == socket.gethostname():
            if not _pid_alive(holder["pid"]):
                return True
            started = holder.get("started")
            # the pid is alive: the same process, or another that was given its number
            return started is not None and started != _process_start(holder["pid"])
        return False

    def describe(self, holder: dict[str, Any] | None) -> str:
        holder = holder or {}
        return f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"

    # ------------------------------------------------------------------ holding
    def try_acquire(self) -> bool:
        """Take the claim if it is free, or stale (then it is replaced). ``False`` when a
        live process holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:     # a read-only folder, a path through a file: one line
            raise SSLBenchError(f"cannot write {str(self.path)!r}: {exc.strerror or exc}") \
                from None
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is None:
                    continue                          # released meanwhile: try again
                if not self.stale(holder):
                    return False
                # stale: move it aside atomically, so that of two processes breaking the same
                # stale claim only one succeeds, then try again
                aside = self.path.with_name(f".{self.path.name}.{os.getpid()}.stale")
                try:
                    os.replace(self.path, aside)
                except FileNotFoundError:
                    continue
                moved = Claim(aside).holder() or {}
                if moved.get("token") != holder.get("token"):
                    # another process broke the stale claim and made a fresh one first: that
                    # is what we moved; put it back
                    with contextlib.suppress(OSError):
                        os.link(aside, self.path)
                with contextlib.suppress(OSError):
                    os.unlink(aside)
                continue
            except OSError as exc:
                raise SSLBenchError(f"cannot write {str(self.path)!r}: "
                                    f"{exc.strerror or exc}") from None
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                           "started": _process_start(os.getpid()),
                           "slurm_job": _slurm_job(), "token": self.token, "what": self.what,
                           "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
            self._start_heartbeat()
            return True
        return False

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                with contextlib.suppress(OSError):
                    os.utime(self.path)

        self._thread = threading.Thread(target=beat, name=f"claim {self.path.name}",
                                        daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        holder = self.holder()
        if holder is not None and holder.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def live_claims(folder: Path) -> dict[str, dict[str, Any]]:
    """The claims of ``folder`` that a live holder keeps (stale ones left out): each file's
    name without ``.claim`` and what its holder wrote (``host``, ``pid``, ``since``). What
    ``sslbench status`` shows as running."""
    live = {}
    for path in sorted(Path(folder).glob("*.claim")):
        claim = Claim(path)
        holder = claim.holder()
        # a claim that names no process (garbage, or still being written) runs nothing
        if holder and isinstance(holder.get("pid"), int) and not claim.stale(holder):
            # what is printed of it is data from another user: plain text only
            live[path.stem] = {**holder, **{k: _printable(holder.get(k))
                                            for k in ("host", "since")}}
    return live


def _printable(value: Any) -> str:
    """A claim's text field as it may be shown on a terminal: no control characters (an
    escape sequence planted in a claim must not reach the user's terminal), at most 100."""
    text = value if isinstance(value, str) else "?"
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:100]


@contextlib.contextmanager
def waiting_claim(path: Path, what: str, ready: Callable[[], bool],
                  on_wait: Callable[[str], None], poll_s: float = 2.0) -> Iterator[bool]:
    """Hold the claim at ``path`` for the body, waiting while a live process holds it.

    Yields ``True`` when the caller holds the claim and must do the work, ``False`` when
    ``ready()`` became true while waiting (the other process finished the work)."""
    claim = Claim(path, what)
    told = False
    while not claim.try_acquire():
        if ready():
            yield False
            return
        if not told:
            on_wait(f"waiting for {what}: {claim.describe(claim.holder())} is making it")
            told = True
        time.sleep(poll_s)
    if told and ready():              # the other process finished just as it let go
        claim.release()
        yield False
        return
    try:
        yield True
    finally:
        claim.release()
