"""Result records: one JSON file per finished sweep cell, written atomically."""

from __future__ import annotations

import json
import platform
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_json

RECORD_SCHEMA = 1
RECORDS_DIR = "records"


def library_versions() -> dict[str, str]:
    import numpy
    import timm
    import torchvision

    from . import __version__
    return {"sslbench": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "numpy": numpy.__version__}


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory of the cell on CUDA (allocator peak since the cell started); on the CPU the
    process's peak resident set size, which spans the run up to this cell."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_record(out: Path, cell_id: str, record: dict[str, Any]) -> Path:
    path = Path(out) / RECORDS_DIR / f"{cell_id}.json"
    atomic_write_json(path, record)
    return path


# what every record holds, whatever its status, and what a finished one adds
_REQUIRED = {"dataset": str, "backbone": str, "task": str, "protocol": str,
             "fraction": (int, float), "seed": int, "status": str}


def record_problem(record: Any) -> str | None:
    """Why ``record`` is not a result record this version can read, or None."""
    if not isinstance(record, dict):
        return f"not a JSON object but a {type(record).__name__}"
    if record.get("schema") != RECORD_SCHEMA:
        return f"schema {record.get('schema')!r}, not {RECORD_SCHEMA}"
    for key, kind in _REQUIRED.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            return f"no valid {key!r}"
    if record["status"] not in ("ok", "failed"):
        return f"status {record['status']!r} is neither 'ok' nor 'failed'"
    if record["status"] == "ok":
        metrics = record.get("metrics")
        if not isinstance(metrics, dict) or not isinstance(metrics.get("test_accuracy"),
                                                           (int, float)):
            return "a finished record without metrics.test_accuracy"
    return None


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    except ValueError as exc:                      # bad UTF-8 or bad JSON
        return None, f"not JSON ({type(exc).__name__})"
    problem = record_problem(record)
    return (None, problem) if problem else (record, None)


def read_record(out: Path, cell_id: str) -> dict[str, Any] | None:
    """The cell's record, or None when there is none or it is not a readable record of this
    schema (the cell then counts as unfinished and runs again)."""
    path = Path(out) / RECORDS_DIR / f"{cell_id}.json"
    if not path.is_file():
        return None
    return _read(path)[0]


def load_records(directory: str | Path,
                 warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every record under a results directory (its ``records/`` folder, or the folder
    itself); a file that is not a record of this schema is skipped, and ``warn`` is told
    which and why."""
    directory = Path(directory)
    folder = directory / RECORDS_DIR if (directory / RECORDS_DIR).is_dir() else directory
    records = []
    for path in sorted(folder.glob("*.json")):
        record, problem = _read(path)
        if record is not None:
            records.append(record)
        elif warn is not None:
            warn(f"skipping {str(path)!r}: {problem}")
    return records
