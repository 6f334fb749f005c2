"""The example third-party plugins (examples/sslbench-counting, examples/sslbench-byol),
pip-installed into a folder of their own and found by a fresh sslbench process through their
entry points alone."""

import json
import os
import subprocess
import sys

import pytest

from conftest import FAST_FLAGS, REPO

EXAMPLE = REPO / "examples" / "sslbench-counting"
BYOL = REPO / "examples" / "sslbench-byol"


def pip_install(package, tmp_path, *more) -> dict:
    """``pip install`` packages into a folder of their own; the environment that sees them."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(package),
                    *map(str, more)], check=True, capture_output=True)
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def examples_env(tmp_path_factory) -> dict:
    """Both example packages, pip-installed once for this module's tests."""
    return pip_install(EXAMPLE, tmp_path_factory.mktemp("examples"), BYOL)


def leaderboard_rows(stdout: str) -> list[str]:
    return [line.split("│")[1].strip() for line in stdout.splitlines()
            if line.startswith("│") and not line.startswith("│ labels")]


def test_pip_installed_plugins_get_leaderboard_rows(examples_env, tmp_path):
    """counting and BYOL, pip-installed, listed and run beside a built-in task; BYOL's record
    shows the schedule it asked for (LARS, 0.2 x batch / 256) rather than the sweep's SGD."""
    sslbench = [sys.executable, "-m", "sslbench._core.cli"]
    listed = subprocess.run(sslbench + ["list", "tasks"], env=examples_env, capture_output=True,
                            text=True)
    assert listed.returncode == 0, listed.stderr
    assert "counting" in listed.stdout and "byol" in listed.stdout
    out = tmp_path / "out"
    run = subprocess.run(sslbench + ["run", "--quiet", "--tasks", "counting,byol,rotation",
                                     "--fractions", "1.0", "--protocols", "linear",
                                     "--resolution", "16", "--out", str(out),
                                     "--cache-dir", str(tmp_path / "cache"),
                                     "--task-opt", "byol.hidden=64", "--task-opt", "byol.out=32",
                                     *FAST_FLAGS],
                         env=examples_env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert leaderboard_rows(run.stdout) == ["byol", "counting", "rotation", "scratch"]
    record = json.loads(next((out / "records").glob("*counting*")).read_text())
    assert record["status"] == "ok" and record["task_plan"]["pretext"]["name"] == "counting"
    record = json.loads(next((out / "records").glob("*byol*")).read_text())
    schedule = record["pretraining"]["schedule"]
    assert schedule["optimizer"] == "lars" and schedule["lr"] == 0.2 * 32 / 256
    assert record["plugins"]["tasks"][0]["distribution"] == "sslbench-byol"
    held = record["pretraining"]["heldout"]
    assert 0 <= held["accuracy"] <= 1 and 0 < held["chance"] < 1
    # a linear probe on all of digits' labels is far above chance (10%) for every row, the
    # plugins' included, even after one epoch at 16 px: a broken pipeline would not be
    for path in (out / "records").glob("*.json"):
        accuracy = json.loads(path.read_text())["metrics"]["test_accuracy"]
        assert 0.5 < accuracy <= 1, (path.name, accuracy)


@pytest.mark.parametrize("example", [EXAMPLE, BYOL], ids=lambda p: p.name)
def test_example_plugins_own_tests_pass(examples_env, tmp_path, example):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(example / "tests")], env=examples_env, capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_new_plugin_skeleton_passes_its_own_test(cli, tmp_path):
    status, out, err = cli("new-plugin", "flipped", "--kind", "task", "--dir", str(tmp_path))
    assert status == 0, err
    root = tmp_path / "sslbench-flipped"
    assert '[project.entry-points.sslbench]\nflipped = "sslbench_flipped.plugin"' in (
        root / "pyproject.toml").read_text()
    env = pip_install(root, tmp_path)
    listed = subprocess.run([sys.executable, "-m", "sslbench._core.cli", "list", "tasks"], env=env,
                            capture_output=True, text=True)
    assert "flipped" in listed.stdout
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(root / "tests")], env=env, capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    run = subprocess.run([sys.executable, "-m", "sslbench._core.cli", "run", "--quiet", "--tasks",
                          "flipped,rotation", "--fractions", "1.0", "--protocols", "linear",
                          "--resolution", "16", "--out", str(tmp_path / "out"),
                          "--cache-dir", str(tmp_path / "cache"), *FAST_FLAGS],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert leaderboard_rows(run.stdout) == ["flipped", "rotation", "scratch"]


def test_new_plugin_bad_input(cli, tmp_path):
    status, _, err = cli("new-plugin", "Bad-Name", "--dir", str(tmp_path))
    assert status == 2 and "must be lower-case letters" in err


