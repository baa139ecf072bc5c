"""Histograms: from a KLL sketch (numbers) or exact on an aligned grid (times, lengths).

A streaming equal-width histogram needs the range before the data, which a stream does not
give. Numbers therefore take their bucket counts from the KLL sketch's CDF (each count is
off by at most ``rank_error * count``). Timestamps and list lengths are integers, so they
get exact counts instead: values are counted in buckets aligned to multiples of a width
taken from a chain in which each width divides the next; when the buckets in use would
exceed ``FINE_BUCKETS`` the width moves up the chain and buckets merge exactly. At the end
the fine buckets are grouped into at most ``BUCKETS`` equal-width buckets, still exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Self

import numpy as np
from datasketches import kll_doubles_sketch

__all__ = [
    "BUCKETS",
    "LENGTH_WIDTHS",
    "TIME_WIDTHS",
    "AlignedHistogram",
    "equal_mass",
    "equal_width",
    "exact_functions",
    "plain",
    "sketch_functions",
]

#: Buckets in every reported histogram.
BUCKETS = 10
#: Fine buckets an aligned histogram holds at most before it coarsens.
FINE_BUCKETS = 4096
_S = 1_000_000  # microseconds per second
#: Widths (microseconds) for timestamps: 1 us .. 1 s, minutes, hours, days, weeks, 48 weeks.
TIME_WIDTHS: tuple[int, ...] = (
    1, 10, 100, 1000, 10_000, 100_000, _S, 10 * _S, 60 * _S, 600 * _S, 3600 * _S,
    6 * 3600 * _S, 86_400 * _S, 7 * 86_400 * _S, 28 * 86_400 * _S, 336 * 86_400 * _S,
    3360 * 86_400 * _S, 33_600 * 86_400 * _S,
)  # fmt: skip
#: Widths for list lengths: powers of two.
LENGTH_WIDTHS: tuple[int, ...] = tuple(1 << i for i in range(62))


def plain(x: Any) -> Any:
    """A JSON-safe number: Python int/float, non-finite as None."""
    if x is None:
        return None
    if isinstance(x, int | np.integer):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


#: Cumulative count of values at or below each point (points increasing).
Cdf = Callable[[np.ndarray], np.ndarray]
#: Values at normalised ranks (inverted CDF).
QuantileFn = Callable[[list[float]], list[float]]


def _buckets(edges: np.ndarray, cdf: Cdf, n: int) -> list[dict[str, Any]]:
    """Bucket ``i`` holds ``edges[i] < x <= edges[i+1]``; the first also holds ``edges[0]``."""
    cum = np.concatenate([[0], np.asarray(cdf(edges[1:-1]), dtype=np.int64), [n]])
    return [
        {"low": float(a), "high": float(b), "count": int(c)}
        for a, b, c in zip(edges[:-1], edges[1:], np.diff(cum), strict=True)
    ]


def equal_width(cdf: Cdf, lo: float, hi: float, n: int) -> list[dict[str, Any]]:
    """``BUCKETS`` equal-width buckets over [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if lo == hi:
        return [{"low": lo, "high": hi, "count": n}]
    return _buckets(np.linspace(lo, hi, BUCKETS + 1), cdf, n)


def equal_mass(
    quantiles: QuantileFn, cdf: Cdf, lo: float, hi: float, n: int
) -> list[dict[str, Any]]:
    """Buckets between the deciles (fewer when a value holds more than a decile)."""
    edges = np.asarray(quantiles(np.linspace(0.0, 1.0, BUCKETS + 1).tolist()), dtype=np.float64)
    edges[0], edges[-1] = lo, hi
    # np.unique with nothing but the values asks np.ma whether they are masked, which
    # imports numpy.ma (15 ms of a short ``lockgate stats``); asking for counts does not
    edges = np.unique(edges, return_counts=True)[0]
    if len(edges) == 1:
        return [{"low": float(edges[0]), "high": float(edges[0]), "count": n}]
    return _buckets(edges, cdf, n)


def sketch_functions(sketch: kll_doubles_sketch, n: int) -> tuple[QuantileFn, Cdf]:
    """KLL's quantiles and CDF (counts off by at most ``rank_error * n``)."""

    def cdf(points: np.ndarray) -> np.ndarray:
        ranks = np.asarray(sketch.get_cdf(points.tolist(), inclusive=True))[:-1]
        return np.rint(ranks * n)

    def quantiles(ranks: list[float]) -> list[float]:
        return list(sketch.get_quantiles(ranks, inclusive=True))

    return quantiles, cdf


def exact_functions(values: np.ndarray, counts: np.ndarray) -> tuple[QuantileFn, Cdf]:
    """Exact quantiles and CDF of distinct ``values`` with their ``counts``."""
    order = np.argsort(values)
    v, cum = values[order], np.cumsum(counts[order])

    def cdf(points: np.ndarray) -> np.ndarray:
        at = np.searchsorted(v, points, side="right")
        return np.where(at > 0, cum[np.maximum(at - 1, 0)], 0)

    def quantiles(ranks: list[float]) -> list[float]:
        at = np.searchsorted(cum, np.asarray(ranks) * cum[-1], side="left")
        return [float(x) for x in v[np.minimum(at, len(v) - 1)]]

    return quantiles, cdf


class AlignedHistogram:
    """Exact counts of int64 values in buckets aligned to a width from ``widths``."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        self.widths = widths
        self.level = 0
        self.keys = np.zeros(0, np.int64)  # bucket index at the current width
        self.counts = np.zeros(0, np.int64)

    @property
    def width(self) -> int:
        return self.widths[self.level]

    def update(self, values: np.ndarray) -> None:
        if len(values):
            keys = values // self.width
            first, last = int(keys.min()), int(keys.max())
            if last - first < max(len(keys), FINE_BUCKETS):  # counted in one pass, no sort
                counts = np.bincount(keys - first)
                used = np.flatnonzero(counts)
                keys, counts = used.astype(np.int64) + first, counts[used]
            else:
                keys, counts = np.unique(keys, return_counts=True)
            self._add(keys, counts.astype(np.int64), self.level)

    def _add(self, keys: np.ndarray, counts: np.ndarray, level: int) -> None:
        """Fold in bucket ``keys`` counted at width ``widths[level]``."""
        if level > self.level:
            self._coarsen_to(level)
        elif level < self.level:
            keys = keys // (self.width // self.widths[level])
        keys = np.concatenate([self.keys, keys])
        counts = np.concatenate([self.counts, counts])
        while keys.max() - keys.min() >= FINE_BUCKETS and self.level + 1 < len(self.widths):
            keys = keys // (self.widths[self.level + 1] // self.width)
            self.level += 1
        self.keys, inverse = np.unique(keys, return_inverse=True)
        self.counts = np.bincount(inverse, weights=counts).astype(np.int64)

    def merge(self, other: Self) -> Self:
        if len(other.keys):
            self._add(other.keys, other.counts, other.level)
        return self

    def _coarsen_to(self, level: int) -> None:
        self.keys = self.keys // (self.widths[level] // self.width)
        self.level = level

    def buckets(self) -> list[tuple[int, int, int]]:
        """At most ``BUCKETS`` equal-width ``(low, high, count)``; ``high`` is exclusive."""
        if len(self.keys) == 0:
            return []
        first, last = int(self.keys.min()), int(self.keys.max())
        group = -(-(last - first + 1) // BUCKETS)  # fine buckets per reported bucket
        n = -(-(last - first + 1) // group)
        cum = np.bincount((self.keys - first) // group, weights=self.counts, minlength=n)
        w = self.width * group
        lows = [(first * self.width) + i * w for i in range(n)]
        return [(lo, lo + w, int(c)) for lo, c in zip(lows, cum, strict=True)]
