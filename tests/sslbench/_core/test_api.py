"""The notebook API (sslbench._core.api): run_sweep and load_results give Results, which
Jupyter shows as the leaderboard and pandas takes as a DataFrame."""

import pytest

import sslbench
from sslbench.errors import SSLBenchError


def test_load_results_shows_the_leaderboard_and_converts_to_a_frame(finished_sweep):
    results = sslbench.load_results(finished_sweep[0])
    assert len(results) == 8 and {r["task"] for r in results.records} == {"rotation", "scratch"}
    frame = results.to_frame()
    assert set(frame["task"]) == {"rotation", "scratch"} and set(frame["protocol"]) == {"linear"}
    html = results._repr_html_()                   # what Jupyter displays
    assert "<table" in html and "rotation" in html and "scratch" in html
    assert "rotation" in repr(results) and "linear 100% (n=2)" in repr(results)
    assert results.render("markdown").count("|") > 4


def test_load_results_of_nothing_is_an_error_naming_it(tmp_path):
    with pytest.raises(SSLBenchError, match="does not exist"):
        sslbench.load_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SSLBenchError, match="no result records"):
        sslbench.load_results(tmp_path / "empty")
