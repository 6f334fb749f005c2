"""Paired statistics for comparing two rows of a leaderboard.

A task and the scratch baseline (or two tasks) are evaluated on the same seeds: the same
initialisation, the same labeled subset, the same test images. So they are compared paired:

* over seeds: the per-seed differences of test accuracy, their mean with a 95% confidence
  interval from Student's t, and the paired t-test (:func:`paired_t`). This counts training
  noise (initialisation, batch order, the labeled subset), not test-set noise: every seed is
  scored on the same test images;
* over seeds and test images: a paired, two-level bootstrap (:func:`paired_bootstrap`): the
  test images are resampled (once for all seeds that share them) and so are the seeds, and the
  mean difference recomputed, so that both sources of noise are counted. Its p-value is the
  two-sided percentile p-value;
* over many comparisons: Holm's step-down correction (:func:`holm`) keeps the chance of any
  false claim among a table's comparisons at 5%.

A difference is called significant when both tests reject at 5% after Holm's correction.
Everything here is deterministic (the bootstrap's generator is seeded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
BOOTSTRAP_SAMPLES = 10_000


@dataclass
class PairedResult:
    """One paired comparison of A against B (differences are A - B, in points)."""

    n: int                      # paired seeds
    mean: float                 # mean difference over seeds
    ci_low: float               # 95% t interval of the mean difference
    ci_high: float
    p_t: float                  # paired t-test, two-sided (nan with fewer than 2 seeds)
    p_boot: float               # two-level bootstrap over seeds and test images (nan: no data)
    boot_low: float = math.nan  # 95% bootstrap interval
    boot_high: float = math.nan
    p_t_holm: float = math.nan  # after Holm's correction over the comparison's family
    p_boot_holm: float = math.nan

    @property
    def tested(self) -> bool:
        """Whether there are seeds enough to test at all: a paired test over seeds needs
        two differences (with one there is no spread, so no interval and no p-value)."""
        return self.n >= MIN_SEEDS

    @property
    def significant(self) -> bool:
        """Both tests reject at :data:`ALPHA` after Holm's correction."""
        return self.tested and (self.p_t_holm < ALPHA) and (self.p_boot_holm < ALPHA)


# a paired test over seeds needs two of them
MIN_SEEDS = 2


def paired_t(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, low, high, p) of paired differences: Student's t interval and two-sided test.
    With one difference nothing can be said of its spread: no interval and no test (nan,
    which reports show as "—", never as an infinite interval); with zero spread the interval
    is the point and p is 0 (or 1 when the mean is 0)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if n < MIN_SEEDS:
        return mean, math.nan, math.nan, math.nan
    sd = float(d.std(ddof=1))
    if sd == 0:
        return mean, mean, mean, (1.0 if mean == 0 else 0.0)
    se = sd / math.sqrt(n)
    # imported here: scipy.stats takes 1-2 s to import, and a one-seed table needs no test
    from scipy.stats import t as student_t
    q = float(student_t.ppf(0.5 + level / 2, n - 1))
    p = float(2 * student_t.sf(abs(mean) / se, n - 1))
    return mean, mean - q * se, mean + q * se, p


def paired_bootstrap(diffs: Sequence[np.ndarray], groups: Sequence[object] | None = None,
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, low, high, p) of the mean difference, by a two-level bootstrap.

    ``diffs`` holds one array per seed (replicate): the per-test-image difference of
    correctness, A minus B, in {-1, 0, 1}. Replicates in the same ``groups`` entry were scored
    on the same test images (the same train/test split; by default all of them), so each
    bootstrap sample draws the test images once per group, as a sample from the population of
    images, and applies that draw to every seed of the group; it also draws the seeds with
    replacement. The statistic is the mean over the drawn seeds of the mean over the drawn
    images (in points). p is the two-sided percentile p-value: twice the smaller share of
    samples on either side of 0 (at least 1/``samples``)."""
    arrays = [np.asarray(d, dtype=np.float64) for d in diffs]
    keep = [i for i, a in enumerate(arrays) if len(a)]
    if not keep:
        return math.nan, math.nan, math.nan, math.nan
    arrays = [arrays[i] for i in keep]
    groups = [0] * len(arrays) if groups is None else [list(groups)[i] for i in keep]
    rng = np.random.default_rng(seed)
    r = len(arrays)
    observed = 100 * float(np.mean([a.mean() for a in arrays]))
    means = np.empty((r, samples))                 # per replicate and sample: mean over images
    for g in dict.fromkeys(groups):
        members = [i for i, x in enumerate(groups) if x == g]
        stacked = np.stack([arrays[i] for i in members])                 # (R_g, N)
        n = stacked.shape[1]
        for start in range(0, samples, 1000):
            stop = min(samples, start + 1000)
            counts = rng.multinomial(n, np.full(n, 1 / n), size=stop - start)   # (b, N)
            means[members, start:stop] = stacked @ counts.T / n
    which = rng.integers(0, r, size=(samples, r))          # replicates drawn per sample
    stat = 100 * means[which, np.arange(samples)[:, None]].mean(1)
    low, high = np.quantile(stat, [0.5 - level / 2, 0.5 + level / 2])
    tail = min((stat <= 0).mean(), (stat >= 0).mean())
    p = min(1.0, max(2 * tail, 1 / samples))
    return observed, float(low), float(high), float(p)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (nan stays nan and is not counted)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def correctness_differences(a: dict, b: dict) -> np.ndarray | None:
    """Per-test-image correctness of record ``a`` minus that of record ``b`` (both must hold
    ``metrics.test_correct``, a string of 0/1 over the same test images), or None."""
    ca = (a.get("metrics") or {}).get("test_correct")
    cb = (b.get("metrics") or {}).get("test_correct")
    if not ca or not cb or len(ca) != len(cb):
        return None
    return (np.frombuffer(ca.encode(), np.uint8).astype(np.int8)
            - np.frombuffer(cb.encode(), np.uint8).astype(np.int8))


def pairs_of(a: Sequence[dict], b: Sequence[dict]) -> list[tuple[dict, dict]]:
    """The records of ``a`` and ``b`` paired by (seed, split seed)."""
    key = lambda r: (r["seed"], r.get("split_seed", 0))  # noqa: E731
    bs = {key(r): r for r in b}
    return [(r, bs[key(r)]) for r in a if key(r) in bs]


def compare(a: Sequence[dict], b: Sequence[dict]) -> PairedResult | None:
    """Compare the records ``a`` against ``b``, paired by (seed, split seed); None when no
    pair exists. Accuracies in points."""
    pairs = pairs_of(a, b)
    if not pairs:
        return None
    diffs = [100 * (x["metrics"]["test_accuracy"] - y["metrics"]["test_accuracy"])
             for x, y in pairs]
    mean, low, high, p_t = paired_t(diffs)
    per_image = [correctness_differences(x, y) for x, y in pairs]
    if len(pairs) < MIN_SEEDS or any(d is None for d in per_image):
        # one seed: the bootstrap would resample test images only, which says nothing of
        # the seed-to-seed variation that dominates here; not tested, as the t-test
        boot = (math.nan,) * 4
    else:   # seeds of one train/test split share their test images
        boot = paired_bootstrap(per_image, groups=[x.get("split_seed", 0) for x, _ in pairs])
    return PairedResult(n=len(pairs), mean=mean, ci_low=low, ci_high=high, p_t=p_t,
                        p_boot=boot[3], boot_low=boot[1], boot_high=boot[2])


def correct_family(results: Sequence[PairedResult | None]) -> None:
    """Fill in Holm-adjusted p-values over a family of comparisons, in place. Comparisons
    that cannot be tested (one seed) are not in the family."""
    present = [r for r in results if r is not None and r.tested]
    for attr in ("p_t", "p_boot"):
        for r, adj in zip(present, holm([getattr(r, attr) for r in present])):
            setattr(r, f"{attr}_holm", adj)


POWER = 0.8


def detectable_gain(comparisons: Sequence[Sequence[tuple[dict, dict]]], family: int,
                    power: float = POWER) -> float:
    """The smallest true gain (points) that one column's tests would call significant with
    probability ``power``, at the first step of Holm's correction over ``family``
    comparisons (level ALPHA / family, two-sided); nan when no comparison has two seeds.

    ``comparisons`` holds, for each task compared with scratch in the column, its record
    pairs (task, scratch) by seed. Two sources of noise, as the two tests count them:

    * the seeds' spread: the standard deviation of the per-seed differences, pooled over the
      column's comparisons, over the square root of the number of seeds (n, the median of
      the column's); the paired t-test sees only this, with n - 1 degrees of freedom;
    * the test set's size: the variance of a per-image difference of correctness (images
      where exactly one of the two is right count) over the N test images, which averaging
      over seeds does not reduce (every seed is scored on the same images); the bootstrap
      adds it to the first.

    Both tests must reject, so the larger of the two is returned: for the t-test, the
    noncentrality at which Student's noncentral t exceeds the critical value with
    probability ``power``, times se_seeds (exact: with few seeds the textbook
    (t_{1-a/2} + t_power) x se promises power it does not have); for the bootstrap,
    (z_{1-a/2} + z_power) x sqrt(se_seeds^2 + se_test^2)."""
    squares, dof, sizes, test_var = 0.0, 0, [], []
    for pairs in comparisons:
        d = np.array([100 * (x["metrics"]["test_accuracy"] - y["metrics"]["test_accuracy"])
                      for x, y in pairs])
        if len(d) < MIN_SEEDS:
            continue
        squares += float(((d - d.mean()) ** 2).sum())
        dof += len(d) - 1
        sizes.append(len(d))
        for x, y in pairs:
            per_image = correctness_differences(x, y)
            if per_image is not None and len(per_image):
                test_var.append(float(per_image.astype(np.float64).var()) / len(per_image))
    if not sizes or family < 1:
        return math.nan
    # imported here, past the one-seed exit: scipy costs a second of every report's start
    from scipy.optimize import brentq
    from scipy.stats import chi2, norm, t as student_t
    n = int(np.median(sizes))
    se_seeds = math.sqrt(squares / dof / n)
    se_test = 100 * math.sqrt(float(np.mean(test_var))) if test_var else 0.0
    level = ALPHA / family
    critical = float(student_t.ppf(1 - level / 2, n - 1))
    # P(|T'| > critical) for noncentral T' = (Z + delta) / sqrt(V / dof), V ~ chi2(dof),
    # averaged over 2,000 quantiles of V (scipy's nct returns nan at the noncentralities
    # that few seeds at a strict level need)
    dof_t = n - 1
    v = chi2.ppf((np.arange(2000) + 0.5) / 2000, dof_t)
    scale = critical * np.sqrt(v / dof_t)
    delta = brentq(lambda nc: float(np.mean(norm.cdf(nc - scale) + norm.cdf(-nc - scale)))
                   - power, 0.0, 10.0 * critical + 10.0)
    by_t = delta * se_seeds
    by_boot = (float(norm.ppf(1 - level / 2)) + float(norm.ppf(power))) \
        * math.sqrt(se_seeds ** 2 + se_test ** 2)
    return max(by_t, by_boot)
