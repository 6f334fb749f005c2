"""Result files are created as any other file would be: 0666 minus the umask, not 0600."""

import os
import stat

from sslbench._core.atomic import atomic_write_json


def test_atomic_files_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        atomic_write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600


def test_records_of_a_sweep_are_readable_by_the_group(fast_run, tmp_path):
    old = os.umask(0o022)
    try:
        status, _, err = fast_run("--tasks", "rotation", "--fractions", "1.0",
                                  "--protocols", "linear")
    finally:
        os.umask(old)
    assert status == 0, err
    for path in (tmp_path / "results").rglob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
