"""Per-table statistics: one accumulator per column, optionally weighted and sliced.

Columns of a batch are updated in parallel threads: Arrow and NumPy release the GIL, so on
two cores the string counting of one column overlaps the KLL updates of another (which
hold it). Slices (``slice_by``) are whole ``TableStatisticsAccumulator``s keyed
``"feature=value"``; a batch is sorted by the slice key once and handed out as zero-copy
slices, so the work per batch is one ``take`` plus one update per slice value present.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.statistics.columns import (
    ColumnAccumulator,
    column_kind,
    combine,
    new_accumulator,
    prepare,
)
from lockgate.errors import ColumnNotFoundError, DataError

__all__ = ["MAX_SLICES", "MAX_TRACKED_SLICES", "MISSING_SLICE", "TableStatisticsAccumulator"]

#: Slices reported per ``slice_by`` feature: those with the most rows.
MAX_SLICES = 100
#: Slice values tracked per feature; rows of values first seen past this are not sliced.
MAX_TRACKED_SLICES = 1000
#: The slice label of rows where the slice feature is missing.
MISSING_SLICE = "<missing>"


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, _cpus()))


def _cpus() -> int:
    """The cores this process may use: a Ray task's share (Ray sets OMP_NUM_THREADS to the
    CPUs the task was given), else the machine's, so shards side by side do not oversubscribe."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else os.cpu_count() or 1


class TableStatisticsAccumulator:
    """Statistics of every column of a stream of batches; picklable, merge is associative.

    ``slice_by`` names categorical features whose values each get their own statistics;
    ``weight`` names a numeric column that weighs each row (missing or NaN weight is 0) and
    is itself left out of the features. ``merge`` folds ``other`` into self (and may adopt
    its accumulators): do not use ``other`` afterwards.
    """

    kind = "table"

    def __init__(self, *, slice_by: list[str] | None = None, weight: str | None = None) -> None:
        if isinstance(slice_by, str):
            raise DataError(
                "The 'slice_by' parameter of TableStatisticsAccumulator must be a list of "
                f"column names. Got {slice_by!r} instead.",
                hint=f"write slice_by=[{slice_by!r}]",
            )
        self.slice_by = list(slice_by or [])
        self.weight = weight
        self.num_rows = 0
        self.weighted_num_rows = 0.0
        self.features: dict[str, ColumnAccumulator] = {}
        self.rows_seen: dict[str, int] = {}
        self.slices: dict[str, TableStatisticsAccumulator] = {}

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        if isinstance(batch, pa.Table):
            for b in batch.to_batches():
                self.update(b)
            return
        self._update_rows(batch)

    def update_group(self, batches: list[pa.RecordBatch]) -> None:
        """``update`` with the batches (of one schema) combined into one, as
        ``compute.coalesce`` combines them. Without slices each column's chunks are
        combined in the column's own thread, not all of them up front in this one."""
        if len(batches) == 1:
            self.update(batches[0])
        elif self.slice_by or self.weight is not None:
            self.update(pa.Table.from_batches(batches).combine_chunks().to_batches()[0])
        else:
            self._update_rows(pa.Table.from_batches(batches))

    def _update_rows(self, batch: pa.RecordBatch | pa.Table) -> None:
        """One update of every column: a table's chunked columns count as one batch."""
        weights = self._weights(batch)
        names = [n for n in batch.schema.names if n != self.weight]
        self.num_rows += batch.num_rows
        for name in names:
            self.rows_seen[name] = self.rows_seen.get(name, 0) + batch.num_rows
        if len(names) > 1 and batch.num_rows >= 4096:
            list(_pool().map(lambda n: self._update_column(n, batch, weights), names))
        else:
            for name in names:
                self._update_column(name, batch, weights)
        if self.slice_by:
            self._update_slices(batch)

    def _weights(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray | None:
        if self.weight is None:
            return None
        if self.weight not in batch.schema.names:
            raise ColumnNotFoundError(self.weight, batch.schema.names, where="the weight column")
        col = prepare(batch.column(self.weight))
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise DataError(
                f"weight column '{self.weight}' has Arrow type {col.type}; a weight must be "
                "a number",
                hint="pass a numeric column as weight, or cast it at ingest",
            )
        w = pc.fill_null(pc.cast(col, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        w = np.nan_to_num(w, nan=0.0)
        if (w < 0).any():
            raise DataError(
                f"weight column '{self.weight}' has negative values (the smallest is "
                f"{w.min()}); weights must be zero or more",
                hint="fix the weights or leave weight unset",
            )
        self.weighted_num_rows += float(w.sum())
        return w

    def _update_column(
        self, name: str, batch: pa.RecordBatch | pa.Table, weights: np.ndarray | None
    ) -> None:
        col = prepare(batch.column(name), strings_encoded=True)
        acc = self.features.get(name)
        if acc is not None and acc.kind == column_kind(col.type, name):
            acc.update(col, weights)
            return
        fresh = new_accumulator(col.type, name, weighted=self.weight is not None)
        fresh.update(col, weights)
        self.features[name] = fresh if acc is None else combine(acc, fresh, name)

    def _update_slices(self, batch: pa.RecordBatch) -> None:
        for feature in self.slice_by:
            if feature not in batch.schema.names:
                raise ColumnNotFoundError(feature, batch.schema.names, where="the slice_by columns")
            keys = pc.cast(prepare(batch.column(feature)), pa.large_string())
            encoded = pc.dictionary_encode(pc.fill_null(keys, MISSING_SLICE))
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            order = np.argsort(codes, kind="stable")
            sizes = np.bincount(codes, minlength=len(encoded.dictionary))
            ordered = batch.take(pa.array(order))
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            tracked = sum(1 for k in self.slices if k.startswith(f"{feature}="))
            for label, start, size in zip(
                encoded.dictionary.to_pylist(), starts, sizes, strict=True
            ):
                key = f"{feature}={label}"
                child = self.slices.get(key)
                if child is None:
                    if size == 0 or tracked >= MAX_TRACKED_SLICES:
                        continue
                    child = self.slices[key] = TableStatisticsAccumulator(weight=self.weight)
                    tracked += 1
                child.update(ordered.slice(int(start), int(size)))

    def merge(self, other: Self) -> Self:
        self.num_rows += other.num_rows
        self.weighted_num_rows += other.weighted_num_rows
        for name, acc in other.features.items():
            mine = self.features.get(name)
            self.features[name] = acc if mine is None else combine(mine, acc, name)
            self.rows_seen[name] = self.rows_seen.get(name, 0) + other.rows_seen[name]
        for key, child in other.slices.items():
            mine_slice = self.slices.get(key)
            self.slices[key] = child if mine_slice is None else mine_slice.merge(child)
        return self

    def result(self) -> dict[str, Any]:
        """``{"num_rows", "features", ...}`` as in docs/architecture.md; a column absent
        from some files counts those rows as missing."""
        features: dict[str, dict[str, Any]] = {}
        for name in self.rows_seen:  # the columns in the order first seen (threads differ)
            acc = self.features.get(name)
            if acc is None:
                continue
            stats = acc.result()
            stats["missing"] += self.num_rows - self.rows_seen[name]
            features[name] = stats
        out: dict[str, Any] = {"num_rows": self.num_rows}
        if self.weight is not None:
            out["weighted_num_rows"] = self.weighted_num_rows
        out["features"] = features
        if self.slice_by:
            out.update(self._slices_result())
        return out

    def _slices_result(self) -> dict[str, Any]:
        slices: dict[str, Any] = {}
        omitted: dict[str, int] = {}
        for feature in self.slice_by:
            mine = [(k, c) for k, c in self.slices.items() if k.startswith(f"{feature}=")]
            mine.sort(key=lambda kc: (-kc[1].num_rows, kc[0]))
            kept = mine[:MAX_SLICES]
            for key, child in kept:
                slices[key] = child.result()
            left = self.num_rows - sum(child.num_rows for _, child in kept)
            if left:
                omitted[feature] = left
        out: dict[str, Any] = {"slices": slices}
        if omitted:
            out["slices_omitted_rows"] = omitted
        return out
