"""The records a results folder adopted from a published leaderboard (``sslbench run
--against``, :mod:`sslbench._core.against`), as its manifest ``OUT/against.json`` lists them.

A sweep reads it to count an adopted record as its cell's result (:func:`adopted_cells`), a
report to say which rows were published and which computed here (:func:`origin_note`). The
manifest is input like any file of a results folder: checked, and an entry counts only while
its record file still has the listed SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..record import Record
from .names import SAFE_NAME
from .records import RECORDS_DIR
from .task_plans import SCRATCH

MANIFEST = "against.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_manifest(out: Path, warn: Callable[[str], None] | None = None
                  ) -> dict[str, Any] | None:
    """``out/against.json`` checked (a results folder is input from whoever wrote it), with
    ``records`` reduced to the entries whose file still has the listed checksum; None when
    there is no manifest or it is not one (then ``warn`` says why)."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    manifest = read_json_object(path)
    entries = (manifest or {}).get("records")
    if not isinstance(entries, dict) or not isinstance(manifest.get("leaderboard"), str):
        if warn:
            warn(f"{str(path)!r} is not a manifest of adopted records; ignored")
        return None
    kept = {}
    for cell_id, entry in entries.items():
        if not (isinstance(cell_id, str) and SAFE_NAME.match(cell_id)
                and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)):
            continue
        file = Path(out) / RECORDS_DIR / f"{cell_id}.json"
        try:
            same = sha256(file.read_bytes()) == entry["sha256"]
        except OSError:
            same = False
        if same:
            kept[cell_id] = entry
        elif warn:
            warn(f"record {cell_id} is not the one adopted from {manifest['leaderboard']!r} "
                 "(changed or missing): it counts as computed here")
    verification = manifest.get("verification")
    return {"leaderboard": manifest["leaderboard"], "records": kept,
            "verification": verification if isinstance(verification, dict) else {}}


def adopted_cells(out: Path) -> set[str]:
    """The cells of ``out`` whose record is an unchanged adopted one."""
    manifest = read_manifest(out)
    return set(manifest["records"]) if manifest else set()


def origin_note(out: Path, records: list[Record],
                warn: Callable[[str], None] | None = None) -> str | None:
    """The report's sentence on where its rows come from, for a folder made with
    ``--against``; None for any other folder."""
    manifest = read_manifest(out, warn)
    if manifest is None:
        return None
    adopted = manifest["records"]
    published = sorted({r.task for r in records if r.cell_id in adopted},
                        key=lambda t: (t != SCRATCH, t))
    here = sorted({r.task for r in records if r.cell_id not in adopted})
    made = sorted({str(e.get("sslbench")) for e in adopted.values()})
    ours = sorted({(r.versions or {}).get("sslbench", "?") for r in records
                   if r.cell_id not in adopted})
    v = manifest["verification"]
    if v.get("recomputed"):
        check = (f"verified by recomputing its cell {v.get('cell')} here "
                 f"({v.get('rule', 'equal')}) and checking its data set and split files")
    else:
        check = (f"not verified by recomputation ({v.get('note', 'skipped')}); its data set "
                 "and split files were checked")
    leaderboard = Path(manifest["leaderboard"]).name or manifest["leaderboard"]
    return (f"Rows {', '.join(published) or 'none'}: published records of the leaderboard "
            f"{leaderboard!r} (sslbench {', '.join(made)}), {check}; rows "
            f"{', '.join(here) or 'none'}: computed here (sslbench {', '.join(ours) or '?'}) "
            "on the same labeled subsets, seeds and test images, paired against the "
            "published baseline.")

