"""Operating-system errors on the results or cache path: one line naming the path and the
cause, exit status 2, no traceback, no half-written file."""

import errno
import os

import pytest


def test_an_output_path_through_a_file_is_one_line(fast_run, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    status, _, err = fast_run("--fractions", "1.0", "--protocols", "linear",
                              out=blocker / "results")
    assert status == 2 and len(err.strip().splitlines()) <= 2     # (the duplicates warning)
    assert f"cannot write '{blocker}" in err and "Traceback" not in err


def test_a_full_disk_while_writing_a_record_is_one_line_and_leaves_no_partial_file(
        fast_run, tmp_path, monkeypatch):
    import sslbench._core.atomic as atomic
    real = atomic.os.fsync
    writes = []

    def fsync(fd):
        writes.append(fd)
        if len(writes) > 3:                 # the split files go through, then the disk fills
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    status, _, err = fast_run("--fractions", "1.0", "--protocols", "linear")
    assert status == 2 and "No space left on device" in err and "Traceback" not in err
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    for record in (tmp_path / "results").rglob("*.json"):
        import json
        json.loads(record.read_text())                              # every file is whole


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_results_folder_is_one_line(fast_run, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    out.chmod(0o555)
    try:
        status, _, err = fast_run("--fractions", "1.0", "--protocols", "linear", out=out)
    finally:
        out.chmod(0o755)
    assert status == 2 and "Permission denied" in err


def test_torchs_out_of_space_message_is_translated(fast_run, tmp_path, monkeypatch):
    """torch.save on a full disk says "PytorchStreamWriter failed writing file ... unexpected
    pos"; with the disk indeed full, the user reads that there is no space left."""
    import collections

    import torch

    import sslbench._core.atomic as atomic

    def save(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 6336 vs 6224")

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9, 8192))
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    assert status == 2 and "no space left on the device (8 KiB free)" in err
    assert "cache" in err and "Traceback" not in err
