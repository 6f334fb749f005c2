"""Leaderboard aggregation and every report format, on hand-made records."""

import csv
import io
import math
from html.parser import HTMLParser

import pytest

from conftest import hand_made_record as record

from sslbench.leaderboard import Leaderboard
from sslbench._core.plugins import PluginHost


@pytest.fixture
def board():
    recs = []
    for seed, (r_lin, s_lin, r_ft, s_ft) in enumerate([(0.80, 0.60, 0.90, 0.92),
                                                        (0.84, 0.62, 0.88, 0.94)]):
        recs += [record("rotation", "linear", 0.1, seed, r_lin, seconds=60 + seed),
                 record("rotation", "finetune", 0.1, seed, r_ft, seconds=60 + seed),
                 record("scratch", "linear", 0.1, seed, s_lin),
                 record("scratch", "finetune", 0.1, seed, s_ft)]
    recs.append(record("rotation", "finetune", 0.1, 2, None, status="failed"))
    return Leaderboard(recs)


def test_summary_mean_std_n(board):
    s = board.summary().set_index(["task", "protocol"])
    assert s.loc[("rotation", "linear"), "mean"] == pytest.approx(82.0)
    assert s.loc[("rotation", "linear"), "std"] == pytest.approx(math.sqrt(8.0))  # sample std
    assert s.loc[("rotation", "finetune"), "n"] == 2
    assert s.loc[("rotation", "finetune"), "n_failed"] == 1
    assert s.loc[("rotation", "linear"), "pretrain_seconds"] == pytest.approx(60.5)


def test_display_without_evidence_marks_no_winner(board):
    """Two seeds and no per-image results: no test can support a winner, so none is marked,
    however far apart the means are."""
    table = board.display(lambda s: f"<{s}>")
    assert list(table.index) == ["labels (train+val)", "detectable gain (80% power)",
                                 "rotation", "scratch"]
    # two seeds: t(1 dof) quantiles make the detectable gain large, but it is a number
    assert table.loc["detectable gain (80% power)", "linear 10% (n=2)"].startswith("±")
    assert list(table.columns) == ["linear 10% (n=2)", "finetune 10% (n=2)",
                                   "pretext (held-out)", "control", "pretraining"]
    assert table.loc["rotation", "linear 10% (n=2)"] == "82.0 ± 2.8"
    assert table.loc["scratch", "finetune 10% (n=2)"] == "93.0 ± 1.4"
    assert table.loc["rotation", "finetune 10% (n=2)"] == "89.0 ± 1.4 (1 failed)"
    assert table.loc["rotation", "pretraining"] == "1m 00s"
    assert not any("<" in str(v) for v in table.values.flatten())


def render(name, board):
    return PluginHost.from_environment().report_format(name).render(board)


def test_markdown(board):
    md = render("markdown", board)
    assert "| task" in md and "| rotation" in md and "82.0 ± 2.8" in md and "**" not in md
    assert "Test accuracy (%) on digits" in md and "Gains over scratch" in md


def test_latex_booktabs(board):
    tex = render("latex", board)
    assert "\\toprule" in tex and "\\bottomrule" in tex
    assert "82.0 $\\pm$ 2.8" in tex and "\x02" not in tex and "\\textbf" not in tex


def test_csv_is_long_form_and_unrounded(board):
    rows = list(csv.DictReader(io.StringIO(render("csv", board))))
    row = next(r for r in rows if r["task"] == "rotation" and r["protocol"] == "linear")
    assert float(row["mean"]) == pytest.approx(82.0) and row["n"] == "2"
    assert float(row["gain"]) == pytest.approx(21.0) and row["significant"] == "False"


def test_html_is_a_page_with_the_table(board):
    page = render("html", board)

    class Cells(HTMLParser):
        cells = []

        def handle_data(self, data):
            self.cells.append(data)

    parser = Cells()
    parser.feed(page)
    assert page.startswith("<!DOCTYPE html>") and "rotation" in parser.cells
    assert "82.0 ± 2.8" in [c.strip() for c in parser.cells] and "<b>" not in page


def test_html_escapes_names():
    recs = [record("<img src=x onerror=alert(1)>", "linear", 0.1, 0, 0.5),
            record("scratch", "linear", 0.1, 0, 0.4)]
    page = render("html", Leaderboard(recs))
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_table(board):
    text = render("table", board)
    assert "rotation" in text and "82.0 ± 2.8" in text and "n=2" in text


def test_report_command_on_a_results_dir(cli, finished_sweep, tmp_path):
    results = finished_sweep[0]
    out_file = tmp_path / "board.md"
    status, _, err = cli("report", str(results), "--format", "markdown",
                         "-o", str(out_file))
    assert status == 0, err
    assert "| rotation" in out_file.read_text() and "| scratch" in out_file.read_text()
    status, _, err = cli("report", str(tmp_path / "nothing"))
    assert status == 2 and "does not exist" in err
    status, _, err = cli("report", str(results), "--format", "pdf")
    assert status == 2 and "unknown format 'pdf'" in err


def test_report_merges_several_results_dirs(cli, finished_sweep, tmp_path):
    """The shared finished sweep's two seeds, as if run into two folders."""
    import shutil
    for seed in ("0", "1"):
        folder = tmp_path / f"r{seed}" / "records"
        folder.mkdir(parents=True)
        for path in (finished_sweep[0] / "records").glob(f"*__f1__s{seed}.json"):
            shutil.copy(path, folder)
        assert len(list(folder.glob("*.json"))) == 2
    status, out, err = cli("report", str(tmp_path / "r0"), str(tmp_path / "r1"), "--format", "csv")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["task"] for r in rows} == {"rotation", "scratch"}
    assert all(r["n"] == "2" for r in rows)      # the two seeds, from two directories


def test_report_shows_reference_numbers_from_the_records_alone(cli, fast_run, tmp_path):
    """The records carry the task's published numbers: the report needs no plugin."""
    from conftest import LOCAL_TASK
    plugin = tmp_path / "bright.py"
    source = LOCAL_TASK.replace(
        '    defaults = {"levels": 3}',
        '    defaults = {"levels": 3}\n'
        '    references = [{"paper": "Nobody 2099", "dataset": "digits", "backbone": "x",\n'
        '                   "protocol": "linear", "labels": 1, "accuracy": 12.5,\n'
        '                   "source": "test"}]')
    assert "Nobody 2099" in source
    plugin.write_text(source)
    status, _, err = fast_run("--plugin", str(plugin), "--tasks", "brightness", "--fractions",
                              "1.0", "--protocols", "linear")
    assert status == 0, err
    plugin.unlink()                                       # the plugin is gone
    status, out, err = cli("report", str(tmp_path / "results"), "--format", "markdown")
    assert status == 0, err
    assert "Nobody 2099" in out and "12.50" in out


def test_markdown_and_latex_escape_names():
    recs = [record("<img src=x onerror=alert(1)>|x", "linear", 0.1, 0, 0.5),
            record("scratch", "linear", 0.1, 0, 0.4)]
    board = Leaderboard(recs)
    from markdown_it import MarkdownIt
    page = MarkdownIt("commonmark").enable("table").render(render("markdown", board))
    assert "<table>" in page and "<img" not in page               # the name shown as text
    assert ">&lt;img src=x onerror=alert(1)&gt;|x</td>" in page
    tex = render("latex", Leaderboard([{**r, "dataset": "a_b%c"} for r in recs]))
    assert "a\\_b\\%c" in tex and "a_b%c" not in tex


def test_a_folder_reported_twice_counts_once(cli, finished_sweep):
    folder = str(finished_sweep[0])                   # seeds 0 and 1
    status, out, err = cli("report", folder, folder, "--format", "csv")
    assert status == 0, err
    assert {r["n"] for r in csv.DictReader(io.StringIO(out))} == {"2"}


def test_folders_with_different_settings_are_not_averaged(cli, fast_run, tmp_path):
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    status, _, err = fast_run(*args, "--seeds", "0", out=tmp_path / "a")
    assert status == 0, err
    status, _, err = fast_run(*args, "--seeds", "1", "--opt", "linear.max_iter=7",
                              out=tmp_path / "b")
    assert status == 0, err
    status, _, err = cli("report", str(tmp_path / "a"), str(tmp_path / "b"))
    assert status == 2 and "different settings (linear.max_iter)" in err
    assert len(err.strip().splitlines()) == 1
    status, _, err = fast_run(*args, "--seeds", "0", "--opt", "linear.max_iter=7",
                              out=tmp_path / "c")
    status, _, err = cli("report", str(tmp_path / "a"), str(tmp_path / "c"))
    assert status == 2 and "run with different configurations" in err


def test_terminal_table_shows_brackets_as_text():
    """Rich reads "[n=1]" as markup and would drop it: cells are plain text."""
    recs = [record("[bold]odd[/bold]", "linear", 0.1, 0, 0.5),
            record("scratch", "linear", 0.1, 0, 0.4), record("scratch", "linear", 0.1, 1, 0.4)]
    text = render("table", Leaderboard(recs))
    assert "[n=1]" in text and "[bold]odd[/bold]" in text


def test_a_cell_not_run_yet_is_a_dash_and_a_protocol_that_does_not_apply_is_na():
    """uda has fine-tuning records at 10% only: its 100% cell is missing ("—", and "—" in the
    label-efficiency table), its linear cells do not apply ("n/a")."""
    from sslbench.leaderboard import Publication
    recs = []
    for seed in (0, 1):
        for frac in (0.1, 1.0):
            recs += [record("scratch", "linear", frac, seed, 0.5 + frac / 10),
                     record("scratch", "finetune", frac, seed, 0.6 + frac / 10)]
        recs.append(record("uda", "finetune", 0.1, seed, 0.65))
    board = Leaderboard(recs)
    table = board.display()
    assert table.loc["uda", "finetune 100% (n=2)"] == "—"
    assert table.loc["uda", "linear 10% (n=2)"] == "n/a"
    eff = Publication(board).label_efficiency().set_index("task")
    assert eff.loc["uda", "gain 100%"] == "—"


def test_a_board_asks_its_installed_lookup_only_for_what_old_records_lack():
    asked = []

    def installed(kind, name):
        asked.append((kind, name))
        return type("Protocol", (), {"trains_backbone": name == "finetune"})()
    old = [record("scratch", p, 1.0, 0, 0.5) for p in ("linear", "finetune")]   # before 0.5
    new = {**record("scratch", "knn", 1.0, 0, 0.5), "protocol_trains_backbone": False}
    board = Leaderboard(old + [new], installed=installed)
    assert board.trained_protocols() == ["finetune"]
    assert ("protocol", "finetune") in asked and ("protocol", "knn") not in asked


def test_a_plugin_host_as_second_argument_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="installed="):
        board = Leaderboard([record("scratch", "linear", 1.0, 0, 0.5)],
                            PluginHost.from_environment())
    assert board.installed("protocol", "finetune").trains_backbone
    assert board.installed("protocol", "no-such-protocol") is None
