"""Result records: one JSON file per finished sweep cell, written atomically."""

from __future__ import annotations

import json
import platform
import resource
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


def read_record(out: Path, cell_id: str) -> dict[str, Any] | None:
    path = Path(out) / RECORDS_DIR / f"{cell_id}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_records(directory: str | Path) -> list[dict[str, Any]]:
    """Every record under a results directory (its ``records/`` folder, or the folder itself)."""
    directory = Path(directory)
    folder = directory / RECORDS_DIR if (directory / RECORDS_DIR).is_dir() else directory
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and rec.get("schema") == RECORD_SCHEMA:
            records.append(rec)
    return records
