"""What a UnitJob does when called (sslbench._core.worker): in the driver's process it
borrows the driver's sweep, anywhere else it builds its own. (The whole path, through real
executors, is tested in tests/sslbench/test_executor.py and test_executors.py.)"""

from __future__ import annotations

import pytest

from sslbench.executor import UnitJob


def test_a_forked_worker_builds_its_own_sweep_rather_than_the_drivers():
    """An executor whose pool forks (multiprocessing's default on Linux) gives its workers a
    copy of the driver's memory: a job there must not run on the copied driver's sweep (it
    would write the driver's time account from the child and hide the cells' progress)."""
    import os

    from sslbench._core import worker

    class Stand:
        pass
    served = worker._Served(Stand(), driver=True)
    served.pid = os.getpid() + 1          # as a forked child sees its parent's entry
    here = os.getcwd()                    # (building a sweep changes to the job's folder)
    key = worker._key({"x": 1}, here)
    worker._SERVED[key] = served
    try:
        job = UnitJob({"x": 1}, None, here, run=worker.run_unit_job)
        with pytest.raises(TypeError):     # a fresh sweep is built: {"x": 1} is no config
            worker._served(job)
        assert key not in worker._SERVED   # the copied driver's entry is dropped
    finally:
        worker._SERVED.pop(key, None)
