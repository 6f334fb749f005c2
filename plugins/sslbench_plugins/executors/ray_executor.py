"""``--executor ray``: each unit a Ray task, on a cluster or on a local Ray it starts.

Each unit is a task with the resources asked for (``cpus_per_job``, ``gpus_per_job``) and
``max_retries=0``: a lost unit is reported, and a rerun retries it. The executor connects to
``address`` (``--ray-address``) or ``$RAY_ADDRESS``, else starts a local Ray of its own on
this machine (even when another Ray runs here: ``ray.init(address="local")``) and stops it
at the end.

Starting a local Ray takes seconds (about 5 here) and so does stopping it (about 1.5):
:meth:`RayExecutor.start` connects in a thread of its own while the driver builds its
sweep, and once the last unit ended that thread stops it while the driver prints the
leaderboard (:meth:`RayExecutor.close` waits for it). The thread that starts a local Ray
must live until it is stopped: Ray's processes are started to die with the thread that
forked them (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import sslbench
from sslbench import SSLBenchError
from sslbench.executor import Executor, Finished, UnitJob, one_line
from sslbench.options import Range


def _call(job: UnitJob):
    """What a Ray task runs: the job."""
    return job()


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Ray retries an unreachable cluster address for a minute or more; a TCP connection
    to it says at once whether anything listens there."""
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SSLBenchError(f"--ray-address {address!r} is not HOST:PORT (or ray://HOST:PORT)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SSLBenchError(f"cannot reach the Ray cluster at {address}: "
                            f"{exc.strerror or exc}") from None


class RayExecutor(Executor):
    name = "ray"
    description = "each unit a Ray task, on the cluster at `address` or on a local Ray"
    defaults = {"address": "", "cpus_per_job": 1, "gpus_per_job": 0}
    ranges = {"cpus_per_job": Range(ge=1), "gpus_per_job": Range(ge=0)}
    former_flags = {"ray_address": "address", "cpus_per_job": "cpus_per_job",
                    "gpus_per_job": "gpus_per_job"}

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._owner: threading.Thread | None = None
        self._ready = threading.Event()      # connected, or failed to
        self._stop = threading.Event()       # the driver is done with Ray
        self._error: BaseException | None = None
        self._jobs: list[UnitJob] = []

    def check(self, out: Path) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SSLBenchError("--executor ray needs ray installed: "
                                "pip install 'sslbench[ray]'") from None

    def start(self) -> None:
        if self._owner is not None:
            return
        self.check(Path("."))
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            # what ray.init does when called on the main thread: a SIGTERM exits through
            # sys.exit, so that a Ray this driver started is stopped on the way out
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        self._owner = threading.Thread(target=self._own_ray, name="sslbench-ray", daemon=True)
        self._owner.start()

    def _own_ray(self) -> None:
        """Connect (or start a local Ray), wait until the driver is done, then stop it."""
        try:
            started = self._connect()
        except BaseException as exc:  # noqa: BLE001 - raised on the driver's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._stop.wait()
        if started:
            import ray
            ray.shutdown()

    def _connect(self) -> bool:
        """Connect to (or start) Ray; whether this driver started it."""
        import ray
        if ray.is_initialized():
            return False
        address = self.options["address"] or os.environ.get("RAY_ADDRESS") or None
        check_reachable(address)
        # Ray logs notices while starting (a new local cluster's token authentication, that
        # it set no SIGTERM handler off the main thread: start() did); the driver's output
        # is the sweep's: errors still raise
        ray_log = logging.getLogger("ray")
        level = ray_log.level
        ray_log.setLevel(logging.ERROR)
        try:
            # no address: a Ray of this sweep's own ("local"), never a cluster that someone
            # else's `ray start` left running on this machine (which address=None joins)
            ray.init(address=address or "local", include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if address is None:
                raise SSLBenchError(f"cannot start a local Ray: {one_line(exc)}") from None
            hint = ("; if it uses Ray's token authentication (clusters started with "
                    "`ray start` do from Ray 2.59 on), set RAY_AUTH_MODE=token for this "
                    "command, with the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token"
                    if not os.environ.get("RAY_AUTH_MODE") else "")
            raise SSLBenchError(f"cannot reach the Ray cluster at {address}: "
                                f"{one_line(exc)}{hint}") from None
        finally:
            ray_log.setLevel(level)
        return address is None

    def submit(self, jobs: Sequence[UnitJob], reporter) -> None:
        threads = self.options["cpus_per_job"]
        self._jobs = [job.with_threads(threads) for job in jobs]

    def finished(self) -> Iterator[Finished]:
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        try:
            yield from self._send_and_wait()
        except BaseException:
            # the traceback still holds Ray objects of this thread: stop Ray only after them
            self.close()
            raise
        # Ray exits the process if one of its objects is released while it stops, so every
        # Ray object of this thread must be gone first: those of _send_and_wait's frame went
        # with it, those kept in reference cycles (a lost worker's exception and the frames
        # of its traceback) go with a collection. Then the owner thread may stop a local Ray
        # while the driver prints.
        gc.collect()
        self._stop.set()

    def _send_and_wait(self) -> Iterator[Finished]:
        import ray
        resources = {"num_cpus": self.options["cpus_per_job"],
                     "num_gpus": self.options["gpus_per_job"]}
        available = ray.cluster_resources()
        for kind, key in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            if resources[kind] > available.get(key, 0):
                raise SSLBenchError(
                    f"each unit asks for {resources[kind]} {key}, but the Ray cluster has "
                    f"{available.get(key, 0):g}")
        task = ray.remote(max_retries=0, **resources)(_call)
        since = time.time()
        pending = {task.remote(job): job.unit for job in self._jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(done[0])
            try:
                outcome, error = ray.get(done[0]), None
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, SSLBenchError):
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    raise SSLBenchError(f"unit {unit.id}: {cause}") from None
                outcome, error = None, f"ray task failed: {one_line(cause)}"
            except ray.exceptions.RayError as exc:   # a worker or node lost
                outcome, error = None, f"ray: {one_line(exc)}"
            del done
            yield Finished(unit, outcome, error, since)

    def close(self) -> None:
        if self._owner is not None:
            self._stop.set()
            self._owner.join()
            self._owner = None


@sslbench.hookimpl
def sslbench_executors():
    return [RayExecutor]
