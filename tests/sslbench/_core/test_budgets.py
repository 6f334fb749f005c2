import numpy as np
import pytest

from sslbench.data import stratified_split
from sslbench._core.budgets import labeled_subset

LABELS = np.repeat(np.arange(4), [50, 30, 15, 5])


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 1.0])
def test_subset_is_stratified(fraction):
    idx = labeled_subset(LABELS, fraction, seed=0)
    counts = np.bincount(LABELS[idx], minlength=4)
    expected = np.maximum(1, np.round(fraction * np.bincount(LABELS)))
    assert counts.tolist() == expected.astype(int).tolist()


def test_subsets_are_nested_for_a_seed():
    fractions = [0.01, 0.1, 0.2, 0.5, 1.0]
    subsets = [set(labeled_subset(LABELS, f, seed=3)) for f in fractions]
    for small, large in zip(subsets, subsets[1:]):
        assert small <= large
    assert subsets[-1] == set(range(len(LABELS)))


def test_deterministic_per_seed_and_different_across_seeds():
    a = labeled_subset(LABELS, 0.2, seed=1)
    assert np.array_equal(a, labeled_subset(LABELS, 0.2, seed=1))
    assert not np.array_equal(a, labeled_subset(LABELS, 0.2, seed=2))


def test_at_least_one_image_per_class_with_a_warning():
    warnings = []
    idx = labeled_subset(LABELS, 0.01, seed=0, warn=warnings.append,
                         class_names=["a", "b", "c", "d"])
    assert set(LABELS[idx]) == {0, 1, 2, 3}
    # 1% of 50 rounds to 0 too, so all four classes are topped up to one image
    assert len(warnings) == 4 and "class 'd'" in warnings[3] and "using 1" in warnings[3]


def test_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        labeled_subset(LABELS, 0.0, seed=0)


def test_validation_split_is_stratified_disjoint_and_seeded():
    rest, held = stratified_split(LABELS, 0.2, seed=0)
    assert set(rest).isdisjoint(held) and len(rest) + len(held) == len(LABELS)
    assert np.bincount(LABELS[held]).tolist() == [10, 6, 3, 1]
    assert np.array_equal(held, stratified_split(LABELS, 0.2, seed=0)[1])


# ------------------------------------------------------------ budgets in labels (sslbench 0.5)
from sslbench._core.budgets import Budget, labeled_split  # noqa: E402
from sslbench.errors import SSLBenchError  # noqa: E402

UNEQUAL = np.repeat(np.arange(5), [400, 250, 120, 60, 30])     # 860 images, 5 classes


def test_labels_per_class_gives_every_class_exactly_k():
    idx = labeled_subset(UNEQUAL, Budget.per_class(20), seed=0)
    assert np.bincount(UNEQUAL[idx]).tolist() == [20] * 5


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_budget_kind_is_nested_in_the_next_for_a_seed(seed):
    """One order per class and seed, a prefix of it per budget: 5/class within 20/class
    within 30/class, and fractions and totals along the same orders."""
    budgets = [Budget.per_class(5), Budget.labels(40), Budget.per_class(20),
               Budget.fraction(0.1), Budget.labels(200), Budget.per_class(30),
               Budget.fraction(0.5), Budget.labels(860)]
    subsets = [set(labeled_subset(UNEQUAL, b, seed).tolist()) for b in budgets]
    sizes = [len(s) for s in subsets]
    assert sizes == [25, 40, 100, 86, 200, 150, 430, 860]
    # nested whenever every class's count is no larger (prefixes of the same orders)
    counts = [np.bincount(UNEQUAL[sorted(s)], minlength=5) for s in subsets]
    for a in range(len(budgets)):
        for b in range(len(budgets)):
            if (counts[a] <= counts[b]).all():
                assert subsets[a] <= subsets[b], (budgets[a], budgets[b])
    assert subsets[-1] == set(range(len(UNEQUAL)))


def test_labels_in_all_are_shared_by_class_size_and_never_shrink_as_the_total_grows():
    """Webster's method one label at a time: proportional, at least one a class, and
    house-monotone (a larger total never takes a label from a class), so totals nest."""
    sizes = np.bincount(UNEQUAL)
    previous = np.zeros(5, dtype=int)
    for total in range(5, 861):
        counts = Budget.labels(total).counts(sizes)
        assert counts.sum() == total and (counts >= 1).all() and (counts <= sizes).all()
        assert (counts >= previous).all(), total
        previous = counts
    counts = Budget.labels(86).counts(sizes)        # 10% of every class, as the fraction
    assert counts.tolist() == [40, 25, 12, 6, 3]
    # equal classes (CIFAR-10): 250 labels is 25 per class
    assert Budget.labels(250).counts([5000] * 10).tolist() == [25] * 10


def test_same_subset_for_the_same_seed_and_another_for_another_seed():
    for budget in (Budget.per_class(10), Budget.labels(77)):
        a = labeled_subset(UNEQUAL, budget, seed=4)
        assert np.array_equal(a, labeled_subset(UNEQUAL, budget, seed=4))
        assert not np.array_equal(a, labeled_subset(UNEQUAL, budget, seed=5))


def test_a_budget_a_class_cannot_meet_is_an_error_naming_the_class():
    with pytest.raises(SSLBenchError, match=r"31/class: class 'e' has only 30 images"):
        labeled_subset(UNEQUAL, Budget.per_class(31), seed=0, class_names=list("abcde"))
    with pytest.raises(SSLBenchError, match="fewer labels than the 5 classes"):
        labeled_subset(UNEQUAL, Budget.labels(4), seed=0)
    with pytest.raises(SSLBenchError, match="more than the 860 images"):
        labeled_subset(UNEQUAL, Budget.labels(861), seed=0)


@pytest.mark.parametrize("per_class, train, val", [(1, 1, 0), (2, 1, 1), (4, 3, 1),
                                                   (20, 16, 4), (30, 24, 6)])
def test_validation_at_tiny_budgets(per_class, train, val):
    """val_share 0.2 of each class's labels: 20/class is 16 to train and 4 to choose with; a
    class with two labels gives one to validation; one label per class leaves none, and the
    protocols' rules fixed in advance apply (tested with the protocols)."""
    warnings = []
    tr, va = labeled_split(UNEQUAL, Budget.per_class(per_class), 3, 0.2, warn=warnings.append)
    assert np.bincount(UNEQUAL[tr], minlength=5).tolist() == [train] * 5
    assert np.bincount(UNEQUAL[va], minlength=5).tolist() == [val] * 5
    assert set(tr).isdisjoint(va)
    assert bool(warnings) == (val == 0)


def test_budgets_read_as_the_literature_writes_them():
    assert [b.label for b in (Budget.fraction(0.1), Budget.per_class(20), Budget.labels(250))] \
        == ["10%", "20/class", "250 labels"]
    assert [b.key for b in (Budget.fraction(0.1), Budget.per_class(20), Budget.labels(250))] \
        == ["0.1", "c20", "n250"]                       # split files' keys, as before 0.5
    assert [b.id_part for b in (Budget.fraction(0.1), Budget.per_class(20))] == ["f0.1", "c20"]
    for bad in (("per_class", 2.5), ("labels", 0), ("fraction", 1.5), ("epochs", 3)):
        with pytest.raises(ValueError):
            Budget(*bad)
    # a record before sslbench 0.5 has only its fraction
    assert Budget.of_record({"fraction": 0.5}) == Budget.fraction(0.5)
    assert Budget.of_record({"budget": Budget.per_class(20).to_json()}) == Budget.per_class(20)
