"""The executor plugin kind (sslbench.executor): a third party's executor, one file, runs a
sweep with the records of the built-in local one; options and the flags of earlier versions
are checked like every kind's."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from conftest import TINY_DATASET_PLUGIN
from sslbench.executor import Executor, UnitJob, UnitOutcome, one_line

# A third-party executor: its units in a thread pool of the driver's process, through the
# public API only. Its option is declared like any plugin's.
THREADS_PLUGIN = '''
import concurrent.futures as futures
import os
import time

import sslbench
from sslbench.executor import Executor, Finished
from sslbench.options import Range


class ThreadExecutor(Executor):
    name = "threads"
    description = "units in a thread pool (test plugin)"
    defaults = {"threads": 2, "log": ""}
    ranges = {"threads": Range(ge=1)}

    def submit(self, jobs, reporter):
        self.jobs = list(jobs)
        reporter.log(f"{len(self.jobs)} units to {self.options['threads']} threads")

    def finished(self):
        since = time.time()
        with futures.ThreadPoolExecutor(self.options["threads"]) as pool:
            pending = {pool.submit(job): job.unit for job in self.jobs}
            for future in futures.as_completed(pending):
                if self.options["log"]:
                    with open(self.options["log"], "a") as f:
                        f.write(pending[future].id + "\\n")
                yield Finished(pending[future], future.result(), None, since)


@sslbench.hookimpl
def sslbench_executors():
    return [ThreadExecutor]
'''


@pytest.fixture
def plugin(tmp_path) -> Path:
    (tmp_path / "tiny_dataset.py").write_text(TINY_DATASET_PLUGIN)
    path = tmp_path / "threads_plugin.py"
    path.write_text(THREADS_PLUGIN)
    return path


def sweep_args(plugin: Path, *extra: str) -> list[str]:
    return ["--plugin", str(plugin.parent / "tiny_dataset.py"), "--plugin", str(plugin),
            "--dataset", "tiny", "--tasks", "rotation",
            "--fractions", "1.0", "--seeds", "0,1", "--protocols", "linear", *extra]


def records(out: Path) -> dict[str, dict]:
    found = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert found, f"no records in {out}"
    return found


def test_a_third_party_executor_gives_the_local_executors_records(fast_run, plugin, tmp_path):
    status, _, err = fast_run(*sweep_args(plugin), out=tmp_path / "local")
    assert status == 0, err
    log = tmp_path / "handed.txt"
    status, _, err = fast_run(*sweep_args(plugin, "--executor", "threads",
                                          "--opt", f"threads.log={log}"),
                              out=tmp_path / "threads")
    assert status == 0, err
    # every unit went through the plugin's pool: scratch and rotation, two seeds each
    assert sorted(log.read_text().split()) == sorted(
        f"tiny__smallcnn__{task}__s{seed}" for task in ("rotation", "scratch") for seed in (0, 1))
    local, threads = records(tmp_path / "local"), records(tmp_path / "threads")
    assert sorted(local) == sorted(threads) and len(local) == 4
    for cell, record in local.items():
        assert record["status"] == threads[cell]["status"] == "ok"
        assert threads[cell]["metrics"]["test_predictions"] == \
            record["metrics"]["test_predictions"], cell
    account = json.loads(next((tmp_path / "threads" / "time").glob("*.json")).read_text())
    assert account["executor"] == "threads" and account["complete"]
    assert sorted(account["cells"]) == sorted(local)      # each cell's time came back


def test_the_executor_kind_is_listed_with_its_options(cli, plugin):
    status, out, err = cli("list", "executors", "--plugin", str(plugin))
    assert status == 0, err
    for name in ("local", "ray", "slurm", "threads"):
        assert name in out
    assert "threads=2" in out and "jobs=1" in out


@pytest.mark.parametrize("flags, message", [
    (["--executor", "threads", "--opt", "threads.threads=0"],
     "executor option threads.threads must be >= 1, got 0"),
    (["--executor", "threads", "--opt", "threads.cores=2"],
     "executor 'threads' has no option 'cores'"),
    (["--executor", "threads", "--jobs", "2"],
     "--jobs is not an option of executor 'threads' (it takes none of the executor flags"),
    (["--executor", "ray", "--jobs", "2"],
     "--jobs is not an option of executor 'ray' (it takes --cpus-per-job, --gpus-per-job, "
     "--ray-address"),
    (["--executor", "local", "--slurm-partition", "gpu"],
     "--slurm-partition is not an option of executor 'local'"),
])
def test_bad_executor_options_are_one_line(flags, message, fast_run, plugin):
    status, _, err = fast_run(*sweep_args(plugin, "--seeds", "0", *flags))
    assert status == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_former_flag_sets_the_executors_option_and_opt_wins(plugin):
    from sslbench._core.config import build_config
    from sslbench._core.executors import make_executor
    from sslbench._core.plugins import PluginHost
    host = PluginHost.from_environment([str(plugin)])
    made = make_executor(build_config(None, executor="local", jobs=3), host)
    assert made.options["jobs"] == 3 and not made.in_process
    made = make_executor(build_config(None, executor="local", jobs=3,
                                      options={"local": {"jobs": 2}}), host)
    assert made.options["jobs"] == 2
    assert make_executor(build_config(None), host).in_process      # the default: here


def test_a_job_pickles_and_knows_its_results_folder(tmp_path):
    from sslbench.sweep import Budget, Cell
    from sslbench._core.worker import run_unit_job
    from sslbench.executor import Unit
    cell = Cell("tiny", "smallcnn", "scratch", Budget.fraction(1.0), "linear", 0, 0)
    job = UnitJob({"out": "results"}, Unit("tiny", 0, "smallcnn", "scratch", 0, (cell,)),
                  str(tmp_path), run=run_unit_job)
    again = pickle.loads(pickle.dumps(job.with_threads(2)))
    assert again.unit == job.unit and again.threads == 2 and job.threads is None
    assert again.out == tmp_path / "results"
    assert again.run is run_unit_job          # pickled by its name, not by its code
    assert b"run_unit_job" in pickle.dumps(job)


def test_the_base_class_says_what_a_plugin_must_implement():
    class Half(Executor):
        name = "half"
    with pytest.raises(NotImplementedError):
        Half().submit([], None)
    assert Half().still_running() is None and not Half().in_process
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert UnitOutcome({"c": "ok"}).warnings == []

