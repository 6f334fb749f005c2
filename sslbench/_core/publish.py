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

A leaderboard is one (data set, backbone, preset) of the given results folders; NAME is made
of those three. Every file is written atomically; the index is written last.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from pathlib import Path
from typing import Any


from ..errors import SSLBenchError
from ..leaderboard import Leaderboard, run_command
from .atomic import atomic_write_json, atomic_write_text
from .grid import slug
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


def leaderboards(directories: list[str]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The records of the given results folders, by (data set, backbone, preset)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in load_results_dirs(directories):
        groups[(r["dataset"], r["backbone"], r.get("preset") or "unknown-preset")].append(r)
    return dict(groups)


def headline(board: Leaderboard, dataset: str, backbone: str) -> str:
    """One sentence: the significant gains over scratch, or that there are none."""
    gains = board.gains(dataset, backbone)
    if not len(gains):
        return "no task to compare with scratch"
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


def publish(directories: list[str], site: Path, host) -> list[Path]:
    """Write the site; returns the pages written, the index first."""
    groups = leaderboards(directories)
    site = Path(site)
    html_format = host.format_for("page")
    csv_format = host.format_for("data")
    rows, pages = [], []
    names: dict[str, str] = {}
    for (dataset, backbone, preset), records in sorted(groups.items()):
        name = f"{slug(dataset)}-{backbone}-{preset}"
        if name in names:      # two data sets with one short name: they would share a folder
            raise SSLBenchError(f"data sets {names[name]!r} and {dataset!r} would both be "
                                f"published as {name!r}; publish them to separate sites")
        names[name] = dataset
        folder = site / name
        board = Leaderboard(records, host)
        report = html_format.render(board)
        extra = (f"<p><a href='../index.html'>all leaderboards</a> · "
                 f"<a href='leaderboard.json'>leaderboard.json</a> · "
                 f"<a href='leaderboard.csv'>leaderboard.csv</a> · "
                 f"<a href='records/index.html'>the {len(records)} records</a></p>")
        report = report.replace("<body>\n", "<body>\n" + extra, 1)
        for r in records:
            atomic_write_json(folder / "records" / f"{r['cell_id']}.json", r)
        listing = "".join(f"<li><a href='{html.escape(r['cell_id'])}.json'>"
                          f"{html.escape(r['cell_id'])}</a> ({r['status']})</li>"
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
            "comparisons": board.gains(dataset, backbone).to_dict(orient="records")})
        atomic_write_text(folder / "leaderboard.csv", csv_format.render(board))
        atomic_write_text(folder / "index.html", report)
        pages.append(folder / "index.html")
        rows.append((name, dataset, backbone, preset, len(records),
                     headline(board, dataset, backbone)))
    table = "".join(
        f"<tr><td><a href='{html.escape(n)}/index.html'>{html.escape(n)}</a></td>"
        f"<td>{html.escape(d)}</td><td>{html.escape(b)}</td><td>{html.escape(p)}</td>"
        f"<td>{k}</td><td>{html.escape(h)}</td><td><a href='{html.escape(n)}/leaderboard.json'>"
        f"json</a> · <a href='{html.escape(n)}/leaderboard.csv'>csv</a></td></tr>"
        for n, d, b, p, k, h in rows)
    index = site / "index.html"
    atomic_write_text(index, _page("sslbench leaderboards", (
        "<h1>sslbench leaderboards</h1><p class='caption'>Each leaderboard compares pretext "
        "tasks with a supervised baseline trained from scratch on the same labels; a gain is "
        "reported only where paired tests over seeds and test images support it.</p>"
        "<table><tr><th>leaderboard</th><th>data set</th><th>backbone</th><th>preset</th>"
        f"<th>records</th><th>headline</th><th>download</th></tr>{table}</table>")))
    return [index] + pages
