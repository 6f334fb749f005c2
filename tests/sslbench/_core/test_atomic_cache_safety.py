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


def accuracies(tmp_path):
    import json
    return {p.name: json.loads(p.read_text())["metrics"]["test_accuracy"]
            for p in (tmp_path / "results" / "records").glob("*.json")}


def test_a_bit_flipped_feature_file_is_named_and_recomputed(fast_run, tmp_path):
    """torch loads a file with a flipped bit in a tensor without a word; its checksum does
    not match, so it is recomputed, and the results are those of the intact file."""
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    assert fast_run(*args)[0] == 0
    first = accuracies(tmp_path)
    assert len(first) == 2
    path = next((tmp_path / "cache" / "features").glob("*-test.pt"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    shutil.rmtree(tmp_path / "results" / "records")
    status, _, err = fast_run(*args)
    assert status == 0, err
    assert f"ignoring cache file '{path}'" in err and "checksum does not match" in err
    assert accuracies(tmp_path) == first


def test_a_checkpoint_of_another_shape_is_recomputed_not_failed(fast_run, tmp_path):
    def swap(cache):
        path = next((cache / "checkpoints").glob("rotation-*.pt"))
        path.write_bytes(torch_bytes({"backbone": {"w": torch.zeros(2)}, "info": {}}))
        return path

    status, err, path = run_twice(fast_run, tmp_path, swap)
    assert status == 0, err
    assert f"ignoring cache file '{path}'" in err and "not the backbone's" in err
    assert set(safe_torch_load(path)["backbone"]) != {"w"}       # trained and rewritten


def test_temporary_files_of_killed_writers_are_removed(tmp_path):
    """A writer killed between its temporary file and the rename leaves the file behind;
    the next write to that folder removes those of dead processes (and any older than a
    day), never one a live writer is still filling."""
    import socket
    import subprocess
    import sys
    import time

    from sslbench._core.atomic import atomic_write_text, remove_stale_tmp
    folder = tmp_path / "records"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = socket.gethostname()
    killed = folder / f".a.json~{host}~{dead}~x1.tmp"
    live = folder / f".b.json~{host}~{os.getpid()}~x2.tmp"
    old = folder / ".c.json.abc123.tmp"                      # an older sslbench's name
    recent = folder / ".d.json.def456.tmp"
    for p in (killed, live, old, recent):
        p.write_text("partial")
    day = time.time() - 2 * 24 * 3600
    os.utime(old, (day, day))
    removed = remove_stale_tmp(folder)
    assert sorted(p.name for p in removed) == sorted([killed.name, old.name])
    assert live.exists() and recent.exists()
    atomic_write_text(folder / "e.json", "{}")                # a write leaves nothing behind
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, recent.name, "e.json"])
