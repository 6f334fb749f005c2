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
