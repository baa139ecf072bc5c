"""Weighted sums, sorted cumulative sums and quantiles per (slice, resample), all at once.

The weights are a matrix ``W`` of shape ``(n_rows, n_resamples)`` (a column of ones gives the
point estimate, Poisson columns give resamples). Everything here is a few NumPy/SciPy passes
over ``W``, whatever the number of slices or resamples: a sum per slice is one sparse
matrix product, and AUC or a median per slice comes from one sort of the rows by
``(slice, value)`` done once, then cumulative sums of the sorted weights.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def sum_matrix(
    columns: list[np.ndarray], values: list[np.ndarray], n_cols: int
) -> sparse.csr_matrix:
    """A sparse ``(n_cols, n_rows)`` matrix ``M`` with ``M[columns[b][i], i] = values[b][i]``
    for each block ``b``: ``M @ W`` holds every block's weighted sums per output column."""
    n_rows = columns[0].shape[0] if columns else 0
    rows = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    data = np.concatenate(values) if values else np.zeros(0)
    cols = np.tile(np.arange(n_rows, dtype=np.int64), len(columns))
    return sparse.csr_matrix((data, (rows, cols)), shape=(n_cols, n_rows))


def weighted_sums(matrix: sparse.csc_matrix, weights: np.ndarray) -> np.ndarray:
    """``matrix @ weights`` as a dense ``(n_cols, n_resamples)`` array."""
    return np.asarray(matrix @ weights)


class SortedSlices:
    """The rows sorted by ``(slice, value)``, with the runs of equal values (ties) and the
    first run of every slice, so that weighted counts below a value are cumulative sums."""

    def __init__(
        self,
        codes: np.ndarray,
        value: np.ndarray,
        n_slices: int,
        value_order: np.ndarray | None = None,
    ) -> None:
        """``value_order`` (``np.argsort(value)``, shared by the partitions of one model)
        saves a sort: a stable sort of the slice codes in that order finishes it."""
        if value_order is None:
            value_order = np.argsort(value, kind="stable")
        small = codes[value_order].astype(np.int16 if n_slices < 2**15 else np.int64)
        self.order = value_order[np.argsort(small, kind="stable")]
        sorted_codes = codes[self.order]
        self.sorted_value = value[self.order]
        n = codes.shape[0]
        new_run = np.ones(n, dtype=bool)
        if n:
            new_run[1:] = (np.diff(sorted_codes) != 0) | (np.diff(self.sorted_value) != 0)
        self.run_starts = np.flatnonzero(new_run)
        run_codes = sorted_codes[self.run_starts]
        # every slice of a partition has rows, so each has a first run
        self.slice_first_run = np.searchsorted(run_codes, np.arange(n_slices), side="left")
        self.run_slice = run_codes
        self.slice_starts = np.searchsorted(sorted_codes, np.arange(n_slices), side="left")
        self.n_slices = n_slices

    def run_sums(self, sorted_rows: np.ndarray) -> np.ndarray:
        """Per tie run: the sum of ``sorted_rows`` (rows in sorted order, any trailing dims)."""
        return np.add.reduceat(sorted_rows, self.run_starts, axis=0)

    def below(self, per_run: np.ndarray) -> np.ndarray:
        """Per run: the sum over the earlier runs of the same slice (exclusive cumsum)."""
        cum = np.cumsum(per_run, axis=0)
        cum -= per_run
        return cum - cum[self.slice_first_run][self.run_slice]

    def slice_sums(self, per_run: np.ndarray) -> np.ndarray:
        """Per slice: the sum over its runs."""
        return np.add.reduceat(per_run, self.slice_first_run, axis=0)


def weighted_quantiles(
    groups: SortedSlices, weights: np.ndarray, quantiles: list[float]
) -> np.ndarray:
    """``np.quantile`` (linear) of each slice's values repeated by their weights, for every
    resample at once: shape ``(len(quantiles), n_slices, n_resamples)``, NaN where a slice
    has no weight. With integer weights it equals quantiles of the resampled rows exactly."""
    w = weights[groups.order]
    n, r = w.shape
    cum = np.cumsum(w, axis=0)  # integer-valued: exact
    before = np.zeros((groups.n_slices, r))
    starts = groups.slice_starts
    nonzero = starts > 0
    before[nonzero] = cum[starts[nonzero] - 1]
    total = np.add.reduceat(w, starts, axis=0) if n else np.zeros((groups.n_slices, r))
    q = np.asarray(quantiles, dtype=np.float64)[:, None, None]
    position = q * (total - 1.0)
    lo = np.floor(position)
    frac = position - lo
    hi = np.minimum(lo + 1.0, total - 1.0)
    # one searchsorted over all resamples: shift column j by j * (its max + 1)
    stride = (cum[-1].max() + 1.0) if n else 1.0
    offsets = np.arange(r, dtype=np.float64) * stride
    flat = (cum.T + offsets[:, None]).ravel()
    column_start = np.arange(r, dtype=np.int64) * n

    def at(index: np.ndarray) -> np.ndarray:
        target = before + index + offsets
        pos = np.searchsorted(flat, target, side="right") - column_start
        return groups.sorted_value[np.clip(pos, 0, max(n - 1, 0))]

    a, b = at(lo), at(hi)
    out = a + frac * (b - a)
    out[np.broadcast_to(total < 1.0, out.shape)] = np.nan
    return out
