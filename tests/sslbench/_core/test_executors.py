"""The built-in executors (plugins/sslbench_plugins/executors, chosen by
sslbench._core.executors) on real engines: a local Ray cluster on this machine and
submitit's local executor (the pickling and subprocess path its Slurm executor takes).
No mocks: a worker is killed for real, two drivers really share one results folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import FAST_FLAGS, TINY_DATASET_PLUGIN

PLUGIN = TINY_DATASET_PLUGIN + '''
import os
import signal
from pathlib import Path

from sslbench.protocol import EvaluationProtocol, ProtocolResult


class Killer(EvaluationProtocol):
    """Kills its own process (SIGKILL, as the out-of-memory killer would) the first time any
    worker evaluates it: whoever removes the marker file dies. Then always guesses class 0."""
    name = "killer"
    description = "kills its worker once (test plugin)"
    defaults = {"marker": ""}

    def evaluate(self, ctx):
        marker = self.options["marker"]
        if marker:
            try:
                Path(marker).unlink()
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        predict = lambda split: torch.zeros(len(split), dtype=torch.long,
                                            device=split.labels.device)
        return ProtocolResult(predict, float((ctx.val.labels == 0).float().mean()),
                              {"chosen": "class 0"})


@sslbench.hookimpl
def sslbench_cell_start(cell):
    log = os.environ.get("SSLBENCH_TEST_CELL_LOG")
    if log:                                     # one line per cell that starts, any process
        with open(log, "a") as f:
            f.write(f"{cell.id} {os.getpid()}\\n")


@sslbench.hookimpl
def sslbench_protocols():
    return [Killer]
'''


# The suite runs in two xdist workers; tests that start Ray share one so that two clusters are
# never up at once (`ray stop --force` stops every Ray process of the user).
ONE_RAY = pytest.mark.xdist_group("ray")


@pytest.fixture
def plugin(tmp_path) -> Path:
    path = tmp_path / "engines_plugin.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture
def one_thread():
    """Workers get as many torch threads as CPUs per job (1 here); CPU reductions depend on
    the thread count, so the local reference runs with one too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def accuracies(out: Path) -> dict[str, float]:
    recs = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert all(r["status"] == "ok" for r in recs.values()), \
        {k: r["error"] for k, r in recs.items() if r["status"] != "ok"}
    return {k: r["metrics"]["test_accuracy"] for k, r in recs.items()}


def sweep_args(plugin: Path, *extra: str) -> list[str]:
    return ["--plugin", str(plugin), "--dataset", "tiny", "--tasks", "rotation",
            "--fractions", "1.0", "--seeds", "0,1", "--protocols", "linear,finetune", *extra]


def assert_clean(out: Path) -> None:
    """Every file in records/ is a finished JSON record: nothing half-written, no claim left."""
    names = sorted(p.name for p in (out / "records").iterdir())
    assert all(n.endswith(".json") and not n.startswith(".") for n in names), names
    assert not list((out / ".claims").glob("*.claim")) if (out / ".claims").exists() else True


@contextlib.contextmanager
def running_ray_cluster() -> Iterator[str]:
    """`ray start --head` on 127.0.0.1 with one CPU (token authentication: the default for
    such clusters from Ray 2.59 on); yields its address, and stops it after."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = ray_environment()
    started = subprocess.run([*RAY_CLI, "start", "--head", "--node-ip-address", "127.0.0.1",
                              "--port", str(port), "--num-cpus",
                              "1", "--include-dashboard", "false", "--disable-usage-stats"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*RAY_CLI, "stop", "--force"], capture_output=True, env=env, timeout=120)


RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]


# the test cluster's own token: `ray start` (from Ray 2.60) refuses to start a token cluster
# without one, and ~/.ray/auth_token exists only once some earlier ray.init() has made it
RAY_TOKEN = secrets.token_hex(32)


def ray_environment() -> dict[str, str]:
    """What a user sets to reach a token-authenticated cluster. (Ray reads RAY_AUTH_MODE when
    it is imported, so the sweeps that join the cluster run as commands of their own.)"""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": RAY_TOKEN,
           "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def command_run(*args: str, out: Path) -> tuple[int, str, str]:
    """`sslbench run` with fast_run's settings, as a command in the Ray user's environment."""
    done = subprocess.run([sys.executable, "-m", "sslbench", "run", "--quiet", "--out", str(out),
                           "--cache-dir", str(out.parent / "cache-command"), "--resolution", "16",
                           *FAST_FLAGS, *args], capture_output=True, text=True,
                          env=ray_environment(), timeout=600)
    return done.returncode, done.stdout, done.stderr


# ------------------------------------------------------------- same records, a killed worker
@pytest.mark.parametrize("engine", [
    pytest.param(["--executor", "ray", "--cpus-per-job", "1"], marks=ONE_RAY),
    ["--executor", "slurm", "--slurm-cluster", "local", "--cpus-per-job", "1", "--wait"],
    ["--executor", "local", "--jobs", "2", "--cpus-per-job", "1"],
], ids=["ray", "submitit-local", "local-jobs"])
def test_an_engine_survives_a_killed_worker_and_gives_the_local_executors_records(
        engine, fast_run, plugin, tmp_path, one_thread):
    """A worker is killed (SIGKILL, as the out-of-memory killer would) in its unit's third
    cell: that cell is recorded failed with the engine's reason, the unit's two finished cells
    stay, the driver exits 1. The rerun completes the grid, and every record equals the local
    executor's (one thread, as the workers have), with the workers' time accounts back at the
    driver. Ray's case joins a cluster already running (`ray start --head`, token
    authentication) with --ray-address, and leaves it running: a cluster is not the sweep's
    to stop. Local worker processes (--jobs 2) run as a command of its own (they are
    spawned, which a pytest worker's main module does not survive); there a killed worker
    breaks the pool, which stops the other worker too: its unit is lost as well, and a fresh
    pool runs what had not started. (One test for all this: each engine start costs seconds.
    A Ray that the command starts itself differs in ray.init's address only;
    benchmarks/bench_executors.py runs both.)"""
    if engine[1] != "local":
        pytest.importorskip("ray" if "ray" in engine else "submitit")
    cluster, run = contextlib.ExitStack(), fast_run
    if engine[1] == "local":
        run = command_run
    if engine[1] == "ray":
        address = cluster.enter_context(running_ray_cluster())
        engine, run = [*engine, "--ray-address", address], command_run
    with cluster:
        run_killed_and_rerun(engine, fast_run, run, plugin, tmp_path)
        if engine[1] == "ray":
            status = subprocess.run([*RAY_CLI, "status", "--address", address],
                                    capture_output=True, text=True, env=ray_environment(),
                                    timeout=60)
            assert status.returncode == 0, status.stderr     # still running: not ours to stop
            # beside that running cluster, --executor ray without an address starts a Ray of
            # its own (joining this one, as Ray's address=None does, would fail: this
            # process lacks the cluster's token): its GPU check answers, not an auth error
            status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0", "--executor", "ray",
                                                  "--gpus-per-job", "4"),
                                      out=tmp_path / "own-ray")
            assert status == 2 and "asks for 4 GPU" in err, err


def unit_of(cell_id: str) -> str:
    """The unit of a cell: DATASET__BACKBONE__TASK__PROTOCOL__BUDGET__sSEED -> its id."""
    dataset, backbone, task, _, _, seed = cell_id.split("__")
    return f"{dataset}__{backbone}__{task}__{seed}"


def run_killed_and_rerun(engine: list[str], fast_run, run, plugin: Path, tmp_path: Path) -> None:
    """The killed-worker sweep through ``run`` (in this process or as a command) against the
    local executor's run of the same grid in this process."""
    # local --jobs 2: four units for two workers, so that some wait for a fresh pool
    seeds = "0,1" if engine[1] == "local" else "0"
    grid = sweep_args(plugin, "--protocols", "linear,finetune,killer", "--seeds", seeds)
    status, _, err = fast_run(*grid, out=tmp_path / "local")          # killer.marker unset
    assert status == 0, err
    local = accuracies(tmp_path / "local")
    assert len(local) == 6 * len(seeds.split(","))
    marker = tmp_path / "kill-once"
    marker.touch()
    args = [*grid, "--opt", f"killer.marker={marker}", *engine]
    out = tmp_path / "results"
    status, _, err = run(*args, out=out)
    assert status == 1, err                         # failed cells: exit 1, not a traceback
    assert not marker.exists()                      # one worker did die
    recs = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert len(recs) == len(local)
    failed = {k: r["error"] for k, r in recs.items() if r["status"] == "failed"}
    # the killed cell; its unit's linear and finetune cells finished before the kill and stay
    killed = [c for c in failed if "__killer__f1__" in c
              and all(recs[c.replace("__killer__", p)]["status"] == "ok"
                      for p in ("__linear__", "__finetune__"))]
    assert killed, failed
    reason = {"ray": "ray", "slurm": "slurm job", "local": "a worker process died"}[engine[1]]
    assert all(error.startswith(reason) for error in failed.values()), failed
    if engine[1] != "local":                        # an engine loses the killed unit only
        assert list(failed) == killed, failed
    else:                       # the broken pool lost its two units; a fresh one ran the rest
        units = {unit_of(c) for c in recs}
        whole = units - {unit_of(c) for c in failed}
        # a broken pool loses at most its two running units (which ones depends on who
        # reaches the killer first); the others ran in it or in a fresh pool
        assert len(units) == 4 and len(whole) >= 2, failed
    assert_clean(out)
    log = tmp_path / "cells.log"
    os.environ["SSLBENCH_TEST_CELL_LOG"] = str(log)     # (the test plugin's cell-start hook)
    try:
        status, printed, err = run(*args, out=out)
    finally:
        del os.environ["SSLBENCH_TEST_CELL_LOG"]
    assert status == 0, err                         # no marker now: the rerun completes
    assert "records in" in printed                  # the driver printed the leaderboard
    assert accuracies(out) == local                 # the serial one-thread run's numbers
    assert_clean(out)
    rec = json.loads(next((out / "records").glob("*rotation__finetune*")).read_text())
    assert rec["torch_threads"] == 1 and rec["sweep"]["executor"] == engine[1]
    # the cells the rerun ran, each in a worker process, not in the driver (a Ray cluster's
    # workers have the environment of `ray start`, not the driver's: no log there)
    if engine[1] != "ray":
        ran = dict(line.split() for line in log.read_text().splitlines())
        assert set(ran) == set(failed) and str(os.getpid()) not in ran.values()
    # the workers' time accounts came back to the driver (sslbench._core.time_accounts)
    accounts = [json.loads(p.read_text()) for p in (out / "time").glob("*.json")]
    assert len(accounts) == 2 and all(a["executor"] == engine[1] for a in accounts)
    # (a lost worker's time dies with it: its unit's finished cells are in no account)
    lost_units = {unit_of(c) for c in failed}
    finished_there = {c for c in local if unit_of(c) in lost_units and c not in failed}
    assert set().union(*(a["cells"] for a in accounts)) == set(local) - finished_there
    assert sum(a["total_s"].get("finetuning", 0) for a in accounts) > 0
    assert all("other" not in a["total_s"] for a in accounts)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("flags, message", [
    (["--executor", "kubernetes"], "unknown executor 'kubernetes'"),
    (["--executor", "slurm", "--slurm-cluster", "local", "--slurm-opt", "frobnicate=1"],
     "submitit rejects"),
    (["--executor", "slurm"], 'Could not detect "srun"'),        # no Slurm on this machine
    (["--executor", "slurm", "--timeout-min", "0"], "timeout_min must be"),
    (["--executor", "ray", "--gpus-per-job", "4"], "asks for 4 GPU"),
])
def test_bad_executor_input_is_one_line(flags, message, fast_run, plugin):
    pytest.importorskip("ray" if "ray" in flags else "submitit")
    if "srun" in message and shutil.which("srun"):
        pytest.skip("this machine has Slurm")
    status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0", *flags))
    assert status == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err


# ----------------------------------------------------------------------------- dry run
def test_dry_run_lists_what_would_run_with_estimates(fast_run, plugin, tmp_path):
    status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0"))
    assert status == 0, err
    status, out, err = fast_run(*sweep_args(plugin, "--seeds", "0,1", "--dry-run"))
    assert status == 0, err
    assert "2 units, 4 of 8 cells to run (4 finished)" in out
    assert "tiny__smallcnn__rotation__s1" in out and "__s0" not in out
    assert "estimated" in out and "without a finished record" not in out
    assert len(list((tmp_path / "results" / "records").glob("*.json"))) == 4   # ran nothing


def test_an_unreachable_ray_address_is_one_line_at_once(fast_run, plugin):
    pytest.importorskip("ray")
    status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0", "--executor", "ray",
                                          "--ray-address", "127.0.0.1:9"))
    assert status == 2 and "cannot reach the Ray cluster at 127.0.0.1:9" in err, err
    assert len(err.strip().splitlines()) == 1


def _slurm_answers() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        found = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0 and "idle" in found.stdout


@pytest.mark.skipif(os.environ.get("SSLBENCH_REAL_SLURM") != "1" or not _slurm_answers(),
                    reason="opt-in: SSLBENCH_REAL_SLURM=1 and a Slurm that answers "
                           "(benchmarks/slurm/start_local_slurm.sh starts one on 127.0.0.1)")
def test_a_real_slurm_gives_the_records_of_the_local_executor(fast_run, plugin, tmp_path,
                                                             one_thread):
    """Submit, return, rerun while queued (nothing submitted twice), wait, same records."""
    pytest.importorskip("submitit")
    status, _, err = fast_run(*sweep_args(plugin), out=tmp_path / "local")
    assert status == 0, err
    engine = ["--executor", "slurm", "--cpus-per-job", "1"]
    status, out, err = fast_run(*sweep_args(plugin, *engine), out=tmp_path / "slurm")
    assert status == 0 and "submitted 4 units as Slurm jobs" in out, err
    status, out, err = fast_run(*sweep_args(plugin, *engine, "--wait"), out=tmp_path / "slurm")
    assert status == 0, err
    assert accuracies(tmp_path / "slurm") == accuracies(tmp_path / "local")
    assert_clean(tmp_path / "slurm")


@pytest.mark.parametrize("executor, module, extra", [("ray", "ray", "ray"),
                                                     ("slurm", "submitit", "slurm")])
def test_a_missing_engine_names_its_extra(executor, module, extra, fast_run, plugin,
                                          monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)      # as if not installed: import fails
    status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0", "--executor", executor))
    assert status == 2 and f"pip install 'sslbench[{extra}]'" in err, err
    assert len(err.strip().splitlines()) == 1


def test_the_executor_can_come_from_the_sweep_file(fast_run, plugin, tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('executor = "kubernetes"\n')
    status, _, err = fast_run("--config", str(sweep), *sweep_args(plugin, "--seeds", "0"))
    assert status == 2 and "unknown executor 'kubernetes'" in err, err


def test_a_submitit_folder_others_may_write_is_refused(fast_run, plugin, tmp_path):
    """submitit's folder holds pickles that the driver reads: it must be private."""
    pytest.importorskip("submitit")
    folder = tmp_path / "results" / "slurm"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0", "--executor", "slurm",
                                          "--slurm-cluster", "local", "--wait"))
    assert status == 2 and "must be yours and writable by you alone" in err, err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------ local worker processes (--jobs)
# (--jobs 2's records against a serial run's, and a killed worker under it: the killed-worker
# test above, "local-jobs")
def test_jobs_is_for_the_local_executor(fast_run):
    status, _, err = fast_run("--jobs", "2", "--executor", "slurm")
    assert status == 2 and "--jobs is not an option of executor 'slurm'" in err, err
    assert len(err.strip().splitlines()) == 1


SLEEPER = TINY_DATASET_PLUGIN + '''
import os
import time
from pathlib import Path

from sslbench.protocol import EvaluationProtocol


class Sleeper(EvaluationProtocol):
    """Says it started (a file named after its process), then sleeps: a unit that is still
    running when its driver is killed."""
    name = "sleeper"
    description = "sleeps (test plugin)"
    defaults = {"folder": ""}

    def evaluate(self, ctx):
        Path(self.options["folder"], str(os.getpid())).write_text("started")
        time.sleep(120)
        raise RuntimeError("not reached in the test")


@sslbench.hookimpl
def sslbench_protocols():
    return [Sleeper]
'''


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_local_workers_exit_when_their_driver_is_killed(tmp_path):
    """A driver running two units in worker processes (--jobs 2) is killed with SIGKILL: its
    workers, adopted by init with nothing left to collect their work, exit within seconds
    instead of running their units on unwatched."""
    import signal
    import time
    plugin, started = tmp_path / "sleeper.py", tmp_path / "started"
    plugin.write_text(SLEEPER)
    started.mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-m", "sslbench", "run", "--quiet", "--plugin", str(plugin),
         "--dataset", "tiny", "--tasks", "rotation", "--fractions", "1.0", "--seeds", "0,1",
         "--protocols", "sleeper", "--opt", f"sleeper.folder={started}", "--jobs", "2",
         "--cpus-per-job", "1", "--out", str(tmp_path / "out"), "--cache-dir",
         str(tmp_path / "cache"), *FAST_FLAGS],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while len(list(started.iterdir())) < 2 and time.time() < deadline \
                and driver.poll() is None:
            time.sleep(0.5)
        workers = [int(p.name) for p in started.iterdir()]
        assert len(workers) == 2, driver.stderr.read().decode() if driver.poll() else workers
        assert all(_alive(pid) for pid in workers)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.time() + 15
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in [int(p.name) for p in started.iterdir()]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
