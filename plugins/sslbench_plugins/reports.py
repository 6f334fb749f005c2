"""Built-in report formats: ``table`` (terminal), ``markdown``, ``html``, ``latex`` (booktabs)
and ``csv``. Each renders every (data set, backbone) group of a :class:`Leaderboard`, with the
statistics behind it: significance markers and the winner (bold only where significant) in
the table, and every task-vs-scratch comparison with its interval and p-values beside it."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

import sslbench
from sslbench.formats import ReportFormat

if TYPE_CHECKING:  # pragma: no cover
    from sslbench.leaderboard import Leaderboard

# Marks the best value of a column in formats whose escaping would mangle markup.
_BEST_OPEN, _BEST_CLOSE = "\x02", "\x03"

_GAINS_NOTE = ("Each task against scratch, paired by seed (same initialisation, labeled subset "
               "and test images): mean gain in points with its 95% t interval over seeds, the "
               "paired t-test, and a paired bootstrap over seeds and test images; p-values "
               "Holm-corrected over the table's comparisons (every row and column below: the "
               "family; adding a row can only raise the others' corrected p-values). "
               "\"n.s.\": not significant by both tests at 5%; with one seed nothing is tested.")


def _tables(board: Leaderboard, mark):
    """Per (data set, backbone): the data set's name (as the records say, to look things up
    with), its title (as a report shows it, without its maker's folders), the backbone, the
    table and its caption."""
    for dataset, backbone in board.groups:
        yield (dataset, board.title(dataset), backbone, board.display(mark, dataset, backbone),
               board.caption(dataset, backbone))


def render_table(board: Leaderboard) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False, color_system=None)
    for _, title, backbone, table, caption in _tables(board, lambda s: f"{s} *"):
        # every string as Text: "[n=3]" or a name in brackets is not rich markup
        t = Table(title=Text(f"{title} · {backbone}"), title_justify="left",
                  caption=Text(caption), caption_justify="left")
        t.add_column(Text("task"))
        for col in table.columns:
            t.add_column(Text(str(col)), justify="right")
        for task, row in table.iterrows():
            t.add_row(Text(str(task)), *(Text(str(v)) for v in row.tolist()))
        console.print(t)
    return buffer.getvalue()


def _extras(board: Leaderboard) -> tuple:
    from sslbench.leaderboard import Publication
    pub = Publication(board)
    eff = pub.label_efficiency()
    if len(eff):
        eff = eff.drop(columns=["dataset", "backbone"])
    return pub, eff, pub.provenance()


# Characters markdown gives a meaning inline (CommonMark and GitHub's tables): emphasis,
# code spans, links and images (which need a "["), raw HTML, autolinks and entities,
# strikethrough, table cells.
_MD_SPECIAL = set("\\`*_[]<>&|~")


def _efficiency_marks(board: Leaderboard) -> str:
    """What the marks after a gain mean, in the tables that have them."""
    tested = [board.tested(d, b) for d, b in board.groups]
    if not any(tested):
        return "\"(1 seed)\": not tested"
    return "\"n.s.\": not significant" + ("; \"(1 seed)\": not tested" if not all(tested)
                                          else "")


def _md(text) -> str:
    """A name or cell for markdown, shown as the text it is: a data set, class or task name
    may hold any text, and none of it may become markup (a link, an image, raw HTML, a code
    span, a table cell), so every character markdown reads inline is backslash-escaped
    (CommonMark: any ASCII punctuation may be), and line breaks become spaces."""
    return "".join(f"\\{ch}" if ch in _MD_SPECIAL else ch
                   for ch in " ".join(str(text).splitlines()))


def _md_code(text) -> str:
    """``text`` as one inline code span that nothing in it can close: fenced by more
    backticks than its longest run (CommonMark 6.1), on one line."""
    text = " ".join(str(text).splitlines())
    runs = [len(r) for r in "".join(c if c == "`" else " " for c in text).split()]
    fence = "`" * (max(runs, default=0) + 1)
    return f"{fence} {text} {fence}"


def _md_link(path: str) -> str:
    """A file name as a markdown link destination: percent-encoded, so that no character of
    it ends the link or starts another."""
    from urllib.parse import quote
    return quote(path)


def _md_table(frame, **kwargs) -> str:
    frame = frame.map(_md)
    frame.index = [_md(i) for i in frame.index]
    frame.columns = [_md(c) for c in frame.columns]
    text = tabulate(frame, headers="keys", tablefmt="pipe", disable_numparse=True, **kwargs)
    return text.replace(_BEST_OPEN, "**").replace(_BEST_CLOSE, "**")


def render_markdown(board: Leaderboard) -> str:
    from sslbench.leaderboard import run_command
    parts = [f"Produced by {_md_code(run_command(board.records))}; rendered by "
             "`sslbench report`.\n"]
    for dataset, title, backbone, table, caption in _tables(
            board, lambda s: f"{_BEST_OPEN}{s}{_BEST_CLOSE}"):
        parts.append(f"### {_md(title)} · {_md(backbone)}\n\n"
                     + _md_table(table, colalign=("left",) + ("right",) * len(table.columns))
                     + f"\n\n{_md(caption)}\n")
        gains = board.gains(dataset, backbone)
        if len(gains) and board.tested(dataset, backbone):
            parts.append(f"#### Gains over scratch\n\n{_GAINS_NOTE}\n\n"
                         + _md_table(gains, showindex=False) + "\n")
    pub, eff, prov = _extras(board)
    if board.asset_stem:
        stem = _md_link(board.asset_stem)
        parts.append(f"![test accuracy against the label budget]({stem}-accuracy.png)\n\n"
                     f"![gain over scratch]({stem}-gain.png)\n")
        if pub.pretraining_curves():
            parts.append(f"![pretraining loss and pretext accuracy per epoch]"
                         f"({stem}-pretraining.png)\n")
    if len(eff):
        parts.append("### Label efficiency\n\nGain over scratch (points, same protocol and "
                     f"labels; {_efficiency_marks(board)}), and the smallest label budget whose "
                     f"mean reaches scratch fine-tuned on {pub.reference_budget()} of the "
                     "labels (only when that reference converged).\n\n"
                     + _md_table(eff, showindex=False) + "\n")
    hygiene = pub.hygiene()
    if len(hygiene):
        parts.append("### Duplicated images\n\nFound when the data set was loaded (exact: "
                     "identical files; near: perceptual hash); the split file lists them.\n\n"
                     + _md_table(hygiene, showindex=False) + "\n")
    refs = pub.references()
    if len(refs):
        parts.append("### Published reference numbers\n\n" + _md_table(refs, showindex=False)
                     + "\n")
    parts.append("### Where each number comes from\n\nPer leaderboard cell: the seeds of its "
                 "records, what each seed's protocol chose on validation (layer, fine-tuning "
                 "step; † not converged), and the split files (under the results directory) "
                 "that list the validation images and the labeled subset.\n\n"
                 + _md_table(prov, showindex=False) + "\n")
    return "\n".join(parts)


def _html_table(frame, **kwargs) -> str:
    """A DataFrame as an HTML table with every cell escaped (tabulate's html format does not
    escape), keeping the best-of-column markers as <b>."""
    rendered = tabulate(frame.map(lambda v: html.escape(str(v))),
                        headers=[html.escape(str(c)) for c in
                                 ([frame.index.name or ""] if kwargs.get("showindex", True)
                                  else []) + list(frame.columns)],
                        tablefmt="unsafehtml", disable_numparse=True, **kwargs)
    return rendered.replace(_BEST_OPEN, "<b>").replace(_BEST_CLOSE, "</b>")


def _html_confusion(cells: list[dict]) -> str:
    """Per-class accuracy and confusion matrices, each folded (opened on demand)."""
    out = ["<h2>Per-class accuracy and confusion matrices</h2><p class='caption'>Summed over "
           "the seeds of each cell; rows: true class, columns: predicted class. Click a line "
           "to open it.</p>"]
    for c in cells:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in c["classes"])
        rows = "".join(
            f"<tr><th>{html.escape(n)}</th>" + "".join(f"<td>{v}</td>" for v in row)
            + f"<td>{a:.1f}</td></tr>"
            for n, row, a in zip(c["classes"], c["matrix"], c["per_class_accuracy"]))
        out.append(f"<details><summary>{html.escape(c['dataset'])} · "
                   f"{html.escape(c['backbone'])} · {html.escape(c['task'])} · "
                   f"{html.escape(c['protocol'])} · {html.escape(c['budget'])} labeled "
                   f"({c['seeds']} seeds)</summary><table><tr><th>true \\ predicted</th>{head}"
                   f"<th>accuracy %</th></tr>{rows}</table></details>")
    return "\n".join(out)


def render_html(board: Leaderboard) -> str:
    from sslbench.leaderboard import run_command
    body = [f"<p>Produced by <code>{html.escape(run_command(board.records))}</code>.</p>"]
    for dataset, title, backbone, table, caption in _tables(
            board, lambda s: f"{_BEST_OPEN}{s}{_BEST_CLOSE}"):
        table.index = [html.escape(str(i)) for i in table.index]
        table.index.name = "task"
        body.append(f"<h2>{html.escape(title)} · {html.escape(backbone)}</h2>\n"
                    f"{_html_table(table)}\n<p class='caption'>{html.escape(caption)}</p>")
        gains = board.gains(dataset, backbone)
        if len(gains) and board.tested(dataset, backbone):
            body.append(f"<h3>Gains over scratch</h3><p class='caption'>"
                        f"{html.escape(_GAINS_NOTE)}</p>" + _html_table(gains, showindex=False))
    pub, eff, prov = _extras(board)
    figures = pub.render_figures()
    body.append("<h2>Plots</h2>")
    for name, alt in (("accuracy", "test accuracy against the label budget"),
                      ("gain", "gain over scratch"),
                      ("pretraining", "pretraining loss and pretext accuracy per epoch")):
        if name not in figures:
            continue
        svg = figures[name]["svg"].decode()
        svg = svg[svg.index("<svg"):]                       # drop the XML prologue
        body.append(f"<figure role='img' aria-label='{alt}'>{svg}<figcaption>{alt}"
                    "</figcaption></figure>")
    if len(eff):
        body.append("<h2>Label efficiency</h2><p class='caption'>Gain over scratch (points; "
                    f"{html.escape(_efficiency_marks(board))}), and the smallest label "
                    "budget whose mean reaches scratch fine-tuned on "
                    f"{html.escape(pub.reference_budget())} of the labels (only when that "
                    "reference converged).</p>" + _html_table(eff, showindex=False))
    hygiene = pub.hygiene()
    if len(hygiene):
        body.append("<h2>Duplicated images</h2>" + _html_table(hygiene, showindex=False))
    confusion = pub.confusion()
    if confusion:
        body.append(_html_confusion(confusion))
    refs = pub.references()
    if len(refs):
        body.append("<h2>Published reference numbers</h2>" + _html_table(refs, showindex=False))
    body.append("<h2>Where each number comes from</h2>" + _html_table(prov, showindex=False))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<title>sslbench leaderboard</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;max-width:90em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{padding:.3em .8em;"
            "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
            "{text-align:left}.caption,figcaption{color:#555;font-size:.9em}"
            "svg{max-width:100%;height:auto}</style></head><body>\n"
            "<h1>sslbench leaderboard</h1>\n" + "\n".join(body) + "\n</body></html>\n")


_LATEX_MARKS = (("±", "PLUSMINUS"), ("▲", "UPMARK"), ("▼", "DOWNMARK"), ("†", "DAGGER"),
                ("≈", "APPROX"), ("·", "CDOT"), ("—", "--"))
_LATEX_BACK = (("PLUSMINUS", r"$\pm$"), ("UPMARK", r"$\blacktriangle$"),
               ("DOWNMARK", r"$\blacktriangledown$"), ("DAGGER", r"$^\dagger$"),
               ("APPROX", r"$\approx$"), ("CDOT", r"$\cdot$"))


def render_latex(board: Leaderboard) -> str:
    parts = []
    for _, title, backbone, table, caption in _tables(
            board, lambda s: f"{_BEST_OPEN}{s}{_BEST_CLOSE}"):
        def protect(v: str) -> str:
            for a, b in _LATEX_MARKS:
                v = v.replace(a, b)
            return v
        # tabulate escapes LaTeX's special characters; the markers it does not know are
        # protected as words and turned into LaTeX after
        table = table.map(protect)
        table.index = [protect(str(i)) for i in table.index]
        table.columns = [protect(str(c)) for c in table.columns]
        body = tabulate(table, headers="keys", tablefmt="latex_booktabs", disable_numparse=True)
        body = body.replace(_BEST_OPEN, r"\textbf{").replace(_BEST_CLOSE, "}")
        for a, b in _LATEX_BACK:
            body = body.replace(a, b)
        parts.append("\\begin{table}[t]\n\\centering\n\\small\n" + body
                     + f"\\caption{{{_latex_escape(caption)}}}\n\\end{{table}}\n")
    return "% requires \\usepackage{booktabs,amssymb}\n" + "\n".join(parts)


_LATEX_CHARS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}", "<": r"$<$", ">": r"$>$", "±": r"$\pm$",
                "▲": r"$\blacktriangle$", "▼": r"$\blacktriangledown$", "†": r"$^\dagger$",
                "≈": r"$\approx$", "·": r"$\cdot$"}


def _latex_escape(text: str) -> str:
    """Text for LaTeX's text mode, one character at a time (so that one replacement's output
    is never escaped again)."""
    return "".join(_LATEX_CHARS.get(ch, ch) for ch in text)


def render_csv(board: Leaderboard) -> str:
    """Long form, numbers unrounded: one row per (data set, backbone, task, protocol,
    budget) with mean, std and n over seeds of test accuracy (%), the failed and
    unconverged seeds, the label budget, and the paired comparison with scratch (gain, 95%
    interval, p-values before and after Holm's correction, significant) and whether the cell
    is its column's significant winner."""
    import pandas as pd
    frame = board.summary()
    frame["dataset"] = frame["dataset"].map(board.title)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) \
                and not pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].map(_csv_cell)
    return frame.to_csv(index=False)


def _csv_cell(value):
    """A text cell a spreadsheet will not run: one that starts like a formula (=, +, -, @,
    a tab or a carriage return) gets a leading apostrophe, as OWASP's CSV-injection advice
    says. Numbers are left as numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@sslbench.hookimpl
def sslbench_report_formats():
    return [
        ReportFormat("table", render_table, "plain-text table for the terminal",
                     roles=("terminal",)),
        ReportFormat("markdown", render_markdown, "markdown: leaderboard, gains with their "
                     "statistics, label efficiency, provenance (plots beside it with -o)",
                     plots=True),
        ReportFormat("html", render_html, "one self-contained page with tables and plots",
                     plots=True, roles=("page",)),
        ReportFormat("latex", render_latex, "LaTeX tables (booktabs, amssymb)"),
        ReportFormat("csv", render_csv, "long-form CSV with mean, std, n and the statistics",
                     roles=("data",)),
    ]
