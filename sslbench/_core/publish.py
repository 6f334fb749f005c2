"""``sslbench publish RESULTS... -o SITE/``: finished sweeps as one static, browsable site.

Layout (relative links only, so the folder works from a file system, any static host or
GitHub Pages as it is)::

    SITE/index.html                 every leaderboard: data set, backbone, preset, headline
    SITE/NAME/index.html            one leaderboard: the html report (tables with their
                                    statistics, plots, command, settings, provenance,
                                    per-class accuracy and confusion matrices, folded)
    SITE/NAME/leaderboard.json      the summary, documented in its own "fields"
    SITE/NAME/leaderboard.csv       the same rows, for a spreadsheet
    SITE/NAME/records/CELL.json     every record behind the numbers
    SITE/NAME/splits/*.json         the split files: labeled subsets per seed and budget,
                                    validation and test images (what `sslbench run
                                    --against SITE/NAME` checks a new run against)

A leaderboard is one (data set, backbone, preset) of the given results folders; NAME is made
of those three.

Records are input from whoever made the folders: every name that becomes a file name is
checked to be a plain name inside the site (a record whose ``cell_id`` or ``backbone`` is a
path is not a record, :func:`sslbench._core.record_checks.record_problem`), and the site is built
in a fresh folder beside SITE and swapped in whole: a republish holds exactly the current
records, and a publish killed midway leaves the old site as it was. SITE is replaced only
when it is empty or a site this command wrote (it holds :data:`MARKER`). Published files
name a data set without the maker's folders (``imagefolder:flowers``, not the absolute path:
:func:`public_record`).
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote


from ..errors import SSLBenchError
from ..leaderboard import SINGLE_SEED, Leaderboard, run_command
from .atomic import _umask
from .names import SAFE_NAME, public_name, slug
from ..record import Record
from .records import load_results_dirs

FIELDS = {
    "task": "pretext task (scratch: no pretraining)", "protocol": "evaluation protocol",
    "fraction": "share of the training split's labels", "mean": "mean test accuracy over "
    "seeds (%)", "std": "standard deviation over seeds (points)", "n": "seeds with a record",
    "n_failed": "cells that failed", "n_unconverged": "seeds flagged as not converged",
}

STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:90em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{padding:.3em .8em;"
         "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
         "{text-align:left}.caption{color:#555;font-size:.9em}")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{STYLE}</style></head><body>\n{body}\n"
            "</body></html>\n")


MARKER = ".sslbench-site"     # in every site publish writes: it may replace only those


def _private_paths(dataset: str, sweep: dict[str, Any]) -> list[tuple[str, str]]:
    """(the maker's path, what is published instead), longest first: data set folders,
    --out, --cache-dir, --data-dir cut to their last part."""
    private = {}
    for name in [dataset, *(sweep.get("datasets") or [])]:
        argument = name.partition(":")[2]
        if public_name(name) != name and argument:
            private[argument.rstrip("/")] = public_name(name).partition(":")[2]
    for key in ("out", "cache_dir", "data_dir"):
        value = sweep.get(key)
        if isinstance(value, str) and ("/" in value or "~" in value):
            private[value.rstrip("/")] = Path(value.rstrip("/")).name or "."
    return sorted(private.items(), key=lambda kv: -len(kv[0]))


def _cleaned(value: Any, ordered: list[tuple[str, str]]) -> Any:
    """``value`` (JSON) with every path of ``ordered`` replaced, wherever it appears."""
    if isinstance(value, str):
        for path, short in ordered:
            value = value.replace(path, short)
        return value
    if isinstance(value, dict):
        return {k: _cleaned(v, ordered) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(v, ordered) for v in value]
    return value


def public_record(record: Record) -> Record:
    """A record as published: every path of the maker's (data set folders, --out,
    --cache-dir, --data-dir) shortened to its last part, wherever it appears."""
    ordered = _private_paths(record["dataset"], record.get("sweep") or {})
    return Record.from_dict(_cleaned(record.to_dict(), ordered))


def public_split_files(directories: list[str], dataset: str) -> dict[str, Any]:
    """File name -> content of the split files of the data set published as ``dataset``
    (``imagefolder:flowers``) in the results folders, its maker's paths cut as in records:
    a leaderboard's splits, which ``sslbench run --against`` checks a new run against. Two
    folders with different files of one name are an error (two splits under one name)."""
    found: dict[str, Any] = {}
    for d in directories:
        folder = Path(d) / "splits"
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if not SAFE_NAME.match(path.stem) or path.is_symlink():
                continue
            try:
                content = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(content, dict) or not isinstance(content.get("dataset"), str) \
                    or public_name(content["dataset"]) != dataset:
                continue
            content = _cleaned(content, _private_paths(content["dataset"], {}))
            if path.name in found and found[path.name] != content:
                raise SSLBenchError(f"the results folders hold two different split files "
                                    f"{path.name!r} of {dataset}; publish them separately")
            found[path.name] = content
    return found


def inside(root: Path, *parts: str) -> Path:
    """``root/parts...``, refused unless every part is a plain name and the path stays in
    ``root`` (a name from a record must not write elsewhere)."""
    for part in parts:
        stem = part.removesuffix(".json").removesuffix(".html").removesuffix(".csv")
        if not SAFE_NAME.match(stem):
            raise SSLBenchError(f"{part!r} is not a plain file name; not publishing it")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise SSLBenchError(f"{str(path)!r} would be outside the site; not publishing it")
    return path


def leaderboards(directories: list[str], warn: Callable[[str], None] | None = None
                 ) -> dict[tuple[str, str, str], list[Record]]:
    """The records of the given results folders, by (data set, backbone, preset)."""
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for r in load_results_dirs(directories, warn=warn):
        groups[(r["dataset"], r["backbone"], r.get("preset") or "unknown-preset")].append(r)
    return dict(groups)


def headline(board: Leaderboard, dataset: str, backbone: str) -> str:
    """One sentence: the significant gains over scratch, or that there are none."""
    gains = board.gains(dataset, backbone)
    if not len(gains):
        return "no task to compare with scratch"
    if not board.tested(dataset, backbone):
        return SINGLE_SEED
    better = gains[gains["verdict"] == "better"]
    worse = gains[gains["verdict"] == "worse"]
    parts = []
    for rows, word in ((better, "better"), (worse, "worse")):
        for _, g in rows.iterrows():
            parts.append(f"{g['task']} {word} than scratch, {g['protocol']} at {g['labels']} "
                         f"of the labels ({g['gain']} points)")
    if not parts:
        return (f"no task significantly better or worse than scratch in {len(gains)} "
                "comparisons")
    return "; ".join(parts)


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes, list, dict)):
        return _number(value.item())              # a numpy scalar from pandas
    return value


def publish(directories: list[str], site: Path, host,
            warn: Callable[[str], None] | None = None) -> list[Path]:
    """Write the site; returns the pages written, the index first. ``warn`` is told of
    every file of the results folders that is not a record (it is skipped)."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    made_from: dict[tuple[str, str, str], tuple[str, Any]] = {}
    for (dataset, backbone, preset), records in leaderboards(directories, warn).items():
        key = (public_name(dataset), backbone, preset)
        # one data set under two folders (a leaderboard made on two machines, rows added
        # with --against) is one leaderboard; two data sets under one name are refused
        data = {(r.data or {}).get("fingerprint") for r in records if r.ok} - {None}
        if key in made_from and (len(data | {made_from[key][1]}) > 1 or not data):
            raise SSLBenchError(f"data sets {made_from[key][0]!r} and {dataset!r} would both be "
                                f"published as {_folder_name(*key)!r}; publish them to "
                                "separate sites")
        made_from.setdefault(key, (dataset, next(iter(data), None)))
        groups.setdefault(key, []).extend(public_record(r) for r in records)
    site = Path(site)
    if site.exists() and (not site.is_dir() or site.is_symlink()):
        raise SSLBenchError(f"{str(site)!r} is not a folder")
    if site.is_dir() and any(site.iterdir()) and not (site / MARKER).is_file():
        raise SSLBenchError(f"{str(site)!r} is a folder that sslbench publish did not write "
                            "(it has no .sslbench-site); publish to a new or empty folder")
    site.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(site)
    staging = Path(tempfile.mkdtemp(prefix=f".{site.name}~", suffix=".publishing",
                                    dir=site.parent))
    try:
        pages = _write_site(groups, staging, host, directories)
        (staging / MARKER).write_text("written by sslbench publish; the next publish to "
                                      "this folder replaces it whole\n")
        os.chmod(staging, 0o777 & ~_umask())   # mkdtemp makes 0700; a site is shared
        _swap(staging, site)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [site / p.relative_to(staging) for p in pages]


def _folder_name(dataset: str, backbone: str, preset: str) -> str:
    """A leaderboard's folder in the site: data set, backbone and preset."""
    return f"{slug(dataset)}-{backbone}-{slug(preset)}"


def _remove_leftovers(site: Path) -> None:
    """Folders a killed publish left beside the site (a staging folder, an old site)."""
    for leftover in site.parent.glob(f".{site.name}~*"):
        if leftover.suffix in (".publishing", ".old") and leftover.is_dir() \
                and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


def _swap(staging: Path, site: Path) -> None:
    """Put the new site in place of the old: the old is moved aside, the new renamed in,
    the old removed. A kill between the two renames leaves the old site whole beside the
    new one (under ``.SITE~...old``), and the next publish tidies it."""
    old = None
    if site.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{site.name}~", suffix=".old", dir=site.parent))
        os.replace(site, old / "site")
    os.replace(staging, site)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_site(groups: dict[tuple[str, str, str], list[Record]], site: Path,
                host, directories: list[str]) -> list[Path]:
    from .atomic import atomic_write_json, atomic_write_text
    html_format = host.format_for("page")
    csv_format = host.format_for("data")
    rows, pages = [], []
    names: dict[str, str] = {}
    for (dataset, backbone, preset), records in sorted(groups.items()):
        name = _folder_name(dataset, backbone, preset)
        if name in names:      # two data sets with one short name: they would share a folder
            raise SSLBenchError(f"data sets {names[name]!r} and {dataset!r} would both be "
                                f"published as {name!r}; publish them to separate sites")
        names[name] = dataset
        folder = inside(site, name)
        board = Leaderboard(records, installed=host.find)
        report = html_format.render(board)
        extra = (f"<p><a href='../index.html'>all leaderboards</a> · "
                 f"<a href='leaderboard.json'>leaderboard.json</a> · "
                 f"<a href='leaderboard.csv'>leaderboard.csv</a> · "
                 f"<a href='records/index.html'>the {len(records)} records</a></p>")
        report = report.replace("<body>\n", "<body>\n" + extra, 1)
        for r in records:
            atomic_write_json(inside(folder, "records", f"{r.cell_id}.json"), r.to_dict())
        for file_name, content in public_split_files(directories, dataset).items():
            atomic_write_json(inside(folder, "splits", file_name), content)
        listing = "".join(f"<li><a href='{html.escape(quote(r['cell_id']))}.json'>"
                          f"{html.escape(r['cell_id'])}</a> ({html.escape(r['status'])})</li>"
                          for r in sorted(records, key=lambda r: r["cell_id"]))
        atomic_write_text(folder / "records" / "index.html",
                          _page(f"records of {name}", f"<p><a href='../index.html'>back</a></p>"
                                f"<ul>{listing}</ul>"))
        summary = board.summary()
        atomic_write_json(folder / "leaderboard.json", {
            "dataset": dataset, "backbone": backbone, "preset": preset,
            "command": run_command(records), "caption": board.caption(dataset, backbone),
            "fields": {k: v for k, v in FIELDS.items() if k in summary.columns},
            "rows": [{k: _number(v) for k, v in row.items()}
                     for row in summary.to_dict(orient="records")],
            "comparisons": [{k: _number(v) for k, v in row.items()} for row in
                            board.gains(dataset, backbone).to_dict(orient="records")]})
        atomic_write_text(folder / "leaderboard.csv", csv_format.render(board))
        atomic_write_text(folder / "index.html", report)
        pages.append(folder / "index.html")
        rows.append((name, dataset, backbone, preset, len(records),
                     headline(board, dataset, backbone)))
    table = "".join(
        f"<tr><td><a href='{html.escape(quote(n))}/index.html'>{html.escape(n)}</a></td>"
        f"<td>{html.escape(d)}</td><td>{html.escape(b)}</td><td>{html.escape(p)}</td>"
        f"<td>{k}</td><td>{html.escape(h)}</td><td><a href='{html.escape(quote(n))}/"
        f"leaderboard.json'>json</a> · <a href='{html.escape(quote(n))}/leaderboard.csv'>"
        "csv</a></td></tr>"
        for n, d, b, p, k, h in rows)
    index = site / "index.html"
    atomic_write_text(index, _page("sslbench leaderboards", (
        "<h1>sslbench leaderboards</h1><p class='caption'>Each leaderboard compares pretext "
        "tasks with a supervised baseline trained from scratch on the same labels; a gain is "
        "reported only where paired tests over seeds and test images support it.</p>"
        "<table><tr><th>leaderboard</th><th>data set</th><th>backbone</th><th>preset</th>"
        f"<th>records</th><th>headline</th><th>download</th></tr>{table}</table>")))
    return [index] + pages
