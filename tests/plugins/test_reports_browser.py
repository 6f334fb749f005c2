"""The HTML report in a real headless browser: it loads without console errors and shows its
tables and its two plots. Uses Debian's Chromium (.ci/run installs it); skips without one."""

import re
import shutil
import subprocess

import pytest
from conftest import hand_made_record as record

from sslbench.leaderboard import Leaderboard
from sslbench._core.plugins import PluginHost

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


@pytest.fixture
def page(tmp_path):
    recs = []
    for seed, (a, b) in enumerate([(0.7, 0.6), (0.72, 0.61)]):
        for frac, bump in ((0.1, 0.0), (1.0, 0.1)):
            for proto in ("linear", "finetune"):
                recs.append(record("rotation", proto, frac, seed, a + bump, seconds=10))
                recs.append(record("scratch", proto, frac, seed, b + bump))
    path = tmp_path / "report.html"
    path.write_text(PluginHost.from_environment().report_format("html").render(Leaderboard(recs)))
    return path


@pytest.mark.skipif(BROWSER is None, reason="no Chromium found (apt-get install chromium)")
def test_html_report_in_headless_chromium(page, tmp_path):
    run = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    dom = run.stdout
    assert len(re.findall(r"<table", dom)) >= 3          # leaderboard, efficiency, provenance
    assert len(re.findall(r"<svg", dom)) >= 2            # the two plots, inline
    assert "rotation" in dom and "Label efficiency" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
