"""Label-fraction sampling: which training images keep their labels at a given budget.

For one seed, every class's images are put in one random order; the labeled subset at
fraction f takes the first ``round(f * n_c)`` images of class c (at least one). So the subsets
are stratified (each class keeps its share of the pool), nested (the 10% subset contains the
1% subset) and a pure function of (labels, fraction, seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def labeled_subset(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int,
    warn: "callable | None" = None, class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Sorted positions (into ``labels``) of the labeled subset at ``fraction`` for ``seed``.

    ``warn`` is called with a one-line message for each class that the fraction would leave
    without any image (that class then keeps one).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0x5EED])
    chosen: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        order = idx[rng.permutation(len(idx))]
        k = int(round(fraction * len(idx)))
        if k == 0:
            k = 1
            if warn is not None:
                name = class_names[c] if class_names is not None else str(c)
                warn(f"fraction {fraction:g} leaves class {name!r} without a labeled image; "
                     "using 1")
        chosen.append(order[:k])
    return np.sort(np.concatenate(chosen)).astype(np.int64)
