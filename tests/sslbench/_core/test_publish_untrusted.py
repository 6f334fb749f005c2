"""``sslbench publish`` with records from someone else: nothing is written outside the
site, a republish holds exactly the current records, a killed publish leaves the old site
whole, a folder publish did not write is never replaced, and no maker's path is published."""

import json
import shutil

import pytest

import sslbench._core.publish as publish_module
from sslbench._core.publish import MARKER


def copy_of(finished_sweep, tmp_path, name="results"):
    out = tmp_path / name
    shutil.copytree(finished_sweep[0], out)
    return out


def records_of(folder):
    return sorted((folder / "records").glob("*.json"))


def test_names_from_records_never_become_paths_outside(cli, finished_sweep, tmp_path):
    out = copy_of(finished_sweep, tmp_path)
    good = json.loads(records_of(out)[0].read_text())
    target = tmp_path / "outside"
    crafted = {"abs": {"cell_id": str(target / "pwned")},
               "climb": {"backbone": "../../outside"}}
    for name, change in crafted.items():
        (out / "records" / f"{name}.json").write_text(json.dumps({**good, **change}))
    # a field that is free text but names a folder of the site: a slug there
    records_of(out)[-1].write_text(json.dumps({**json.loads(records_of(out)[-1].read_text()),
                                               "preset": "../../outside"}))
    status, _, err = cli("publish", str(out), "-o", str(tmp_path / "site" / "inner"))
    assert status == 0, err
    assert not target.exists() and not (tmp_path / "outside.json").exists()
    site = tmp_path / "site" / "inner"
    written = [p for p in tmp_path.rglob("*") if p.is_file()
               and not p.is_relative_to(out) and not p.is_relative_to(site)]
    assert written == [], written
    assert err.count("warning: skipping") == 2             # cell_id and backbone refused
    # the crafted preset is a name, shown as text, and its folder is a slug in the site
    written = list(site.rglob("*"))
    assert (site / "index.html") in written and len(written) > 20
    assert all(p.resolve().is_relative_to(site.resolve()) for p in written)


def test_a_republish_holds_exactly_the_current_records(cli, finished_sweep, tmp_path):
    out = copy_of(finished_sweep, tmp_path)
    site = tmp_path / "site"
    assert cli("publish", str(out), "-o", str(site))[0] == 0
    board = site / "digits-smallcnn-quick" / "records"
    assert len(list(board.glob("*__s1.json"))) == 4
    for path in (out / "records").glob("*__s1.json"):
        path.unlink()                                       # a smaller set
    assert cli("publish", str(out), "-o", str(site))[0] == 0
    assert len(list(board.glob("*.json"))) == 4 and not list(board.glob("*__s1.json"))
    assert (site / MARKER).is_file()
    assert not list(tmp_path.glob(".site~*"))               # no staging or old folder left


def test_a_killed_publish_leaves_the_old_site_whole(cli, finished_sweep, tmp_path,
                                                    monkeypatch):
    out = copy_of(finished_sweep, tmp_path)
    site = tmp_path / "site"
    assert cli("publish", str(out), "-o", str(site))[0] == 0
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    real = publish_module._write_site

    def dies_midway(groups, staging, host):
        real(groups, staging, host)
        raise KeyboardInterrupt                       # killed before the swap

    monkeypatch.setattr(publish_module, "_write_site", dies_midway)
    with pytest.raises(BaseException):
        publish_module.publish([str(out)], site, __import__(
            "sslbench._core.plugins", fromlist=["PluginHost"]).PluginHost.from_environment())
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.glob(".site~*"))


def test_leftovers_of_a_publish_killed_between_renames_are_tidied(cli, finished_sweep,
                                                                   tmp_path):
    out = copy_of(finished_sweep, tmp_path)
    (tmp_path / ".site~abc.old" / "site").mkdir(parents=True)
    (tmp_path / ".site~def.publishing").mkdir()
    (tmp_path / ".unrelated~x.old").mkdir()                # not ours: kept
    assert cli("publish", str(out), "-o", str(tmp_path / "site"))[0] == 0
    assert sorted(p.name for p in tmp_path.glob(".*")) == [".unrelated~x.old"]


def test_a_folder_publish_did_not_write_is_never_replaced(cli, finished_sweep, tmp_path):
    out = copy_of(finished_sweep, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    status, _, err = cli("publish", str(out), "-o", str(home))
    assert status == 2 and "did not write" in err and len(err.strip().splitlines()) == 1
    assert (home / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("publish", str(out), "-o", str(empty))[0] == 0       # the control


def test_published_files_name_no_absolute_path_of_the_maker(cli, fast_run, image_folder,
                                                            tmp_path):
    status, _, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--tasks",
                              "rotation", "--fractions", "1.0", "--protocols", "linear")
    assert status == 0, err
    site = tmp_path / "site"
    status, _, err = cli("publish", str(tmp_path / "results"), "-o", str(site))
    assert status == 0, err
    maker = str(image_folder.parent)
    leaks = [p for p in site.rglob("*") if p.is_file() and maker in p.read_text()]
    assert leaks == []
    assert (site / "imgs-smallcnn-quick" / "index.html").is_file()
    board = json.loads((site / "imgs-smallcnn-quick" / "leaderboard.json").read_text())
    assert board["dataset"] == "imagefolder:imgs"
    # the control: the records themselves do hold it
    assert any(maker in p.read_text() for p in (tmp_path / "results" / "records").iterdir())
