"""Poisson bootstrap weights and percentile intervals.

TFMA's method: instead of drawing n rows with replacement, every row of every resample gets
an independent Poisson(1) weight, so a resample is a weight column and every metric becomes a
weighted sum or a weighted sort, computed for many resamples at once. Resample ``r``'s
weights depend only on ``(seed, r)`` and the number of rows, so every model scored with the
same seed gets the same weights: the candidate's and the baseline's samples are paired.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np

#: rows x resamples held at once; bounds memory at 1M rows x 200 resamples
CHUNK_ELEMENTS = 4_000_000


@cache
def _poisson_thresholds() -> np.ndarray:
    """P(X <= j) for X ~ Poisson(1), scaled to 2**32: a uniform 32-bit draw ``u`` has
    weight ``searchsorted(thresholds, u, 'right')``, exact to 2**-32."""
    j = np.arange(20, dtype=np.float64)
    factorial = np.cumprod(np.concatenate([[1.0], j[1:]]))
    cdf = np.cumsum(np.exp(-1.0) / factorial)
    return np.minimum(np.round(cdf * 2.0**32), 2.0**32 - 1).astype(np.uint32)


_AMBIGUOUS = 255


@cache
def _bucket_table() -> np.ndarray:
    """The weight of every draw sharing its top 16 bits, or ``_AMBIGUOUS`` for the few
    buckets a threshold cuts through: one table look-up instead of a search per draw."""
    thresholds = _poisson_thresholds()
    start = np.arange(2**16, dtype=np.uint64) << np.uint64(16)
    lo = np.searchsorted(thresholds, start, side="right")
    hi = np.searchsorted(thresholds, start + np.uint64(2**16 - 1), side="right")
    return np.where(lo == hi, lo, _AMBIGUOUS).astype(np.uint8)


def resample_weights(n_rows: int, resamples: range, seed: int) -> np.ndarray:
    """Poisson(1) weights of shape ``(n_rows, len(resamples))``, float64, column ``j`` being
    resample ``resamples[j]`` (seeded by ``(seed, r)``, whatever the chunk). The loop only
    seeds one generator per resample; every metric then takes the whole block at once."""
    draws = np.empty((len(resamples), n_rows), dtype=np.uint32)
    for j, r in enumerate(resamples):
        draws[j] = np.random.default_rng([seed, r]).integers(0, 2**32, n_rows, dtype=np.uint32)
    counts = _bucket_table()[draws >> np.uint32(16)]
    ambiguous = counts == _AMBIGUOUS
    counts[ambiguous] = np.searchsorted(_poisson_thresholds(), draws[ambiguous], side="right")
    weights = np.empty((n_rows, len(resamples)), dtype=np.float64)
    weights[...] = counts.T
    return weights


def resample_chunks(n_rows: int, n_resamples: int) -> Iterator[range]:
    """Consecutive ranges of resamples whose weights fit in ``CHUNK_ELEMENTS``."""
    size = max(1, min(n_resamples, CHUNK_ELEMENTS // max(n_rows, 1)))
    for start in range(0, n_resamples, size):
        yield range(start, min(start + size, n_resamples))
