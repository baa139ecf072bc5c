"""List columns: how many values each row holds, and the statistics of all the values.

``value_count`` has exact min, max and mean of the list lengths and an exact histogram of
them; ``values`` is the statistics of the flattened values, by their own type (a list of
lists nests). A null list is missing; an empty list is present with zero values.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.statistics.histograms import LENGTH_WIDTHS, AlignedHistogram

__all__ = ["ListAccumulator"]


class ListAccumulator:
    """Statistics of a list (or large/fixed-size list) column."""

    kind = "list"

    def __init__(self, *, weighted: bool = False) -> None:
        self.weighted = weighted
        self.count = 0
        self.missing = 0
        self.weight = 0.0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None
        self.lengths = AlignedHistogram(LENGTH_WIDTHS)
        self.values: Any = None  # the flattened values' accumulator, typed when first seen

    def update(self, batch: pa.Array | pa.ChunkedArray, weights: np.ndarray | None = None) -> None:
        from lockgate.data.statistics.columns import combine, new_accumulator, prepare

        if isinstance(batch, pa.ChunkedArray):
            batch = batch.combine_chunks()
        nulls = batch.null_count
        self.count += len(batch) - nulls
        self.missing += nulls
        if len(batch) == nulls:
            return
        present = batch.is_valid().to_numpy(zero_copy_only=False)
        if weights is not None:
            self.weight += float(weights[present].sum())
        lengths = pc.list_value_length(batch).to_numpy(zero_copy_only=False)[present]
        lengths = lengths.astype(np.int64)
        self.total += int(lengths.sum())
        lo, hi = int(lengths.min()), int(lengths.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.lengths.update(lengths)
        flat = prepare(pc.list_flatten(batch))
        child = new_accumulator(flat.type, "values", weighted=False)
        child.update(flat)
        self.values = child if self.values is None else combine(self.values, child, "values")

    def merge(self, other: Self) -> Self:
        from lockgate.data.statistics.columns import combine

        self.count += other.count
        self.missing += other.missing
        self.weight += other.weight
        self.total += other.total
        for attr, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if theirs is not None:
                setattr(self, attr, theirs if mine is None else pick(mine, theirs))
        self.lengths.merge(other.lengths)
        if other.values is not None:
            self.values = (
                other.values
                if self.values is None
                else combine(self.values, other.values, "values")
            )
        return self

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "list",
            "count": self.count,
            "missing": self.missing,
            "value_count": {
                "min": self.min,
                "max": self.max,
                "mean": self.total / self.count if self.count else None,
                "histogram": [
                    {"low": lo, "high": hi, "count": c} for lo, hi, c in self.lengths.buckets()
                ],
            },
        }
        if self.values is not None:
            out["values"] = self.values.result()
        if self.weighted:
            out["weighted"] = {"count": self.weight}
        return out
