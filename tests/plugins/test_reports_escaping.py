"""Every report format shows names as text: a data-set folder, task or class name may hold
any characters, and none may become markup in the rendered report (markdown rendered to
HTML here, as GitHub or a docs site would) or a formula in a spreadsheet (CSV read back)."""

import csv
import io

from markdown_it import MarkdownIt

from conftest import hand_made_record as record

from sslbench.leaderboard import Leaderboard
from sslbench._core.plugins import PluginHost

EVIL_DATASET = "x`<img src=x onerror=alert(1)>`[click](javascript:alert(1))![i](evil.png)"
MAKERS_PATH = "imagefolder:/home/maker/data/flowers"
EVIL_TASK = "=HYPERLINK(\"http://evil\")*_~~x~~_"


def board(dataset=EVIL_DATASET, task=EVIL_TASK):
    recs = []
    for seed in (0, 1):
        recs += [{**record(task, "linear", 0.1, seed, 0.5 + seed / 10), "dataset": dataset},
                 {**record("scratch", "linear", 0.1, seed, 0.4), "dataset": dataset}]
    recs[0]["sweep"] = {**recs[0]["sweep"], "datasets": [dataset]}
    return Leaderboard(recs)


def render(name, b):
    return PluginHost.from_environment().report_format(name).render(b)


def rendered_markdown(b) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(
        render("markdown", b))


def test_markdown_shows_names_as_text():
    page = rendered_markdown(board())
    # nothing from a name became markup: no raw HTML, link, image or emphasis
    for tag in ("<img", "<a ", "<em>", "<strong>", "<s>", "<del>"):
        assert tag not in page, tag
    # the names are there, as text
    assert "x`&lt;img src=x onerror=alert(1)&gt;`[click](javascript:alert(1))![i](evil.png)" \
        in page
    assert "=HYPERLINK(&quot;http://evil&quot;)*_~~x~~_" in page


def test_markdown_positive_control():
    """The renderer does turn unescaped markup into tags: the test above can fail."""
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(
        "a <img src=x> [l](http://x) *e* ~~s~~")
    assert "<img" in page and "<a " in page and "<em>" in page and "<s>" in page


def test_the_command_code_span_cannot_be_closed():
    page = rendered_markdown(board())
    produced = page.split("</p>")[0]
    assert produced.count("<code>") == 2 and "onerror" in produced.split("</code>")[0]


def test_plot_links_are_encoded():
    b = board("digits", "rotation")
    b.asset_stem = "my report (v2)"
    md = render("markdown", b)
    assert "](my%20report%20%28v2%29-accuracy.png)" in md


def test_csv_formulas_are_neutralised():
    rows = list(csv.DictReader(io.StringIO(render("csv", board()))))
    tasks = {r["task"] for r in rows}
    assert "'" + EVIL_TASK in tasks and EVIL_TASK not in tasks
    assert all(not r["task"].startswith(("=", "+", "-", "@")) for r in rows)
    # numbers stay numbers, negative ones included
    gains = [float(r["gain"]) for r in rows if r["gain"]]
    assert gains and all(isinstance(g, float) for g in gains)


def test_reports_name_the_folder_without_its_path():
    for fmt in ("markdown", "latex", "table", "html", "csv"):
        text = render(fmt, board(MAKERS_PATH, "rotation"))
        assert "/home/maker" not in text, fmt
        assert fmt == "csv" or "imagefolder:flowers" in text, fmt
        # the tables looked up by the records' own name are all there
        assert fmt not in ("markdown", "html") or "Gains over scratch" in text, fmt
