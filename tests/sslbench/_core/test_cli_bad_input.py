"""Bad input: one line on stderr naming the problem, exit status 2, no traceback."""

import json
import subprocess
import sys

import pytest
from PIL import Image


def assert_one_line_error(status, err, *fragments):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sslbench: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("args, fragment", [
    # digits' classes hold 142 to 148 training images: 200 per class is more than one has
    (["--labels-per-class", "20,200"],
     "200/class: class '0' has only 142 images that may be labeled (--labels-per-class must "
     "not exceed the smallest class)"),
    (["--labels", "5"], "5 labels: fewer labels than the 10 classes"),
    (["--labels", "2000"], "2000 labels: more than the 1438 images that may be labeled"),
])
def test_a_budget_the_data_cannot_meet_stops_before_any_training(fast_run, tmp_path, args,
                                                                   fragment):
    """Known once the data set is loaded (its warnings come first): one error line, exit 2,
    no record and no checkpoint written."""
    status, _, err = fast_run(*args, "--tasks", "rotation")
    assert status == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sslbench: error: ") and fragment in last, err
    assert not list((tmp_path / "results").glob("records/*.json"))
    assert not list((tmp_path / "cache").glob("checkpoints/*"))


@pytest.mark.parametrize("args, fragments", [
    (["--tasks", "rotaton"], ["unknown task 'rotaton'",
                               "known tasks: exemplar, jigsaw, relpatch, rotation, uda",
                               "Did you mean 'rotation'?"]),
    (["--backbone", "smalcnn"], ["unknown backbone 'smalcnn'", "Did you mean 'smallcnn'?"]),
    (["--dataset", "digitz"], ["unknown dataset 'digitz'", "Did you mean 'digits'?"]),
    (["--protocols", "linaer"], ["unknown protocol 'linaer'", "Did you mean 'linear'?"]),
    (["--fractions", "0"], ["fraction 0 is outside (0, 1]"]),
    (["--fractions", "0.5,1.5"], ["fraction 1.5 is outside (0, 1]"]),
    (["--fractions", "half"], ["--fractions: cannot read 'half'"]),
    (["--labels-per-class", "2.5"], ["--labels-per-class: cannot read '2.5'"]),
    (["--labels-per-class", "0"], ["--labels-per-class: 0 is not a number of labels >= 1"]),
    (["--labels", "-40"], ["--labels: -40 is not a number of labels >= 1"]),
    (["--set", "pretrain_lr_drops=[0.6,0.3]"], ["setting pretrain_lr_drops must be increasing "
                                                "shares in (0, 1), got [0.6, 0.3]"]),
    (["--preset", "huge"], ["unknown preset 'huge'"]),
    (["--set", "pretrain_epoch=3"], ["unknown setting 'pretrain_epoch'",
                                     "Did you mean 'pretrain_epochs'?"]),
    (["--opt", "linear.max_iters=3"], ["has no option 'max_iters'", "Did you mean 'max_iter'?"]),
    (["--executor", "rey"], ["unknown executor 'rey'", "Did you mean 'ray'?"]),
    (["--log-to", "tensorbord"], ["unknown tracker 'tensorbord'",
                                  "Did you mean 'tensorboard'?"]),
    (["--opt", "finetune.steps=many"], ["protocol option finetune.steps: 'many' is not a valid int"]),
    (["--set", "finetune_steps=6"], ["setting finetune_steps is now option 'steps' of the finetune "
                                     "protocol: --opt finetune.steps=VALUE"]),
    (["--opt", "linear.lr=1"], ["protocol 'linear' has no option 'lr'; its options: l2, max_iter"]),
    (["--opt", "nothing.x=1"], ["no task, protocol, backbone or data set is named 'nothing'"]),
    (["--opt", "smallcnn.widths=[8,x]"], ["backbone option smallcnn.widths"]),
    (["--dataset", "imagefolder"], ["needs an argument: imagefolder:PATH"]),
    (["--config", "nope.toml"], ["config file 'nope.toml' does not exist"]),
    (["--plugin", "no_such_plugin_module"], ["cannot load plugin 'no_such_plugin_module'"]),
    (["--bogus-flag"], ["No such option", "--bogus-flag"]),
])
def test_bad_names_and_values(fast_run, args, fragments):
    status, _, err = fast_run(*args)
    assert_one_line_error(status, err, *fragments)


def test_missing_folder(fast_run, tmp_path):
    status, _, err = fast_run("--dataset", f"imagefolder:{tmp_path / 'nowhere'}")
    assert_one_line_error(status, err, "does not exist", "nowhere")


def test_empty_folder(fast_run, tmp_path):
    (tmp_path / "empty").mkdir()
    status, _, err = fast_run("--dataset", f"imagefolder:{tmp_path / 'empty'}")
    assert_one_line_error(status, err, "is empty")


def test_folder_without_class_subfolders(fast_run, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    status, _, err = fast_run("--dataset", f"imagefolder:{flat}")
    assert_one_line_error(status, err, "has no class sub-folders")


def test_class_folders_without_images(fast_run, tmp_path):
    for c in ("a", "b"):
        (tmp_path / "noimg" / c).mkdir(parents=True)
        (tmp_path / "noimg" / c / "readme.txt").write_text("x")
    status, _, err = fast_run("--dataset", f"imagefolder:{tmp_path / 'noimg'}")
    assert_one_line_error(status, err, "but no images")


def test_unreadable_image_is_named(fast_run, image_folder):
    bad = image_folder / "dog" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    status, _, err = fast_run("--dataset", f"imagefolder:{image_folder}")
    assert_one_line_error(status, err, "cannot read image", "broken.jpg")


def test_fraction_leaving_a_class_empty_warns_and_uses_one(fast_run, image_folder, tmp_path):
    status, out, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--tasks", "rotation",
                                "--fractions", "0.01", "--protocols", "linear")
    assert status == 0, err
    assert "fraction 0.01 leaves class 'cat' without a labeled image; using 1" in out + err
    import json
    rec = json.loads(next((tmp_path / "results" / "records").glob("*rotation*")).read_text())
    assert rec["n_labeled"] == 3      # one per class


def test_exit_status_and_message_from_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sslbench._core.cli", "run", "--tasks", "jigsw",
                           "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("sslbench: error: unknown task 'jigsw'")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option, message", [
    ("jigsaw.permutations=abc", "task option jigsaw.permutations: 'abc' is not a valid int"),
    ("relpatch.patch=big", "task option relpatch.patch: 'big' is not a valid float"),
    ("rotation.flip=maybe", "task option rotation.flip: 'maybe' is not a valid bool"),
    ("uda.tsa=cosine", "uda.tsa must be one of"),
])
def test_task_option_of_the_wrong_type_fails_before_the_sweep(fast_run, option, message):
    status, _, err = fast_run("--tasks", option.split(".")[0], "--task-opt", option)
    assert_one_line_error(status, err, message)


def test_show_rejects_a_tiny_resolution(cli, tmp_path):
    status, _, err = cli("show", "rotation", "--resolution", "0", "-o", str(tmp_path / "p.png"))
    assert_one_line_error(status, err, "--resolution")


@pytest.mark.parametrize("flag, message", [
    (("--opt", "linear.l2=[]"), "protocol option linear.l2 must be a non-empty list"),
    (("--opt", "finetune.lr=-1"), "protocol option finetune.lr must be > 0"),
    (("--opt", "knn.k=[0]"), "protocol option knn.k must be >= 1 (each element), got [0]"),
    # infinite and NaN numbers are never usable; every numeric option has a declared range
    (("--opt", "linear.l2=[inf]"), "protocol option linear.l2: '[inf]' is not a valid list"),
    (("--opt", "finetune.lr=inf"), "protocol option finetune.lr: 'inf' is not a valid float"),
    (("--opt", "finetune.lr=nan"), "protocol option finetune.lr: 'nan' is not a valid float"),
    (("--tasks", "uda", "--opt", "uda.ratio=0"), "task option uda.ratio must be >= 1, got 0"),
    (("--tasks", "exemplar", "--opt", "exemplar.num_exemplars=0"),
     "task option exemplar.num_exemplars must be >= 1, got 0"),
    (("--opt", "rotation.crop=-3"), "task option rotation.crop must be in [0, 0.5), got -3"),
    (("--opt", "rotation.flip=no"), "task option rotation.flip: 'no' is not a valid bool"),
    (("--opt", "rotation.flip=1"), "task option rotation.flip: 1 is not a valid bool"),
    (("--set", "pretrain_lr=inf"), "setting pretrain_lr: 'inf' is not a valid float"),
    (("--opt", "smallcnn.widths=[0,8,8,8]"), "backbone option smallcnn.widths must be in "
                                             "[1, 4096] (each element)"),
    (("--resolution", "100000"), "resolution 100000 is outside 8..2048 px"),
    (("--split-seeds", "-1"), "seed -1 is negative"),
])
def test_out_of_range_settings_are_one_line_before_anything_runs(fast_run, tmp_path, flag,
                                                                  message):
    status, _, err = fast_run(*flag)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("toml, message", [
    ("settings = 5\n", "settings must be a table"),
    ("[task_options]\nrotation = 3\n", "task_options.rotation must be a table"),
    ('dedup = "no"\n', "dedup must be true or false, not 'no'"),
    ('download = 1\n', "download must be true or false, not 1"),
    ('dataset = ["digits", 7]\n', "datasets: cannot read ['digits', 7] as a list of strs"),
    ("data_dir = 5\n", "data_dir must be a string, not 5"),
    ("seeds = [0, true]\n", "--seeds: cannot read [0, True] as a list of ints"),
    ("[settings]\nsync_bn = \"no\"\n", "setting sync_bn: 'no' is not a valid bool"),
    ("[options.finetune]\nlr = inf\n", "protocol option finetune.lr: inf is not a valid float"),
])
def test_malformed_toml_structure_is_one_line(fast_run, tmp_path, toml, message):
    config = tmp_path / "sweep.toml"
    config.write_text(toml)
    status, _, err = fast_run("--config", str(config))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_bad_record_file_is_skipped_by_report_and_rerun_by_run(cli, fast_run, tmp_path):
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    status, _, err = fast_run(*args)
    assert status == 0, err
    records = tmp_path / "results" / "records"
    victim = sorted(records.glob("*.json"))[0]
    for content in (b"\xff\xfe not utf-8", b"[1, 2, 3]", b'{"schema": 1}', b"{truncated"):
        victim.write_bytes(content)
        status, out, err = cli("report", str(tmp_path / "results"))
        assert status == 0 and "Traceback" not in err, content
        assert f"skipping '{victim}'" in err, content
        status, _, err = fast_run(*args)                  # the bad file is an unfinished cell
        assert status == 0, err
        assert json.loads(victim.read_text())["status"] == "ok", content


def test_two_folders_of_one_name_never_share_records(fast_run, tmp_path):
    """imagefolder:/a/base and imagefolder:/b/base would both be "base" in file names: one
    line in one sweep, and one line when a second sweep points another one at the same --out."""
    from conftest import write_image_folder
    a = write_image_folder(tmp_path / "a" / "base")
    b = write_image_folder(tmp_path / "b" / "base", seed=1)
    args = ("--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear")
    status, _, err = fast_run("--dataset", f"imagefolder:{a},imagefolder:{b}", *args)
    assert status == 2 and "would share the name 'base'" in err
    assert fast_run("--dataset", f"imagefolder:{a}", *args)[0] == 0
    status, _, err = fast_run("--dataset", f"imagefolder:{b}", *args)
    assert status == 2 and "holds results of data set" in err and "another --out" in err


def test_fractions_that_round_alike_keep_their_own_records(cli, fast_run, tmp_path):
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "0.5,0.5000001",
                              "--protocols", "linear")
    assert status == 0, err
    names = sorted(p.name for p in (tmp_path / "results" / "records").glob("*.json"))
    assert len(names) == 4
    assert any("__f0.5__" in n for n in names) and any("__f0.5000001__" in n for n in names)
    status, out, err = cli("report", str(tmp_path / "results"), "--format", "markdown")
    assert "linear 50% (n=1)" in out and "linear 50.00001% (n=1)" in out


def test_too_few_images_per_class_says_how_many_are_needed(fast_run, tmp_path):
    from conftest import write_image_folder
    root = write_image_folder(tmp_path / "tiny", per_class=1)
    status, _, err = fast_run("--dataset", f"imagefolder:{root}", "--fractions", "1.0")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "has 1 training and 0 test images" in err and "3 images" in err
