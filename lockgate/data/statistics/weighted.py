"""Moments and weighted quantiles that merge across shards.

``Moments`` merges mean and variance with Chan et al.'s parallel formula (weights allowed),
so shards give the same numbers as one pass up to float rounding.

``WeightedQuantiles`` exists because DataSketches' Python API has no weighted update (KLL,
REQ and t-digest take one weight per item, always 1). It is a small deterministic summary:
(value, weight) pairs are buffered; when more than ``16 * SIZE`` are held they are sorted
and replaced by ``SIZE`` points of equal weight ``W / SIZE`` taken at evenly spaced
cumulative weights. One such compaction moves any weighted rank by less than
``W / SIZE``; ``error`` adds these up, so ``rank_error = error / W`` is a hard bound (not a
probabilistic one) on the normalised weighted rank of every reported quantile.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

__all__ = ["SIZE", "Moments", "WeightedQuantiles"]

#: Points kept by a compaction of the weighted-quantile summary.
SIZE = 32_768


class Moments:
    """Total weight, mean and sum of squared deviations (``m2``) of a stream of numbers."""

    def __init__(self) -> None:
        self.weight = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: np.ndarray, w: np.ndarray | None = None) -> None:
        other = Moments()
        if w is None:
            if len(x) == 0:
                return
            other.weight = float(len(x))
            other.mean = float(x.mean())
            other.m2 = float(np.square(x - other.mean).sum())
        else:
            total = float(w.sum())
            if total <= 0:
                return
            other.weight = total
            other.mean = float(np.dot(w, x) / total)
            other.m2 = float(np.dot(w, np.square(x - other.mean)))
        self.merge(other)

    def merge(self, other: Self) -> Self:
        if other.weight == 0:
            return self
        n = self.weight + other.weight
        delta = other.mean - self.mean
        self.mean += delta * other.weight / n
        self.m2 += other.m2 + delta * delta * self.weight * other.weight / n
        self.weight = n
        return self

    def std(self) -> float | None:
        """Population standard deviation (numpy's ``ddof=0``), None when empty."""
        return float(np.sqrt(self.m2 / self.weight)) if self.weight else None


class WeightedQuantiles:
    """Weighted quantiles with a deterministic rank-error bound; see the module docstring."""

    def __init__(self) -> None:
        self.values = np.zeros(0)
        self.weights = np.zeros(0)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_n = 0
        self.error = 0.0

    def update(self, x: np.ndarray, w: np.ndarray) -> None:
        positive = w > 0
        self.pending.append((x[positive], w[positive]))
        self.pending_n += int(positive.sum())
        if self.pending_n + len(self.values) > 16 * SIZE:
            self._compact()

    def _gather(self) -> None:
        if self.pending:
            self.values = np.concatenate([self.values, *(x for x, _ in self.pending)])
            self.weights = np.concatenate([self.weights, *(w for _, w in self.pending)])
            self.pending, self.pending_n = [], 0
        order = np.argsort(self.values, kind="stable")
        self.values, self.weights = self.values[order], self.weights[order]

    def _compact(self) -> None:
        self._gather()
        if len(self.values) <= SIZE:
            return
        cum = np.cumsum(self.weights)
        total = float(cum[-1])
        targets = (np.arange(SIZE) + 0.5) * (total / SIZE)
        picked = np.minimum(np.searchsorted(cum, targets, side="left"), len(cum) - 1)
        self.values = self.values[picked]
        self.weights = np.full(SIZE, total / SIZE)
        self.error += total / SIZE

    def merge(self, other: Self) -> Self:
        self.pending.append((other.values, other.weights))
        self.pending.extend(other.pending)
        self.pending_n += len(other.values) + other.pending_n
        self.error += other.error
        if self.pending_n + len(self.values) > 16 * SIZE:
            self._compact()
        return self

    def quantiles(self, ranks: list[float]) -> tuple[list[float], float] | None:
        """Inverted-CDF weighted quantiles and the normalised rank error; None when empty."""
        self._gather()
        if len(self.values) == 0:
            return None
        cum = np.cumsum(self.weights)
        total = float(cum[-1])
        at = np.searchsorted(cum, np.asarray(ranks) * total, side="left")
        picked = self.values[np.minimum(at, len(cum) - 1)]
        return [float(v) for v in picked], self.error / total

    def __getstate__(self) -> dict[str, Any]:
        self._gather()
        return self.__dict__.copy()
