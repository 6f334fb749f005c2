"""``sslbench publish`` (sslbench._core.publish): a static site of leaderboards, checked in a
real headless Chromium: every page loads without a console error, every link and image
resolves, and a screenshot of the index is saved with the test run's files."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key):
                self.targets.append(a[key])


def local_targets(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    return [t for t in parser.targets if not t.startswith(("#", "data:"))]


@pytest.fixture
def site(cli, finished_sweep, tmp_path):
    status, out, err = cli("publish", str(finished_sweep[0]), "-o", str(tmp_path / "site"))
    assert status == 0, err and "wrote" in out
    return tmp_path / "site"


def test_the_site_links_only_what_it_holds(site):
    pages = sorted(site.rglob("*.html"))
    assert site / "index.html" in pages and len(pages) == 3     # index, board, record list
    for page in pages:
        for target in local_targets(page):
            assert "://" not in target and not target.startswith("/"), (page, target)
            assert (page.parent / target).resolve().is_file(), (page, target)
    board = site / "digits-smallcnn-quick"
    data = json.loads((board / "leaderboard.json").read_text())
    assert {"task", "protocol", "fraction", "mean", "std", "n"} <= set(data["fields"])
    assert {(r["task"], r["fraction"]) for r in data["rows"]} == {
        ("rotation", 0.5), ("rotation", 1.0), ("scratch", 0.5), ("scratch", 1.0)}
    assert data["command"].startswith("sslbench run")
    assert len(list((board / "records").glob("*.json"))) == 8
    page = (board / "index.html").read_text()
    assert "<details>" in page and "confusion" in page.lower() and "<svg" in page
    index = (site / "index.html").read_text()
    assert "digits" in index and "smallcnn" in index and "scratch" in index


@pytest.mark.skipif(BROWSER is None, reason="no Chromium found (apt-get install chromium)")
def test_every_page_loads_in_chromium_and_the_index_is_screenshotted(site, tmp_path):
    for page in sorted(site.rglob("*.html")):
        run = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
        assert console == [], (page, console)
        assert re.search(r"<table", run.stdout) or "records" in page.parent.name
    shot = site.parent / "site-index.png"          # kept with the test run's files
    subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    "--window-size=1200,800", f"--screenshot={shot}",
                    (site / "index.html").as_uri()], capture_output=True, timeout=120,
                   check=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 5_000


def test_two_data_sets_with_one_short_name_are_refused_in_one_line(cli, finished_sweep,
                                                                    tmp_path):
    """imagefolder:a/flowers and imagefolder:b/flowers would share the folder 'flowers-...'
    of the site: one line, exit 2, nothing overwritten."""
    for name, dataset in (("a", "imagefolder:a/digits"), ("b", "imagefolder:b/digits")):
        folder = tmp_path / name / "records"
        folder.mkdir(parents=True)
        for path in sorted((finished_sweep[0] / "records").glob("*.json")):
            record = json.loads(path.read_text())
            if name == "b" and record["seed"] == 0:
                continue                  # cells of b are not cells of a: no merge conflict
            if name == "a" and record["seed"] == 1:
                continue
            if name == "b":               # other images: another fingerprint
                record["data"] = {**record["data"], "fingerprint": "0" * 16}
            (folder / path.name).write_text(json.dumps({**record, "dataset": dataset}))
    status, _, err = cli("publish", str(tmp_path / "a"), str(tmp_path / "b"),
                         "-o", str(tmp_path / "site"))
    assert status == 2 and "would both be published as 'digits-smallcnn-quick'" in err
    assert len(err.strip().splitlines()) == 1
    # the same images under two folders (one leaderboard made on two machines, or rows
    # added with --against) are one leaderboard
    for path in (tmp_path / "b" / "records").glob("*.json"):
        record = json.loads(path.read_text())
        twin = json.loads((finished_sweep[0] / "records" / path.name).read_text())
        path.write_text(json.dumps({**record, "data": twin["data"]}))
    status, _, err = cli("publish", str(tmp_path / "a"), str(tmp_path / "b"),
                         "-o", str(tmp_path / "site"))
    assert status == 0, err
    board = json.loads((tmp_path / "site" / "digits-smallcnn-quick" / "leaderboard.json")
                       .read_text())
    assert board["dataset"] == "imagefolder:digits"
    assert {row["n"] for row in board["rows"]} == {2}     # seed 0 from a, seed 1 from b
