"""The net under the cell identity (issue 28, item 4): two committed cells (digits, scratch
and rotation, linear probe, fast settings, seed 0) are recomputed; while their hashes are the
committed ones, every number must be too. A change that alters a published cell's numbers
without changing its identity fails here.

When a change is meant to alter numbers (and so changes the identity), the committed records
are stale and this test says so; make them again and commit them with the change:

    SSLBENCH_UPDATE_GOLDEN=1 python -m pytest tests/sslbench/_core/test_identity_golden.py -n 0
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from conftest import FAST, FAST_OPTIONS

from sslbench._core.config import build_config
from sslbench._core.dispatch import run
from sslbench._core.plugins import PluginHost
from sslbench._core.runner import Sweep

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
THREADS = 1          # CPU numbers depend on the thread count: the committed cells used one
UPDATE = os.environ.get("SSLBENCH_UPDATE_GOLDEN") == "1"


def sweep(tmp_path: Path) -> Sweep:
    config = build_config(datasets=["digits"], tasks=["rotation"], fractions=[0.5],
                          protocols=["linear"], seeds=[0],
                          settings={**FAST, "resolution": 16}, options=FAST_OPTIONS,
                          out=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"),
                          device="cpu")
    return Sweep(config, PluginHost.from_environment())


def numbers(record: dict) -> dict:
    """Everything in a record that the computation produced (not its times)."""
    return {"metrics": record["metrics"], "chosen": (record["details"] or {}).get("chosen"),
            "heldout": ((record.get("pretraining") or {}).get("heldout")),
            "history": [{k: v for k, v in epoch.items() if "per_s" not in k
                         and "seconds" not in k}
                        for epoch in (record.get("pretraining") or {}).get("history", [])]}


def test_a_committed_cell_computes_the_same_numbers_while_its_identity_holds(tmp_path):
    planned = sweep(tmp_path)
    hashes = {cell.id: cell.config_hash for cell in planned.cells}
    golden = {p.stem: json.loads(p.read_text()) for p in GOLDEN.glob("*.json")}
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        if UPDATE or {k: g["config_hash"] for k, g in golden.items()} == hashes:
            records = {r.cell_id: r.to_dict() for r in run(planned)}
    finally:
        torch.set_num_threads(threads)
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.glob("*.json"):
            old.unlink()
        for cell_id, record in records.items():
            (GOLDEN / f"{cell_id}.json").write_text(json.dumps(record, indent=1) + "\n")
        pytest.skip("golden cells written: commit tests/sslbench/data/golden/")
    assert set(golden) == set(hashes), "the golden cells are not this grid's"
    changed = sorted(k for k in hashes if golden[k]["config_hash"] != hashes[k])
    assert not changed, (
        f"the identity of {', '.join(changed)} changed (code or settings that compute numbers "
        "changed): if that change is meant, make the golden cells again and commit them: "
        "SSLBENCH_UPDATE_GOLDEN=1 python -m pytest tests/sslbench/_core/test_identity_golden.py"
        " -n 0")
    assert len(records) == 2 and all(r["status"] == "ok" for r in records.values())
    for cell_id, record in records.items():
        assert record["torch_threads"] == golden[cell_id]["torch_threads"] == THREADS
        assert numbers(record) == numbers(golden[cell_id]), (
            f"{cell_id}: the numbers changed but the cell's identity did not; whatever "
            "changed them must enter the hash (sslbench/_core/identity.py)")
