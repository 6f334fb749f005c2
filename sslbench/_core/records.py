"""Record files: one JSON file per finished sweep cell (``OUT/records/CELL_ID.json``),
written atomically, and the one loader every command reads them through.

The record itself is :class:`sslbench.record.Record`; this module knows where its files
live, reads a folder of them (skipping, with the reason, what is not a record: a results
folder is input from whoever wrote it), merges several folders into one leaderboard's
records, and measures what a record says about the machine (versions, device, memory)."""

from __future__ import annotations

import json
import platform
import resource
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..record import Record, RecordError
from .atomic import atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    import torch

RECORDS_DIR = "records"


def library_versions() -> dict[str, str]:
    """Versions of what computed a record (read from the installed metadata: looking a
    version up imports nothing)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from .. import __version__
    from .identity import core_hash

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"
    return {"sslbench": __version__, "sslbench_core": core_hash(),
            "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": installed("torchvision"),
            "timm": installed("timm"), "numpy": installed("numpy")}


def device_description(device: torch.device) -> str:
    import torch
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory of the cell on CUDA (allocator peak since the cell started); on the CPU the
    process's peak resident set size, which spans the run up to this cell."""
    if device.type == "cuda":
        import torch
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_record(out: Path, record: Record) -> Path:
    """Write ``record`` as ``OUT/records/CELL_ID.json``, whole or not at all."""
    path = Path(out) / RECORDS_DIR / f"{record.cell_id}.json"
    atomic_write_json(path, record.to_dict())
    return path


def _outside(path: Path) -> bool:
    """Whether ``path`` (a symbolic link, or under one) leads out of its own folder: a
    results folder's files are read only from inside it."""
    try:
        return path.resolve().parent != path.parent.resolve()
    except (OSError, RuntimeError):          # a loop of links
        return True


def _read(path: Path) -> tuple[Record | None, str | None]:
    if _outside(path):
        return None, "a link to a file outside the folder (not followed)"
    try:
        record = Record.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    except RecordError as exc:
        return None, str(exc)
    except (ValueError, RecursionError) as exc:      # bad UTF-8 or bad JSON
        return None, f"not JSON ({type(exc).__name__})"
    if record.cell_id != path.stem:
        return None, f"its cell_id {record.cell_id!r} is not its file name"
    return record, None


def read_record_file(path: Path) -> tuple[Record | None, str | None]:
    """(the record in ``path``, None), or (None, why it is not a record of this schema)."""
    return _read(Path(path))


def read_record(out: Path, cell_id: str) -> Record | None:
    """The cell's record, or None when there is none or it is not a readable record of this
    schema (the cell then counts as unfinished and runs again)."""
    path = Path(out) / RECORDS_DIR / f"{cell_id}.json"
    if not path.is_file():
        return None
    return _read(path)[0]


def load_records(directory: str | Path,
                 warn: Callable[[str], None] | None = None) -> list[Record]:
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


def what_ran(record: Record) -> dict[str, Any]:
    """A record's settings and plugin options, flat: ``resolution``, ``linear.max_iter``,
    ``rotation.crop``, ... (for comparing records; older records have settings only)."""
    out = {k: v for k, v in (record.settings or {}).items() if k != "backbone"}
    options = record.options or {}
    names = {"protocol": record.protocol, "backbone": record.backbone,
             "dataset": record.dataset.partition(":")[0]}
    for kind, name in names.items():
        out.update({f"{name}.{k}": v for k, v in (options.get(kind) or {}).items()})
    for task, opts in (options.get("tasks") or {}).items():
        out.update({f"{task}.{k}": v for k, v in opts.items()})
    return out


def load_results_dirs(directories: list[str | Path],
                      warn: Callable[[str], None] | None = None) -> list[Record]:
    """The records of finished sweeps' folders, merged (:func:`merge_records`): what
    ``sslbench report``, ``sslbench publish`` and ``load_results`` read. A folder that does
    not exist or holds no record is a one-line error."""
    from ..errors import SSLBenchError
    sources = []
    for d in directories:
        if not Path(d).is_dir():
            raise SSLBenchError(f"results directory {str(d)!r} does not exist")
        found = load_records(d, warn=warn)
        if not found:
            raise SSLBenchError(f"no result records in {str(d)!r}")
        sources.append((str(d), found))
    return merge_records(sources)


def merge_records(sources: list[tuple[str, list[Record]]]) -> list[Record]:
    """The records of several results directories as one leaderboard's: the same record
    found twice (same cell id and configuration hash: a folder given twice, or copied)
    counts once; one cell run with two configurations, or one table whose records were made
    with different settings, is an error naming the folders (their means would be averaged
    under one caption that is true of neither)."""
    from ..errors import SSLBenchError
    by_cell: dict[str, tuple[str, Record]] = {}
    for folder, records in sources:
        for record in records:
            key = record.cell_id
            if key in by_cell:
                other, kept = by_cell[key]
                if kept.config_hash != record.config_hash:
                    raise SSLBenchError(
                        f"cell {key} was run with different configurations in {other!r} and "
                        f"{folder!r}; report them separately")
                continue
            by_cell[key] = (folder, record)
    groups: dict[tuple, tuple[str, dict]] = {}
    for folder, record in by_cell.values():
        # one row of one table: its numbers must come from one set of settings and options
        group = (record.dataset, record.backbone, record.task, record.protocol)
        settings = what_ran(record)
        if group in groups and groups[group][1] != settings:
            first, theirs = groups[group]
            differ = sorted(k for k in set(theirs) | set(settings)
                            if theirs.get(k) != settings.get(k))
            raise SSLBenchError(
                f"the records of {group[0]} · {group[1]} in {first!r} and {folder!r} were "
                f"made with different settings ({', '.join(differ)}); report them separately")
        groups.setdefault(group, (folder, settings))
    return [record for _, record in by_cell.values()]
