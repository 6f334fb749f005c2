"""Label-fraction sampling: which training images keep their labels at a given budget, and
which of those are held out to make the cell's choices.

For one seed, every class's images are put in one random order; the labeled subset at
fraction f takes the first ``round(f * n_c)`` images of class c (at least one). So the subsets
are stratified (each class keeps its share of the pool), nested (the 10% subset contains the
1% subset) and a pure function of (labels, fraction, seed).

With per-cell validation (the default, ``validation = "labeled"``), a share of each labeled
subset is held out as the cell's validation set: along each class's order, an image is a
validation image when including it raises the class's validation count
``v(k) = round(val_share * k)`` (at least 1 once a class has two labeled images, never all of
them). So validation images come out of the label budget (Oliver et al. 2018, "Realistic
evaluation of deep semi-supervised learning algorithms"), and both the training and the
validation parts stay stratified and nested across fractions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def fraction_key(fraction: float) -> str:
    """A fraction as it appears in file names: ``0.1``, ``1``, and exactly where ``:g`` would
    round (``0.5000001``), so that two fractions never share a record."""
    short = f"{fraction:g}"
    return short if float(short) == fraction else repr(float(fraction))


def percent(fraction: float) -> str:
    """``10%``; as many digits as it takes for two fractions never to read alike."""
    value = fraction * 100
    for digits in range(3, 17):
        text = f"{value:.{digits}g}"
        if abs(float(text) - value) <= 1e-9 * max(1.0, abs(value)):
            return f"{text}%"
    return f"{value!r}%"


def _class_orders(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """Each class's positions in the seed's random order."""
    rng = np.random.default_rng([seed, 0x5EED])
    return [np.flatnonzero(labels == c)[rng.permutation(int((labels == c).sum()))]
            for c in np.unique(labels)]


def _take(n: int, fraction: float) -> int:
    return max(1, int(round(fraction * n)))


def val_count(k: int, share: float) -> int:
    """How many of a class's ``k`` labeled images are held out for validation."""
    if k < 2:
        return 0
    return max(1, min(k - 1, int(round(share * k))))


def labeled_subset(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int,
    warn: Callable[[str], None] | None = None, class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Sorted positions (into ``labels``) of the labeled subset at ``fraction`` for ``seed``.

    ``warn`` is called with a one-line message for each class that the fraction would leave
    without any image (that class then keeps one).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    chosen = []
    for c, order in zip(np.unique(labels), _class_orders(labels, seed)):
        if int(round(fraction * len(order))) == 0 and warn is not None:
            name = class_names[c] if class_names is not None else str(c)
            warn(f"fraction {fraction:g} leaves class {name!r} without a labeled image; "
                 "using 1")
        chosen.append(order[:_take(len(order), fraction)])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def labeled_split(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int, val_share: float,
    warn: Callable[[str], None] | None = None, class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(training positions, validation positions) of the labeled subset at ``fraction``:
    together they are :func:`labeled_subset`; ``val_share`` of each class is validation."""
    labels = np.asarray(labels)
    budget = labeled_subset(labels, fraction, seed, warn, class_names)
    in_budget = np.zeros(len(labels), dtype=bool)
    in_budget[budget] = True
    train, val = [], []
    for c, order in zip(np.unique(labels), _class_orders(labels, seed)):
        order = order[in_budget[order]]
        is_val = np.array([val_count(r + 1, val_share) > val_count(r, val_share)
                           for r in range(len(order))], dtype=bool)
        if not is_val.any() and warn is not None and len(order):
            name = class_names[c] if class_names is not None else str(c)
            warn(f"fraction {fraction:g} gives class {name!r} one labeled image: it has no "
                 "validation image")
        train.append(order[~is_val])
        val.append(order[is_val])
    return (np.sort(np.concatenate(train)).astype(np.int64),
            np.sort(np.concatenate(val)).astype(np.int64))
