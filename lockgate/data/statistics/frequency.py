"""Counts per value: exact up to a bound, then Misra-Gries counters and a theta sketch.

Up to ``max_distinct`` distinct values every count is exact and so is the distinct count.
Past it, two summaries take over, both mergeable:

* the distinct count comes from a DataSketches theta sketch (``ThetaDistinct``), fed with
  every value seen so far at the switch and with every later value;
* the counts are Misra-Gries counters kept to ``keep`` values: whenever there are more,
  the ``keep+1``-th largest count ``c`` is subtracted from all and those at or below zero
  dropped. Each reported count is then a lower bound, short by at most ``error`` (the sum
  of the ``c``), and ``error <= N / (keep + 1)`` for N rows (Agarwal et al. 2012: the
  bound survives merges). TFDV's top-k uses Misra-Gries too (tfx_bsl).

The counters are an Arrow array of values beside a NumPy array of counts; a batch is
folded in with one ``index_in`` probe, so no step walks rows in Python.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.arrays import bool_array, empty, numeric_array, to_numpy
from lockgate.data.statistics.distinct import ThetaDistinct

__all__ = ["KEEP", "MAX_DISTINCT", "ValueCounts"]

#: Exact counts (and an exact distinct count) for at most this many distinct values.
MAX_DISTINCT = 100_000
#: Misra-Gries counters kept past the bound: a count is short by at most N / 10_001.
KEEP = 10_000


class ValueCounts:
    """Mergeable counts (or summed weights) per value; ``keep=0`` keeps only the distinct count."""

    def __init__(
        self,
        value_type: pa.DataType,
        *,
        max_distinct: int = MAX_DISTINCT,
        keep: int = KEEP,
        weighted: bool = False,
        sketch_distinct: bool = True,
        spill: bool = False,
    ) -> None:
        self.value_type = value_type
        self.max_distinct = max_distinct
        self.keep = keep
        self.weighted = weighted
        self.sketch_distinct = sketch_distinct
        self.spill = spill
        self.values: pa.Array = empty(value_type)
        self.counts = np.zeros(0, np.float64 if weighted else np.int64)
        self.error: float = 0
        self.overflowed = False
        self.theta: ThetaDistinct | None = None
        #: With ``spill``, the exact counts at the moment they overflowed, for the owner to
        #: take (e.g. to seed a quantile sketch) and clear.
        self.spilled: tuple[pa.Array, np.ndarray] | None = None

    @property
    def exact(self) -> bool:
        return not self.overflowed

    def update(self, values: pa.Array, weights: np.ndarray | None = None) -> None:
        """Count the non-null ``values`` (each weighted by ``weights`` when weighted)."""
        if self.overflowed and self.keep == 0:
            if self.theta is not None:
                self.theta.update(values)
            return
        if self.weighted:
            assert weights is not None
            grouped = (
                pa.table({"v": values, "w": pa.array(weights)})
                .filter(pc.is_valid(values))
                .group_by("v")
                .aggregate([("w", "sum")])
            )
            self._add(grouped["v"].combine_chunks(), grouped["w_sum"].to_numpy())
            return
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        # value_counts' keys and counts (in the same order), at less than half its cost
        # for many distinct values: the codes of a dictionary encoding, counted by NumPy
        encoded = pc.dictionary_encode(values)
        codes = encoded.indices
        codes = to_numpy(codes.drop_null() if codes.null_count else codes)
        counts = np.bincount(codes, minlength=len(encoded.dictionary)).astype(np.int64)
        self._add(encoded.dictionary, counts)

    def add_counts(self, keys: pa.Array, counts: np.ndarray) -> None:
        """Count each of the distinct, non-null ``keys`` ``counts`` times (unweighted), as
        ``update`` counts values."""
        if self.overflowed and self.keep == 0:
            if self.theta is not None:
                self.theta.update(keys)
            return
        self._add(keys, counts)

    def _add(self, keys: pa.Array, counts: np.ndarray) -> None:
        """Fold in unique ``keys`` with their ``counts``."""
        if keys.type != self.value_type:
            keys = keys.cast(self.value_type)
        if self.theta is not None:
            self.theta.update(keys)
        if len(self.values) == 0:
            self.values, self.counts = keys, counts.astype(self.counts.dtype)
        else:
            pos = to_numpy(pc.index_in(keys, value_set=self.values), fill=-1)
            seen = pos >= 0
            self.counts[pos[seen]] += counts[seen]
            if not seen.all():
                new = ~seen
                self.values = pa.concat_arrays([self.values, keys.filter(bool_array(new))])
                self.counts = np.concatenate([self.counts, counts[new]])
        if not self.overflowed and len(self.values) > self.max_distinct:
            self._overflow()
        if self.overflowed and len(self.values) > self.keep:
            self._prune()

    def _overflow(self) -> None:
        self.overflowed = True
        if self.sketch_distinct:
            self.theta = ThetaDistinct()
            self.theta.update(self.values)
        if self.spill:
            self.spilled = (self.values, self.counts.copy())

    def _prune(self) -> None:
        """Misra-Gries: subtract the (keep+1)-th largest count, drop what reaches zero."""
        n = len(self.counts)
        if self.keep == 0:
            self.values, self.counts = empty(self.value_type), self.counts[:0]
            return
        c = np.partition(self.counts, n - self.keep - 1)[n - self.keep - 1]
        self.counts = self.counts - c
        kept = self.counts > 0
        self.values, self.counts = self.values.filter(bool_array(kept)), self.counts[kept]
        self.error += c.item()

    def merge(self, other: Self) -> Self:
        if other.overflowed:
            if not self.overflowed:
                self._overflow()
            if self.theta is not None and other.theta is not None:
                self.theta.merge(other.theta)
            self.error += other.error
        if len(other.values):
            self._add(other.values, other.counts)
        return self

    def distinct(self) -> int:
        if self.theta is None:  # exact (a sketch_distinct=False owner does not ask later)
            return len(self.values)
        return max(len(self.values), round(self.theta.estimate()))

    def top(self, k: int) -> list[list[Any]]:
        """The ``k`` largest counts as ``[value, count]``, ties by value; exact while exact."""
        table = pa.table({"value": self.values, "count": numeric_array(self.counts)})
        top = table.sort_by([("count", "descending"), ("value", "ascending")]).slice(0, k)
        cast = float if self.weighted else int
        return [
            [v, cast(c)]
            for v, c in zip(top["value"].to_pylist(), top["count"].to_pylist(), strict=True)
        ]
