"""``sslbench run --against LEADERBOARD --tasks MINE``: new rows beside a published
leaderboard, paired against its baseline, without recomputing it.

A leaderboard (a results folder, or a leaderboard folder of a site ``sslbench publish``
wrote) holds records and split files. Everything that fixes the numbers of its cells is in
its records: the data set, backbone, preset, settings, the protocols' and the backbone's
options, the budgets, protocols, seeds and split seeds. This module reads them
(:func:`read_leaderboard`, every record checked as any record is), refuses a flag that would
change them (:func:`refuse_changes`), and makes the sweep that computes only the named rows
in that setting (:func:`against_config`).

Published rows are not trusted on their word (:func:`verify`): the cheapest published cell
the new rows are compared with (a scratch cell, the one whose record took the least time) is
recomputed here in a fresh cache, with the published record's thread count, and compared
prediction by prediction; the data set loaded here must have the published fingerprint (of
the files' contents where the records hold one) and give the published split files. Any
difference is one line naming what differs (sslbench, torch, the data, the record); ``--trust``
skips the recomputation (not the data and split check) and the report says so.

The published records are then adopted (:func:`adopt`): copied unchanged into the new
results folder, each with its SHA-256 in ``OUT/against.json``; a sweep counts an adopted
record as its cell's result (:func:`adopted_cells`) whatever the code identity it was made
with, as long as the file still has the listed checksum. ``sslbench report OUT`` is then one
table of published and new rows, with paired statistics and Holm's correction over all of
it, and a sentence saying which rows were published (by which sslbench) and which were
computed here (:func:`origin_note`).

Records and split files are input from whoever published them: they are read as JSON and
checked, nothing is imported, unpickled or followed because they say so (a published data
set that is a folder is loaded from the folder the user names with ``--dataset``, never from
the path in a record).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import SSLBenchError
from ..record import Record
from .adopted import MANIFEST, read_json_object, sha256
from .atomic import atomic_write_bytes, atomic_write_json
from .budgets import FRACTION, PER_CLASS, Budget
from .config import SweepConfig
from .names import SAFE_NAME, public_name
from .records import RECORDS_DIR, load_records, read_record_file
from .task_plans import SCRATCH
from . import dispatch      # the top layer: a verification is a sweep of one cell
from .runner import Sweep

SPLITS = "splits"
# On a GPU two runs of one cell need not agree to the last prediction (nondeterministic
# kernels): the recomputed cell must then be within this many points of test accuracy.
# Never exercised: no GPU has run sslbench's verification (docs/plugins.md).
GPU_TOLERANCE_POINTS = 1.0

# flags of ``sslbench run`` that would change the published setting, by the name of the
# command's parameter
REFUSED = {"config_file": "--config", "backbones": "--backbone", "fractions": "--fractions",
           "labels_per_class": "--labels-per-class", "labels": "--labels",
           "protocols": "--protocols", "seeds": "--seeds", "preset": "--preset",
           "resolution": "--resolution", "pretrain_epochs": "--pretrain-epochs",
           "set_items": "--set", "split_seeds": "--split-seeds", "dedup": "--dedup/--no-dedup",
           "stream": "--stream"}


@dataclass(frozen=True)
class Published:
    """A published leaderboard as its records define it."""

    folder: Path
    records: list[Record]          # every record, failed ones too (they are in its table)
    dataset: str
    backbone: str
    preset: str
    settings: dict[str, Any]       # every setting, resolved (the backbone left out)
    options: dict[str, dict[str, Any]]   # plugin name -> options (protocols, backbone, data)
    budgets: list[Budget]
    protocols: list[str]
    seeds: list[int]
    split_seeds: list[int]
    dedup: bool

    @property
    def rows(self) -> list[str]:
        """The published tasks (scratch first)."""
        return sorted({r.task for r in self.records}, key=lambda t: (t != SCRATCH, t))

    @property
    def baseline(self) -> list[Record]:
        return [r for r in self.records if r.task == SCRATCH and r.ok]


def _one(records: list[Record], what: str, get: Callable[[Record], Any], folder: Path) -> Any:
    values = []
    for r in records:
        v = get(r)
        if v not in values:
            values.append(v)
    if len(values) != 1:
        raise SSLBenchError(f"the records in {str(folder)!r} do not share one {what} "
                            f"({', '.join(map(repr, values[:3]))}): not one leaderboard")
    return values[0]


def read_leaderboard(folder: str | Path) -> Published:
    """The setting of the leaderboard in ``folder``, or a one-line error saying why it is
    not one that rows can be added to."""
    folder = Path(folder)
    if not (folder / RECORDS_DIR).is_dir():
        raise SSLBenchError(f"--against {str(folder)!r}: no {RECORDS_DIR}/ folder (a results "
                            "folder or a published leaderboard's folder)")
    problems: list[str] = []
    records = load_records(folder, warn=problems.append)
    if problems:
        raise SSLBenchError(f"--against {str(folder)!r}: {problems[0]}")
    ok = [r for r in records if r.ok]
    if not ok:
        raise SSLBenchError(f"--against {str(folder)!r}: no finished record")
    for r in ok:
        if not isinstance(r.settings, dict) or not isinstance(r.options, dict) \
                or not isinstance(r.sweep, dict) or r.preset is None:
            raise SSLBenchError(f"--against: record {r.cell_id} lacks its settings, options "
                                "or sweep (made before sslbench 0.5)")
    dataset = _one(ok, "data set", lambda r: public_name(r.dataset), folder)
    backbone = _one(ok, "backbone", lambda r: r.backbone, folder)
    preset = _one(ok, "preset", lambda r: r.preset, folder)
    settings = _one(ok, "settings", lambda r: {k: v for k, v in r.settings.items()
                                                if k != "backbone"}, folder)
    options: dict[str, dict[str, Any]] = {
        backbone: _one(ok, "backbone options", lambda r: r.options.get("backbone") or {}, folder),
        dataset.partition(":")[0]: _one(ok, "data set options",
                                        lambda r: r.options.get("dataset") or {}, folder)}
    protocols = sorted({r.protocol for r in records})
    for p in protocols:
        options[p] = _one([r for r in ok if r.protocol == p] or ok, f"{p} options",
                          lambda r: r.options.get("protocol") or {}, folder)
    dedup = bool(_one(ok, "--dedup", lambda r: bool(r.sweep.get("dedup")), folder))
    budgets = sorted({Budget.of_record(r) for r in records}, key=lambda b: b.order)
    pub = Published(folder=folder, records=records, dataset=dataset, backbone=backbone,
                    preset=preset, settings=settings, options=options, budgets=budgets,
                    protocols=protocols, seeds=sorted({r.seed for r in records}),
                    split_seeds=sorted({r.split_seed for r in records}), dedup=dedup)
    have = {(r.seed, r.split_seed, Budget.of_record(r), r.protocol) for r in pub.baseline}
    missing = [(s, ss, b, p) for s in pub.seeds for ss in pub.split_seeds for b in budgets
               for p in protocols if (s, ss, b, p) not in have]
    if missing:
        s, ss, b, p = missing[0]
        raise SSLBenchError(f"--against {str(folder)!r}: the baseline (scratch) lacks "
                            f"{len(missing)} finished cells, e.g. {p} at {b.label}, seed {s}"
                            + (f", split seed {ss}" if ss else ""))
    return pub


def refuse_changes(given: dict[str, Any], pub: Published, tasks: list[str]) -> None:
    """One line for the first flag that would change the published setting: ``given`` holds
    the ``sslbench run`` parameters the user set (``None`` or empty: not set). Options
    (``--opt``/``--task-opt``) may only be the new tasks'."""
    for param, flag in REFUSED.items():
        if given.get(param) not in (None, (), [], {}):
            raise SSLBenchError(f"{flag} would change the setting of the leaderboard "
                                f"{str(pub.folder)!r}; --against takes it from its records")
    for name in given.get("options") or {}:
        if name in pub.options and name not in tasks:
            raise SSLBenchError(f"--opt {name}.* would change the setting of the leaderboard "
                                f"{str(pub.folder)!r} (only the new rows' tasks take options "
                                "with --against)")


def against_values(pub: Published, tasks: Any, datasets: Any,
                   options: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The configuration values (:func:`~sslbench._core.config.build_config`'s) that put the
    new rows ``tasks`` in the published setting. ``datasets``: the user's ``--dataset``
    (needed where the published data set is a folder: its path is never taken from a
    record); ``options``: the new tasks' (:func:`refuse_changes` checked them)."""
    if not tasks:
        raise SSLBenchError("--against needs --tasks: the rows to add to the leaderboard")
    base = pub.dataset.partition(":")[0]
    given = [d for d in str(datasets).split(",") if d.strip()] if datasets else []
    if given:
        if len(given) != 1 or given[0].partition(":")[0] != base:
            raise SSLBenchError(f"--dataset {datasets}: the leaderboard is of {pub.dataset}")
        dataset = given[0]
    elif ":" in pub.dataset:
        raise SSLBenchError(f"the leaderboard is of {pub.dataset}: say where yours is with "
                            f"--dataset {base}:PATH (its contents are checked against the "
                            "published fingerprint)")
    else:
        dataset = pub.dataset
    by_kind: dict[str, list] = {FRACTION: [], PER_CLASS: [], "labels": []}
    for b in pub.budgets:
        by_kind[b.kind].append(b.value if b.kind == FRACTION else int(b.value))
    merged = {name: dict(opts) for name, opts in pub.options.items()}
    for name, opts in (options or {}).items():
        merged.setdefault(name, {}).update(opts)
    return {"datasets": [dataset], "backbones": [pub.backbone], "tasks": tasks,
            "fractions": by_kind[FRACTION], "labels_per_class": by_kind[PER_CLASS],
            "labels": by_kind["labels"], "protocols": list(pub.protocols),
            "seeds": list(pub.seeds), "preset": pub.preset, "settings": dict(pub.settings),
            "options": merged, "split_seeds": list(pub.split_seeds), "dedup": pub.dedup,
            "against": str(pub.folder)}


# ----------------------------------------------------------------------------- verification

def cheapest_baseline(pub: Published) -> Record:
    """The published scratch cell whose record took the least time (ties: the first seed,
    budget and protocol): the one the verification recomputes."""
    return min(pub.baseline, key=lambda r: (r.wall_time_s or 0.0, r.seed, r.split_seed,
                                            Budget.of_record(r).order, r.protocol))


def _data_differs(here: dict[str, Any], published: dict[str, Any]) -> str | None:
    """Why the data set loaded here is not the published one, or None: the contents'
    fingerprint where both records hold one, else the files' names and sizes (records made
    before the contents were fingerprinted)."""
    for key, what in (("content", "contents"), ("fingerprint", "file names and sizes")):
        if here.get(key) and published.get(key):
            if here[key] != published[key]:
                return f"its {what} fingerprint is {here[key]} here, {published[key]} published"
            return None
    return "the published records hold no fingerprint of their data set"


SPLIT_KEYS = ("pool_index", "val_index", "pretext_holdout_index", "labeled_index")


def _splits_differ(here: Path, published: Path, pub: Published) -> str | None:
    """Why the split files made here differ from the published ones (the fixed splits, and
    each seed's labeled and validation subsets of every published budget), or None."""
    if not published.is_dir():
        return f"{str(published)!r} holds no split files (the leaderboard's {SPLITS}/)"
    compared = 0
    for path in sorted(here.glob("*.json")):
        if not SAFE_NAME.match(path.name):
            continue
        theirs, ours = read_json_object(published / path.name), read_json_object(path)
        if theirs is None or ours is None:
            return f"split file {path.name} is missing or unreadable in {str(published)!r}"
        for key in SPLIT_KEYS:
            if key not in ours:
                continue
            mine, pubd = ours[key], theirs.get(key)
            if isinstance(mine, dict):      # per budget: only the published budgets
                keys = {b.key for b in pub.budgets}
                mine = {k: v for k, v in mine.items() if k in keys}
                pubd = {k: v for k, v in (pubd or {}).items() if k in keys} \
                    if isinstance(pubd, dict) else pubd
            if mine != pubd:
                return f"split file {path.name}: its {key} differs from the published one"
        compared += 1
    return None if compared else "no split file was made to compare"


def _what_differs(here: Record, published: Record) -> str:
    """What the two records of one cell say differs in how they were made."""
    diffs = []
    ours, theirs = here.versions or {}, published.versions or {}
    for lib in sorted(set(ours) | set(theirs)):
        if ours.get(lib) != theirs.get(lib):
            diffs.append(f"{lib} {ours.get(lib, '?')} here, {theirs.get(lib, '?')} published")
    if here.config_hash != published.config_hash:
        diffs.append(f"configuration hash {here.config_hash} here, {published.config_hash} "
                     "published")
    if here.device != published.device:
        diffs.append(f"device {here.device!r} here, {published.device!r} published")
    return "; ".join(diffs) or ("nothing in how they were made: the published record was "
                                "changed after it was written")


def verify(pub: Published, config: SweepConfig, host: Any, trust: bool,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Check the data set and the split files against the leaderboard's and (unless
    ``trust``) recompute its cheapest baseline cell; a one-line :class:`SSLBenchError` on a
    difference. Returns what was checked, for the manifest and the report."""
    chosen = cheapest_baseline(pub)
    with tempfile.TemporaryDirectory(prefix="sslbench-verify-") as tmp:
        vconfig = replace(config, tasks=[SCRATCH], protocols=[chosen.protocol],
                          split_seeds=[chosen.split_seed], out=f"{tmp}/out",
                          cache_dir=f"{tmp}/cache", executor=None, jobs=1, log_to=[],
                          options={k: v for k, v in config.options.items()
                                   if k in (pub.backbone, chosen.protocol,
                                            pub.dataset.partition(':')[0])})
        sweep = Sweep(vconfig, host)
        for cell in sweep.cells:
            cell.done = cell.id != chosen.cell_id
        if all(cell.done for cell in sweep.cells):
            raise SSLBenchError(f"--against: cell {chosen.cell_id} of the leaderboard is not "
                                "a cell of its setting here (another sslbench's cell names)")
        threads = torch.get_num_threads()
        if not trust:
            log(f"verifying {str(pub.folder)!r}: recomputing its cell {chosen.cell_id}")
            with contextlib.ExitStack() as stack:
                if chosen.torch_threads:          # CPU numbers depend on the thread count
                    torch.set_num_threads(chosen.torch_threads)
                    stack.callback(torch.set_num_threads, threads)
                dispatch.run(sweep, None)
            here, problem = read_record_file(Path(tmp, "out", RECORDS_DIR,
                                                  f"{chosen.cell_id}.json"))
            if here is None or not here.ok:
                raise SSLBenchError(f"--against: recomputing cell {chosen.cell_id} failed: "
                                    f"{problem or here.error}")
            data_here = here.data or {}
        else:
            log(f"--trust: the cells of {str(pub.folder)!r} are not recomputed; checking "
                "its data set and split files")
            prepared = sweep.prepare(vconfig.datasets[0], chosen.split_seed)
            data_here = {"fingerprint": prepared.splits.data.fingerprint(),
                         "content": prepared.hygiene.content}
            here = None
        problem = _data_differs(data_here, chosen.data or {})
        if problem:
            raise SSLBenchError(f"--against: the data set {config.datasets[0]} is not the "
                                f"leaderboard's: {problem}")
        problem = _splits_differ(Path(tmp, "out", SPLITS), pub.folder / SPLITS, pub)
        if problem:
            raise SSLBenchError(f"--against: {problem}")
    result: dict[str, Any] = {"cell": chosen.cell_id, "data": "same", "splits": "same"}
    if here is None:
        return {**result, "recomputed": False, "note": "skipped (--trust)"}
    ours, theirs = here.metrics or {}, chosen.metrics or {}
    p_here, p_pub = ours.get("test_predictions"), theirs.get("test_predictions")
    differ = (sum(a != b for a, b in zip(p_here, p_pub)) + abs(len(p_here) - len(p_pub))
              if isinstance(p_here, list) and isinstance(p_pub, list) else None)
    gap = 100 * abs(ours["test_accuracy"] - theirs["test_accuracy"])
    on_gpu = (here.device or "").startswith("cuda")
    same = gap <= GPU_TOLERANCE_POINTS if on_gpu else (differ == 0 and gap == 0)
    if not same:
        raise SSLBenchError(
            f"--against: the leaderboard's cell {chosen.cell_id} recomputed here gives "
            f"{100 * ours['test_accuracy']:.2f}% test accuracy, {100 * theirs['test_accuracy']:.2f}% "
            f"published" + (f" ({differ} test predictions differ)" if differ else "")
            + f"; differs: {_what_differs(here, chosen)}; --trust uses it anyway")
    return {**result, "recomputed": True, "test_accuracy": ours["test_accuracy"],
            "predictions_differing": differ,
            "rule": (f"within {GPU_TOLERANCE_POINTS} points (GPU)" if on_gpu
                     else "every test prediction equal (CPU)")}


# ----------------------------------------------------------------------------- adoption

def adopt(pub: Published, out: Path, new_tasks: list[str],
          verification: dict[str, Any]) -> int:
    """Copy the leaderboard's records of the rows not being computed here into ``out``
    unchanged, and write ``out/against.json`` (each file's checksum, where it came from, the
    verification). Returns how many records were adopted. A different record already in
    ``out`` under an adopted cell's name is an error (use an empty --out)."""
    records_dir = out / RECORDS_DIR
    entries: dict[str, dict[str, Any]] = {}
    for record in pub.records:
        if record.task in new_tasks:
            continue
        data = (pub.folder / RECORDS_DIR / f"{record.cell_id}.json").read_bytes()
        target = records_dir / f"{record.cell_id}.json"
        if target.is_file() and target.read_bytes() != data:
            raise SSLBenchError(f"{str(target)!r} holds another record of the leaderboard's "
                                f"cell {record.cell_id}; use an empty --out with --against")
        if not target.is_file():
            atomic_write_bytes(target, data)
        entries[record.cell_id] = {"sha256": sha256(data),
                                   "sslbench": (record.versions or {}).get("sslbench")}
    atomic_write_json(out / MANIFEST, {
        "note": ("records adopted from a published leaderboard by `sslbench run --against` "
                 "(copied unchanged; sha256 of each file)"),
        "leaderboard": str(pub.folder), "verification": verification, "records": entries})
    return len(entries)
