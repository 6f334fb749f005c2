"""A sweep of one seed can test nothing: every format says so in one line and shows no
significance mark, verdict, headline, interval, infinity or NaN (a table, a frame, a plot)."""

import math
import re

import pytest

from conftest import hand_made_record as record

from sslbench.leaderboard import SINGLE_SEED, Leaderboard
from sslbench._core.plugins import PluginHost
from sslbench._core.publish import headline


def board(seeds):
    recs = []
    for seed in seeds:
        recs += [record("rotation", "linear", 0.1, seed, 0.9 - seed / 100),
                 record("scratch", "linear", 0.1, seed, 0.5 + seed / 100),
                 record("rotation", "linear", 1.0, seed, 0.95 - seed / 100),
                 record("scratch", "linear", 1.0, seed, 0.6 + seed / 100)]
    return Leaderboard(recs)


FORMATS = ("table", "markdown", "html", "latex", "csv")


def render(name, b):
    return PluginHost.from_environment().report_format(name).render(b)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_seed_shows_no_statistics_in_any_format(fmt):
    text = render(fmt, board([0]))
    for mark in ("▲", "▼", "significantly", "Holm", "95% CI", "n.s."):
        assert mark not in text, (fmt, mark)
    assert not re.search(r"(?<![A-Za-z])(-?inf|nan)(?![A-Za-z])", text, re.IGNORECASE), fmt
    assert fmt == "csv" or SINGLE_SEED in text, fmt


@pytest.mark.parametrize("fmt", FORMATS[:4])
def test_five_seeds_show_them(fmt):                          # the control: the same far gap
    text = render(fmt, board([0, 1, 2, 3, 4]))
    assert SINGLE_SEED not in text and ("Holm" in text or fmt == "table")


def test_the_frame_and_the_headline_of_one_seed():
    b = board([0])
    frame = b.summary()
    numbers = frame.select_dtypes("number")
    assert len(numbers) == 4 and "gain_ci_low" in numbers.columns
    for column in numbers.columns:
        for value in numbers[column]:
            assert value is None or value is __import__("pandas").NA or math.isfinite(value), \
                (column, value)
    rotation = frame[frame["task"] == "rotation"].iloc[0]
    assert rotation["gain"] == pytest.approx(40.0)           # the gain is there, untested
    assert not rotation["tested"] and not rotation["significant"]
    assert headline(b, "digits", "smallcnn") == SINGLE_SEED


def test_the_gain_plot_of_one_seed_promises_no_interval():
    from sslbench.leaderboard import Publication
    fig = Publication(board([0])).figures()["gain"]
    label = fig.axes[0].get_ylabel()
    assert "95% CI" not in label and "no interval" in label
    tested = Publication(board([0, 1, 2])).figures()["gain"]
    assert "95% CI" in tested.axes[0].get_ylabel()


def test_the_default_run_says_it_is_a_smoke_test(fast_run):
    status, out, err = fast_run("--tasks", "rotation", "--fractions", "1.0",
                                "--protocols", "linear")
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[-2].startswith(SINGLE_SEED) and "smoke test" in lines[-2]
