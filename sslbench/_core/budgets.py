"""Label budgets: which training images keep their labels, and which of those are held out
to make the cell's choices.

A budget is given in one of three units, as the literature states them:

* a **fraction** of each class (``--fractions 0.1``, "10%"): ``round(f * n_c)`` images of
  class c, at least one;
* **labels per class** (``--labels-per-class 20``, "20/class"): RotNet's K (Gidaris et al.
  2018, the semi-supervised CIFAR-10 figure): ``k`` images of every class;
* **labels in all** (``--labels 250``, "250 labels"): the semi-supervised benchmarks' budget
  (CIFAR-10 with 40, 250, 4,000 labels): shared out over the classes in proportion to their
  sizes, at least one each.

For one seed, every class's images are put in one random order, and every budget takes a
prefix of each class's order. So all budgets are stratified and nested across units alike
(the 100/class subset contains the 20/class one, and "250 labels" on CIFAR-10 is the
25/class subset) and a pure function of (labels, budget, seed). The shares of "labels in all"
come from Webster's method applied one label at a time (each next label goes to the class
with the largest ``n_c / (2 k_c + 1)``), which is house-monotone: a larger total never gives
a class fewer labels, so the subsets stay nested.

With per-cell validation (the default, ``validation = "labeled"``), a share of each labeled
subset is held out as the cell's validation set: along each class's order, an image is a
validation image when including it raises the class's validation count
``v(k) = round(val_share * k)`` (at least 1 once a class has two labeled images, never all of
them). So validation images come out of the label budget (Oliver et al. 2018, "Realistic
evaluation of deep semi-supervised learning algorithms"), and both the training and the
validation parts stay stratified and nested across budgets. At 20 labels per class and the
default share of 0.2 that is 16 to train and 4 to choose with per class; at one label per
class there is nothing to choose with, and each protocol's rule fixed in advance applies
(docs/evaluation.md).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SSLBenchError

FRACTION, PER_CLASS, LABELS = "fraction", "per_class", "labels"
KINDS = (FRACTION, PER_CLASS, LABELS)
# the flag that gives each kind, for messages
FLAGS = {FRACTION: "--fractions", PER_CLASS: "--labels-per-class", LABELS: "--labels"}


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


@dataclass(frozen=True)
class Budget:
    """One label budget: ``kind`` (``fraction``, ``per_class`` or ``labels``) and its
    ``value`` (a fraction in (0, 1], or a whole number of labels)."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown budget kind {self.kind!r}")
        if self.kind == FRACTION and not 0 < self.value <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.value}")
        if self.kind != FRACTION and (self.value != int(self.value) or self.value < 1):
            raise ValueError(f"{self.kind} must be a whole number >= 1, got {self.value}")

    @classmethod
    def fraction(cls, value: float) -> Budget:
        return cls(FRACTION, float(value))

    @classmethod
    def per_class(cls, value: int) -> Budget:
        return cls(PER_CLASS, int(value))

    @classmethod
    def labels(cls, value: int) -> Budget:
        return cls(LABELS, int(value))

    @property
    def key(self) -> str:
        """In split files: ``0.1`` (as before sslbench 0.5), ``c20``, ``n250``."""
        if self.kind == FRACTION:
            return fraction_key(self.value)
        return f"{'c' if self.kind == PER_CLASS else 'n'}{int(self.value)}"

    @property
    def id_part(self) -> str:
        """In cell ids: ``f0.1``, ``c20``, ``n250``."""
        return f"f{self.key}" if self.kind == FRACTION else self.key

    @property
    def label(self) -> str:
        """As reports print it: ``10%``, ``20/class``, ``250 labels``."""
        if self.kind == FRACTION:
            return percent(self.value)
        if self.kind == PER_CLASS:
            return f"{int(self.value)}/class"
        return f"{int(self.value)} labels"

    @property
    def order(self) -> tuple[int, float]:
        """Table order: fractions, then labels per class, then labels in all; by size."""
        return KINDS.index(self.kind), float(self.value)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind,
                "value": float(self.value) if self.kind == FRACTION else int(self.value),
                "label": self.label}

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> Budget:
        """A record's budget (:class:`sslbench.record.Record`, or the JSON object of one
        before it is loaded: records before sslbench 0.5 hold only ``fraction``)."""
        given = record.get("budget")
        if isinstance(given, dict):
            return cls(given["kind"], given["value"])
        return cls.fraction(record["fraction"])

    def counts(self, sizes: Sequence[int], class_names: Sequence[str] | None = None,
               warn: Callable[[str], None] | None = None) -> np.ndarray:
        """How many labeled images each class gets, from the classes' pool sizes. A budget
        that cannot be met (more per class than a class holds, fewer labels than classes,
        more than the pool) is an :class:`SSLBenchError` naming the class or the sizes."""
        sizes = np.asarray(sizes, dtype=np.int64)
        name = (lambda c: class_names[c]) if class_names is not None else str  # noqa: E731
        if self.kind == FRACTION:
            rounded = np.round(self.value * sizes).astype(np.int64)
            for c in np.flatnonzero(rounded == 0):
                if warn is not None:
                    warn(f"fraction {self.value:g} leaves class {name(c)!r} without a "
                         "labeled image; using 1")
            return np.minimum(np.maximum(1, rounded), sizes)
        k = int(self.value)
        if self.kind == PER_CLASS:
            short = np.flatnonzero(sizes < k)
            if len(short):
                c = int(short[0])
                raise SSLBenchError(
                    f"{self.label}: class {name(c)!r} has only {sizes[c]} images that may be "
                    f"labeled (--labels-per-class must not exceed the smallest class)")
            return np.full(len(sizes), k, dtype=np.int64)
        if k < len(sizes):
            raise SSLBenchError(f"{self.label}: fewer labels than the {len(sizes)} classes "
                                "(each class needs at least one)")
        if k > int(sizes.sum()):
            raise SSLBenchError(f"{self.label}: more than the {int(sizes.sum())} images that "
                                "may be labeled")
        return _webster(sizes, k)


def _webster(sizes: np.ndarray, total: int) -> np.ndarray:
    """One label to every class, then each next one to the class with the largest
    ``n_c / (2 k_c + 1)`` that is not full (ties: the lower class index)."""
    counts = np.ones(len(sizes), dtype=np.int64)
    heap = [(-s / 3.0, c) for c, s in enumerate(sizes.tolist()) if s > 1]
    heapq.heapify(heap)
    for _ in range(total - len(sizes)):
        _, c = heapq.heappop(heap)
        counts[c] += 1
        if counts[c] < sizes[c]:
            heapq.heappush(heap, (-sizes[c] / (2 * counts[c] + 1), c))
    return counts


def as_budget(budget: Budget | float) -> Budget:
    """A :class:`Budget`; a bare number is a fraction (the API before sslbench 0.5)."""
    return budget if isinstance(budget, Budget) else Budget.fraction(float(budget))


def _class_orders(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """Each class's positions in the seed's random order."""
    rng = np.random.default_rng([seed, 0x5EED])
    return [np.flatnonzero(labels == c)[rng.permutation(int((labels == c).sum()))]
            for c in np.unique(labels)]


def val_count(k: int, share: float) -> int:
    """How many of a class's ``k`` labeled images are held out for validation."""
    if k < 2:
        return 0
    return max(1, min(k - 1, int(round(share * k))))


def _prefixes(labels: np.ndarray, budget: Budget, seed: int,
              warn: Callable[[str], None] | None, class_names: Sequence[str] | None
              ) -> list[np.ndarray]:
    """Each class's labeled images at ``budget``: the prefix of its seeded order."""
    orders = _class_orders(labels, seed)
    names = None if class_names is None else [class_names[c] for c in np.unique(labels)]
    counts = budget.counts([len(o) for o in orders], names, warn)
    return [order[:k] for order, k in zip(orders, counts)]


def labeled_subset(
    labels: Sequence[int] | np.ndarray, budget: Budget | float, seed: int,
    warn: Callable[[str], None] | None = None, class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Sorted positions (into ``labels``) of the labeled subset at ``budget`` for ``seed``.

    ``warn`` is called with a one-line message for each class that a fraction would leave
    without any image (that class then keeps one).
    """
    chosen = _prefixes(np.asarray(labels), as_budget(budget), seed, warn, class_names)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def labeled_split(
    labels: Sequence[int] | np.ndarray, budget: Budget | float, seed: int, val_share: float,
    warn: Callable[[str], None] | None = None, class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(training positions, validation positions) of the labeled subset at ``budget``:
    together they are :func:`labeled_subset`; ``val_share`` of each class is validation."""
    budget = as_budget(budget)
    labels = np.asarray(labels)
    train, val = [], []
    for c, prefix in zip(np.unique(labels),
                         _prefixes(labels, budget, seed, warn, class_names)):
        is_val = np.array([val_count(r + 1, val_share) > val_count(r, val_share)
                           for r in range(len(prefix))], dtype=bool)
        if not is_val.any() and warn is not None and len(prefix):
            name = class_names[c] if class_names is not None else str(c)
            warn(f"{budget.label} gives class {name!r} one labeled image: it has no "
                 "validation image")
        train.append(prefix[~is_val])
        val.append(prefix[is_val])
    return (np.sort(np.concatenate(train)).astype(np.int64),
            np.sort(np.concatenate(val)).astype(np.int64))
