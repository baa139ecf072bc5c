"""String and bool columns: counts per value (exact up to a bound), lengths, ranks.

``top_values`` and ``rank_histogram`` come from ``ValueCounts``: exact while the column has
at most 100k distinct values, then Misra-Gries counters whose counts are lower bounds short
by at most N / 10_001; ``distinct`` is then a theta-sketch estimate (``distinct_is_estimate``).
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.arrays import numeric_array, to_numpy
from lockgate.data.statistics.frequency import MAX_DISTINCT, ValueCounts

__all__ = ["RANK_BUCKETS", "TOP_K", "StringAccumulator"]

#: Entries in ``top_values``: enough for schema inference to see a whole small domain.
TOP_K = 50
#: Entries in ``rank_histogram`` (TFDV's is longer; past 100 ranks the counts are noise).
RANK_BUCKETS = 100


class StringAccumulator:
    """Statistics of a string column, or of a bool one (values "true"/"false")."""

    def __init__(
        self,
        kind: Literal["string", "bool"] = "string",
        *,
        max_distinct: int = MAX_DISTINCT,
        weighted: bool = False,
    ) -> None:
        self.kind = kind
        self.count = 0
        self.missing = 0
        self.total_length = 0
        self.counts = ValueCounts(pa.large_string(), max_distinct=max_distinct)
        self.weight = 0.0
        self.weights = (
            ValueCounts(pa.large_string(), max_distinct=max_distinct, weighted=True)
            if weighted
            else None
        )

    def update(self, batch: pa.Array | pa.ChunkedArray, weights: np.ndarray | None = None) -> None:
        if isinstance(batch, pa.ChunkedArray):
            batch = batch.combine_chunks()
        if isinstance(batch, pa.DictionaryArray) and not self._countable(batch, weights):
            batch = pc.cast(batch, batch.type.value_type)
        nulls = batch.null_count
        self.count += len(batch) - nulls
        self.missing += nulls
        if len(batch) == nulls:
            return
        if isinstance(batch, pa.DictionaryArray):
            self._update_encoded(batch)
            return
        if self.kind == "bool":
            batch = pc.cast(batch, pa.large_string())
        else:
            self.total_length += int(pc.sum(pc.utf8_length(batch)).as_py() or 0)
        self.counts.update(batch)
        if self.weights is not None and weights is not None:
            present = to_numpy(batch.is_valid())
            self.weight += float(weights[present].sum())
            self.weights.update(pc.cast(batch, pa.large_string()), weights)

    def _countable(self, batch: pa.DictionaryArray, weights: np.ndarray | None) -> bool:
        """Whether ``_update_encoded`` may count ``batch`` by its codes: unweighted strings,
        a dictionary of distinct values without nulls."""
        values = batch.dictionary
        return (
            self.kind == "string"
            and weights is None
            and self.weights is None
            and values.null_count == 0
            and pc.count_distinct(values).as_py() == len(values)
        )

    def _update_encoded(self, batch: pa.DictionaryArray) -> None:
        """The counts and lengths of a dictionary-encoded batch from its codes: what
        ``update`` finds in the decoded strings, without decoding or hashing them."""
        codes = batch.indices
        codes = to_numpy(codes.drop_null() if codes.null_count else codes)
        counts = np.bincount(codes, minlength=len(batch.dictionary))
        used = np.flatnonzero(counts)
        keys = batch.dictionary.take(numeric_array(used))
        lengths = to_numpy(pc.utf8_length(keys)).astype(np.int64)
        self.total_length += int((lengths * counts[used]).sum())
        self.counts.add_counts(keys, counts[used].astype(np.int64))

    def merge(self, other: Self) -> Self:
        self.count += other.count
        self.missing += other.missing
        self.total_length += other.total_length
        self.counts.merge(other.counts)
        self.weight += other.weight
        if self.weights is not None and other.weights is not None:
            self.weights.merge(other.weights)
        return self

    def result(self) -> dict[str, Any]:
        ranked = self.counts.top(max(TOP_K, RANK_BUCKETS))
        out: dict[str, Any] = {
            "type": self.kind,
            "count": self.count,
            "missing": self.missing,
            "distinct": self.counts.distinct(),
            "distinct_is_estimate": not self.counts.exact,
            "top_values": ranked[:TOP_K],
            "rank_histogram": [
                {"rank": i, "label": v, "count": c}
                for i, (v, c) in enumerate(ranked[:RANK_BUCKETS])
            ],
        }
        if self.kind == "string":
            out["avg_length"] = self.total_length / self.count if self.count else None
        if self.weights is not None:
            out["weighted"] = {"count": self.weight, "top_values": self.weights.top(TOP_K)}
        return out
