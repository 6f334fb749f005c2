"""Nothing in the cache runs code, and a damaged cache file is recomputed, naming it."""

import os
import shutil

import torch

from sslbench._core.atomic import safe_torch_load, torch_bytes


class Payload:
    """Unpickling this runs a shell command (the attack: a file planted in a shared cache)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run_twice(fast_run, tmp_path, damage):
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    status, _, err = fast_run(*args)
    assert status == 0, err
    damaged = damage(tmp_path / "cache")
    shutil.rmtree(tmp_path / "results" / "records")           # make every cell run again
    status, out, err = fast_run(*args)
    return status, err, damaged


def test_a_planted_checkpoint_does_not_run_and_is_retrained(fast_run, tmp_path):
    marker = tmp_path / "PWNED"

    def plant(cache):
        path = next((cache / "checkpoints").glob("rotation-*.pt"))
        # the attacker writes a valid checksum too: weights_only is what stops the payload
        path.write_bytes(torch_bytes({"backbone": Payload(marker), "info": {}}))
        return path

    status, err, path = run_twice(fast_run, tmp_path, plant)
    assert status == 0, err
    assert not marker.exists()                                 # the payload never ran
    assert f"ignoring cache file '{path}'" in err and "recomputing" in err
    saved = safe_torch_load(path)                              # retrained and rewritten
    assert set(saved) == {"backbone", "info"}


def test_a_planted_feature_file_does_not_run(fast_run, tmp_path):
    marker = tmp_path / "PWNED"

    def plant(cache):
        path = next((cache / "features").glob("*-test.pt"))
        path.write_bytes(torch_bytes([Payload(marker)]))
        return path

    status, err, path = run_twice(fast_run, tmp_path, plant)
    assert status == 0, err
    assert not marker.exists() and f"ignoring cache file '{path}'" in err
    assert all(isinstance(f, torch.Tensor) for f in safe_torch_load(path))


def test_a_truncated_checkpoint_is_a_cache_miss_named_once(fast_run, tmp_path):
    def truncate(cache):
        path = next((cache / "checkpoints").glob("rotation-*.pt"))
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        return path

    status, err, path = run_twice(fast_run, tmp_path, truncate)
    assert status == 0, err
    assert err.count(f"ignoring cache file '{path}'") == 1
    assert safe_torch_load(path)["info"]["checkpoint"] == path.stem
