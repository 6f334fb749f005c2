"""Paired statistics and what the leaderboard claims from them: a winner is bold only when it
is significantly better than the runner-up, and gains over scratch within noise say so."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sslbench.leaderboard import DOWN, UP, Leaderboard
from sslbench._core.stats import compare, holm, paired_bootstrap, paired_t

N_TEST = 400


def record(task, seed, correct: np.ndarray, protocol="finetune", fraction=0.1, converged=True):
    return {"schema": 1, "dataset": "toy", "backbone": "smallcnn", "task": task,
            "protocol": protocol, "fraction": fraction, "seed": seed, "split_seed": 0,
            "status": "ok", "preset": "quick", "error": None, "n_train": 40, "n_val": 10,
            "data": {"n_test": N_TEST},
            "metrics": {"test_accuracy": float(correct.mean()),
                        "test_correct": "".join("1" if c else "0" for c in correct)},
            "details": {"converged": converged},
            "settings": {"resolution": 32, "pretrain_epochs": 15, "finetune_epochs": 60,
                         "finetune_min_steps": 500, "validation": "labeled", "val_share": 0.2}}


def rows(task, accuracies, rng, base=None, flip=0.0):
    """Records whose test images are right with the given accuracy per seed; with ``base``,
    the task's correctness is the baseline's with a share ``flip`` of images changed."""
    out = []
    for seed, acc in enumerate(accuracies):
        if base is None:
            correct = rng.random(N_TEST) < acc
        else:
            correct = np.array([c == "1" for c in base[seed]["metrics"]["test_correct"]])
            change = rng.random(N_TEST) < flip
            correct = np.where(change, rng.random(N_TEST) < acc, correct)
        out.append(record(task, seed, correct))
    return out


def test_t_interval_matches_a_hand_computation():
    # differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776445
    mean, low, high, p = paired_t([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3 and low == pytest.approx(3 - half, abs=1e-5)
    assert high == pytest.approx(3 + half, abs=1e-5)
    assert p == pytest.approx(scipy_stats.ttest_1samp([1, 2, 3, 4, 5], 0).pvalue)


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, float("nan")])[0] == 0.5


def test_bootstrap_counts_test_set_noise():
    """Half a point (the same 2 of 400 test images) on every seed is certain for a t-test over
    seeds, and noise for the bootstrap over test images: another 400 images would not have
    held those two."""
    same = [np.r_[np.ones(2), np.zeros(N_TEST - 2)]] * 5
    mean, low, high, p = paired_bootstrap(same)
    assert paired_t([0.5] * 5)[3] == 0.0
    assert mean == pytest.approx(0.5) and low <= 0 <= high and p > 0.05


def test_bootstrap_resamples_shared_test_images_together():
    """Seeds scored on one test split share one draw of images; seeds of different splits
    draw their own (the interval is wider when they must agree on the same images)."""
    rng = np.random.default_rng(0)
    d = [np.where(rng.random(N_TEST) < 0.05, 1, 0) * np.where(rng.random(N_TEST) < 0.5, 1, -1)
         for _ in range(4)]
    shared = paired_bootstrap([d[0]] * 4)
    own = paired_bootstrap([d[0]] * 4, groups=[0, 1, 2, 3])
    assert shared[2] - shared[1] > own[2] - own[1]


def two_row_board(gain: float, flip: float, seed: int = 0) -> Leaderboard:
    rng = np.random.default_rng(seed)
    scratch = rows("scratch", [0.60, 0.62, 0.58, 0.61, 0.59], rng)
    task = rows("rotation", [a + gain for a in (0.60, 0.62, 0.58, 0.61, 0.59)], rng,
                base=scratch, flip=flip)
    return Leaderboard(scratch + task)


def test_a_difference_within_noise_is_not_bold_and_is_marked_not_significant():
    board = two_row_board(gain=0.005, flip=0.05)
    table = board.display(lambda s: f"<{s}>")
    cell = table.loc["rotation", "finetune 10% (n=5)"]
    assert "<" not in cell and UP not in cell and DOWN not in cell
    assert not any("<" in str(v) for v in table.values.flatten())   # no winner at all
    gains = board.gains("toy", "smallcnn")
    assert gains["verdict"].tolist() == ["n.s."]


def test_a_clear_difference_is_bold_and_significant():
    board = two_row_board(gain=0.15, flip=0.6)
    table = board.display(lambda s: f"<{s}>")
    cell = table.loc["rotation", "finetune 10% (n=5)"]
    assert cell.startswith("<") and UP in cell
    summary = board.summary().set_index("task")
    assert bool(summary.loc["rotation", "significant"]) and bool(summary.loc["rotation", "winner"])
    assert summary.loc["rotation", "p_boot_holm"] < 0.05 and summary.loc["rotation", "p_t_holm"] < 0.05
    r = compare([x for x in board.records if x["task"] == "rotation"],
                [x for x in board.records if x["task"] == "scratch"])
    assert r.n == 5 and r.ci_low > 0 and r.boot_low > 0


def test_n_is_in_the_column_header_and_short_cells_say_so():
    board = two_row_board(gain=0.0, flip=0.0)
    board = Leaderboard(board.records[:-1])                 # rotation lost one seed
    table = board.display()
    assert "finetune 10% (n=5)" in table.columns
    assert table.loc["rotation", "finetune 10% (n=5)"].endswith("[n=4]")


def test_unconverged_seeds_are_marked_in_every_format():
    from sslbench._core.plugins import PluginHost
    board = two_row_board(gain=0.0, flip=0.0)
    board.records[0]["details"]["converged"] = False         # scratch seed 0
    board = Leaderboard(board.records)
    assert "†1" in board.display().loc["scratch", "finetune 10% (n=5)"]
    host = PluginHost.from_environment()
    for fmt in ("table", "markdown", "html"):
        assert "†1" in host.report_format(fmt).render(board)
    assert "dagger" in host.report_format("latex").render(board)
    csv = host.report_format("csv").render(board)
    assert "n_unconverged" in csv.splitlines()[0]


def test_every_format_carries_the_statistics():
    from sslbench._core.plugins import PluginHost
    board = two_row_board(gain=0.15, flip=0.6)
    host = PluginHost.from_environment()
    md = host.report_format("markdown").render(board)
    assert "Gains over scratch" in md and "p (bootstrap, Holm)" in md and UP in md
    assert "**" in md                                      # the significant winner
    assert "textbf" in host.report_format("latex").render(board)
    assert "<b>" in host.report_format("html").render(board)
    header = host.report_format("csv").render(board).splitlines()[0]
    for column in ("gain", "gain_ci_low", "p_t_holm", "p_boot_holm", "significant", "winner"):
        assert column in header.split(",")
    assert "p_boot" in header and "n.s." in host.report_format("markdown").render(
        two_row_board(gain=0.005, flip=0.05))


def test_reaching_scratch_at_100_percent_needs_a_converged_reference():
    from sslbench.leaderboard import Publication
    rng = np.random.default_rng(0)
    recs = []
    for fraction, acc in ((0.5, 0.70), (1.0, 0.65)):
        for r in rows("rotation", [acc] * 3, rng):
            recs.append({**r, "fraction": fraction})
    for r in rows("scratch", [0.66] * 3, rng):
        recs.append({**r, "fraction": 1.0})
    eff = Publication(Leaderboard(recs)).label_efficiency().set_index("task")
    assert eff.loc["rotation", "reaches scratch@100% at"] == "50%"
    recs[-1] = {**recs[-1], "details": {"converged": False}}
    eff = Publication(Leaderboard(recs)).label_efficiency().set_index("task")
    assert "not converged" in eff.loc["rotation", "reaches scratch@100% at"]


def test_resampled_splits_are_replicates_of_their_own(fast_run, image_folder, tmp_path):
    """--split-seeds 0,1: a second train/test split, its cells, ids and split files apart;
    the leaderboard pairs cells within a split and counts both splits in n."""
    import json
    status, out, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--tasks",
                                "rotation", "--fractions", "1.0", "--protocols", "linear",
                                "--split-seeds", "0,1")
    assert status == 0, err
    records = {p.name: json.loads(p.read_text())
               for p in (tmp_path / "results" / "records").glob("*.json")}
    assert len(records) == 4 and sum(name.endswith("__p1.json") for name in records) == 2
    splits = {p.name for p in (tmp_path / "results" / "splits").glob("*.json")}
    assert {"imgs.json", "imgs-p1.json", "imgs-seed0.json", "imgs-p1-seed0.json"} <= splits
    tests = [json.loads((tmp_path / "results" / "splits" / f).read_text())["provenance"]
             ["test_files"] for f in ("imgs.json", "imgs-p1.json")]
    assert tests[0] != tests[1]
    words = " ".join(out.split())          # the caption wraps where the path's length puts it
    assert "linear 100% (n=2)" in words and "2 train/test splits" in words


def _pairs(diffs, scratch=0.5):
    """Record pairs (task, scratch) by seed with these accuracy differences (points)."""
    return [({"seed": i, "metrics": {"test_accuracy": scratch + d / 100}},
             {"seed": i, "metrics": {"test_accuracy": scratch}}) for i, d in enumerate(diffs)]


def test_a_true_gain_of_the_detectable_size_is_found_about_80_percent_of_the_time():
    """What the leaderboard's "detectable gain" row claims, checked by simulation: columns
    whose true gain is the detectable gain are called significant by the paired t-test at
    the Holm level about 80% of the time, and half of it far less often."""
    from scipy.stats import ttest_1samp

    from sslbench._core.stats import ALPHA, detectable_gain
    rng = np.random.default_rng(0)
    family, n, sd = 4, 5, 1.0
    # the column's seeds' spread, standardised: the pooled sd is exactly the true one
    spread = [(d - d.mean()) / d.std(ddof=1) * sd for d in rng.normal(0, 1, (family, n))]
    gain = detectable_gain([_pairs(d) for d in spread], family)
    assert 1.5 < gain < 3.5
    for true, low, high in ((gain, 0.76, 0.84), (gain / 2, 0.0, 0.3)):
        hits = sum(ttest_1samp(rng.normal(true, sd, n), 0).pvalue < ALPHA / family
                   for _ in range(3000))
        assert low < hits / 3000 < high, (true, hits / 3000)


def test_the_test_set_size_bounds_what_is_detectable_however_many_seeds():
    """Every seed is scored on the same test images: with no seed-to-seed spread at all, the
    per-image noise of 1,000 images (a third of them discordant) still leaves a floor."""
    from sslbench._core.stats import detectable_gain
    rng = np.random.default_rng(1)
    pairs = []
    for seed in range(5):
        a = rng.integers(0, 2, 1000)
        b = np.where(rng.random(1000) < 1 / 3, 1 - a, a)
        acc = 0.5
        pairs.append(({"seed": seed, "metrics": {"test_accuracy": acc, "test_correct":
                                                 "".join(map(str, a))}},
                      {"seed": seed, "metrics": {"test_accuracy": acc, "test_correct":
                                                 "".join(map(str, b))}}))
    floor = detectable_gain([pairs], family=1)
    # (1.96 + 0.84) x 100 x sqrt((1/3) / 1000) = 5.1 points
    assert abs(floor - 5.1) < 0.3
    assert math.isnan(detectable_gain([_pairs([1.0])], family=1))     # one seed: nothing
