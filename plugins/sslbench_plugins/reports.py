"""Built-in report formats: ``table`` (terminal), ``markdown``, ``html``, ``latex`` (booktabs)
and ``csv``. Each renders every (data set, backbone) group of a :class:`Leaderboard`."""

from __future__ import annotations

import html
import io

from rich.console import Console
from rich.table import Table
from tabulate import tabulate

import sslbench
from sslbench.leaderboard import Leaderboard, Publication, ReportFormat, run_command

# Marks the best value of a column in formats whose escaping would mangle markup.
_BEST_OPEN, _BEST_CLOSE = "\x02", "\x03"


def _tables(board: Leaderboard, mark):
    for dataset, backbone in board.groups:
        yield (dataset, backbone, board.display(mark, dataset, backbone),
               board.caption(dataset, backbone))


def render_table(board: Leaderboard) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, force_terminal=False, color_system=None)
    for dataset, backbone, table, caption in _tables(board, lambda s: f"{s} *"):
        t = Table(title=f"{dataset} · {backbone}", title_justify="left", caption=caption,
                  caption_justify="left")
        t.add_column("task")
        for col in table.columns:
            t.add_column(col, justify="right")
        for task, row in table.iterrows():
            t.add_row(task, *row.tolist())
        console.print(t)
    return buffer.getvalue()


def _fmt_gain(value) -> str:
    return "—" if value != value else f"{value:+.1f}"


def _extras(board: Leaderboard) -> tuple:
    pub = Publication(board)
    eff = pub.label_efficiency()
    if len(eff):
        eff = eff.drop(columns=["dataset", "backbone"])
        for col in [c for c in eff.columns if c.startswith("gain ")]:
            eff[col] = eff[col].map(_fmt_gain)
    return pub, eff, pub.provenance()


def render_markdown(board: Leaderboard) -> str:
    parts = [f"Produced by `{run_command(board.records)}`; rendered by `sslbench report`.\n"]
    for dataset, backbone, table, caption in _tables(board, lambda s: f"**{s}**"):
        parts.append(f"### {dataset} · {backbone}\n\n"
                     + tabulate(table, headers="keys", tablefmt="pipe",
                                colalign=("left",) + ("right",) * len(table.columns))
                     + f"\n\n{caption}\n")
    pub, eff, prov = _extras(board)
    if board.asset_stem:
        parts.append(f"![test accuracy against label fraction]({board.asset_stem}-accuracy.png)\n\n"
                     f"![gain over scratch]({board.asset_stem}-gain.png)\n")
    if len(eff):
        parts.append("### Label efficiency\n\nGain over scratch (points, same protocol and "
                     "labels), and the smallest label fraction at which the task reaches "
                     "scratch fine-tuned on 100% of the labels.\n\n"
                     + tabulate(eff, headers="keys", tablefmt="pipe", showindex=False,
                               disable_numparse=True) + "\n")
    refs = pub.references()
    if len(refs):
        parts.append("### Published reference numbers\n\n"
                     + tabulate(refs, headers="keys", tablefmt="pipe", showindex=False,
                                disable_numparse=True) + "\n")
    parts.append("### Where each number comes from\n\nPer leaderboard cell: the seeds of its "
                 "records, the layer (linear, knn) or fine-tuning step chosen on validation for "
                 "each seed, and the split files (under the results directory) that list the "
                 "validation images and the labeled subset.\n\n"
                 + tabulate(prov, headers="keys", tablefmt="pipe", showindex=False) + "\n")
    return "\n".join(parts)


def render_html(board: Leaderboard) -> str:
    body = [f"<p>Produced by <code>{html.escape(run_command(board.records))}</code>.</p>"]
    for dataset, backbone, table, caption in _tables(
            board, lambda s: f"{_BEST_OPEN}{s}{_BEST_CLOSE}"):
        rendered = tabulate(table, headers="keys", tablefmt="html")
        rendered = rendered.replace(_BEST_OPEN, "<b>").replace(_BEST_CLOSE, "</b>")
        body.append(f"<h2>{html.escape(dataset)} · {html.escape(backbone)}</h2>\n{rendered}\n"
                    f"<p class='caption'>{html.escape(caption)}</p>")
    pub, eff, prov = _extras(board)
    figures = pub.render_figures()
    body.append("<h2>Plots</h2>")
    for name, alt in (("accuracy", "test accuracy against label fraction"),
                      ("gain", "gain over scratch")):
        svg = figures[name]["svg"].decode()
        svg = svg[svg.index("<svg"):]                       # drop the XML prologue
        body.append(f"<figure role='img' aria-label='{alt}'>{svg}<figcaption>{alt}"
                    "</figcaption></figure>")
    if len(eff):
        body.append("<h2>Label efficiency</h2><p class='caption'>Gain over scratch (points), "
                    "and the smallest label fraction at which the task reaches scratch "
                    "fine-tuned on 100% of the labels.</p>"
                    + tabulate(eff, headers="keys", tablefmt="html", showindex=False,
                               disable_numparse=True))
    refs = pub.references()
    if len(refs):
        body.append("<h2>Published reference numbers</h2>"
                    + tabulate(refs, headers="keys", tablefmt="html", showindex=False,
                               disable_numparse=True))
    body.append("<h2>Where each number comes from</h2>"
                + tabulate(prov, headers="keys", tablefmt="html", showindex=False))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<title>sslbench leaderboard</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{padding:.3em .8em;"
            "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
            "{text-align:left}.caption,figcaption{color:#555;font-size:.9em}"
            "svg{max-width:100%;height:auto}</style></head><body>\n"
            "<h1>sslbench leaderboard</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def render_latex(board: Leaderboard) -> str:
    parts = []
    for dataset, backbone, table, caption in _tables(
            board, lambda s: f"{_BEST_OPEN}{s}{_BEST_CLOSE}"):
        table = table.map(lambda v: v.replace("±", "PLUSMINUS").replace("—", "--"))
        body = tabulate(table, headers="keys", tablefmt="latex_booktabs")
        body = (body.replace(_BEST_OPEN, r"\textbf{").replace(_BEST_CLOSE, "}")
                .replace("PLUSMINUS", r"$\pm$").replace(r"\%", r"\%"))
        parts.append("\\begin{table}[t]\n\\centering\n\\small\n" + body
                     + f"\\caption{{{_latex_escape(caption)}}}\n\\end{{table}}\n")
    return "% requires \\usepackage{booktabs}\n" + "\n".join(parts)


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                 ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("±", r"$\pm$")):
        text = text.replace(a, b)
    return text


def render_csv(board: Leaderboard) -> str:
    """Long form, numbers unrounded: one row per (data set, backbone, task, protocol,
    fraction) with mean, std and n over seeds of test accuracy (%)."""
    return board.summary().to_csv(index=False)


@sslbench.hookimpl
def sslbench_report_formats():
    return [
        ReportFormat("table", render_table, "plain-text table for the terminal"),
        ReportFormat("markdown", render_markdown, "markdown: leaderboard, label efficiency, "
                     "provenance (plots beside it with -o)", plots=True),
        ReportFormat("html", render_html, "one self-contained page with tables and plots",
                     plots=True),
        ReportFormat("latex", render_latex, "LaTeX tables (booktabs)"),
        ReportFormat("csv", render_csv, "long-form CSV with mean, std and n"),
    ]
