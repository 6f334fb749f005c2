"""One unit run as a plain function (sslbench._core.unit_run.run_unit): called directly with
the sweep's context, it returns its records, its time and whether it pretrained, and changes
nothing in the sweep that called it."""

import json

from conftest import FAST, FAST_OPTIONS

from sslbench._core.config import build_config
from sslbench._core.plugins import PluginHost
from sslbench._core.runner import Sweep
from sslbench._core.unit_run import run_unit
from sslbench.record import Record


def test_run_unit_returns_what_it_made_and_changes_nothing_else(tmp_path):
    config = build_config(datasets=["digits"], tasks=["rotation"], fractions=[0.1, 1.0],
                          protocols=["linear", "finetune"], seeds=[0],
                          settings={**FAST, "resolution": 16}, options=FAST_OPTIONS,
                          out=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"),
                          device="cpu")
    sweep = Sweep(config, PluginHost.from_environment())
    unit = next(u for u in sweep.unfinished_units() if u.task == "rotation")
    prepared = sweep.prepare(unit.dataset, unit.split_seed)
    before = (sweep.checkpoints_trained, sweep.account, dict(sweep.__dict__))

    ran = run_unit(sweep.context, unit, prepared)

    assert sorted(ran.records) == sorted(c.id for c in unit.cells) and len(ran.records) == 4
    for cell_id, record in ran.records.items():
        assert isinstance(record, Record) and record.ok and 0 <= record.test_accuracy <= 1
        written = json.loads((tmp_path / "out" / "records" / f"{cell_id}.json").read_text())
        assert record.to_dict() == written                      # what it returns is on disk
        assert sum(ran.time["cells"][cell_id].values()) > 0
    assert list(ran.time["units"]) == [unit.id] and ran.pretrained == 1
    # nothing of the sweep changed: its counter, its (absent) account, its attributes
    assert (sweep.checkpoints_trained, sweep.account) == before[:2]
    assert {k: v for k, v in sweep.__dict__.items()} == before[2]

    again = run_unit(sweep.context, unit, prepared)     # the checkpoint now in the cache
    assert again.pretrained == 0
    assert {k: r.test_accuracy for k, r in again.records.items()} == \
        {k: r.test_accuracy for k, r in ran.records.items()}     # deterministic on the CPU
