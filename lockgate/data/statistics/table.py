"""Per-table statistics: one accumulator per column, chosen by the column's Arrow type.

A column whose batches disagree on type is reconciled when merged: int with float becomes
float, an all-null batch (Arrow type ``null``) takes the other's type, anything else is a
``DataError`` naming the column, because the statistics of a mixed column mean nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.readers import iter_batches
from lockgate.data.statistics.categorical import StringAccumulator
from lockgate.data.statistics.numeric import NumericAccumulator
from lockgate.data.statistics.temporal import TimestampAccumulator
from lockgate.errors import DataError

__all__ = ["NullAccumulator", "TableStatisticsAccumulator", "column_kind", "compute_statistics"]


class NullAccumulator:
    """A column seen only as all-null so far: it has no type until some value arrives."""

    kind = "null"

    def __init__(self) -> None:
        self.missing = 0

    def update(self, batch: pa.Array | pa.ChunkedArray) -> None:
        self.missing += len(batch)

    def merge(self, other: Self) -> Self:
        self.missing += other.missing
        return self

    def result(self) -> dict[str, Any]:
        return {"type": "null", "count": 0, "missing": self.missing}


ColumnAccumulator = NumericAccumulator | StringAccumulator | TimestampAccumulator | NullAccumulator


def column_kind(dtype: pa.DataType, column: str) -> str:
    """Map an Arrow type to a statistics type: int, float, string, bool, timestamp, null."""
    t = pa.types
    if t.is_dictionary(dtype):
        return column_kind(dtype.value_type, column)
    if t.is_null(dtype):
        return "null"
    if t.is_boolean(dtype):
        return "bool"
    if t.is_integer(dtype):
        return "int"
    if t.is_floating(dtype) or t.is_decimal(dtype):
        return "float"
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return "string"
    if t.is_timestamp(dtype) or t.is_date(dtype):
        return "timestamp"
    raise DataError(
        f"column '{column}' has Arrow type {dtype}, which statistics do not support; "
        "supported are integers, floats, decimals, strings, bools, timestamps and dates",
        hint="cast or drop the column at ingest",
    )


def _new(kind: str) -> ColumnAccumulator:
    if kind in ("int", "float"):
        return NumericAccumulator(kind)  # type: ignore[arg-type]
    if kind in ("string", "bool"):
        return StringAccumulator(kind)  # type: ignore[arg-type]
    if kind == "timestamp":
        return TimestampAccumulator()
    return NullAccumulator()


def _prepare(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.float64())
    return col


def _combine(a: ColumnAccumulator, b: ColumnAccumulator, column: str) -> ColumnAccumulator:
    if a.kind == b.kind or {a.kind, b.kind} == {"int", "float"}:
        return a.merge(b)  # type: ignore[arg-type]
    if isinstance(a, NullAccumulator):
        b.missing += a.missing
        return b
    if isinstance(b, NullAccumulator):
        a.missing += b.missing
        return a
    raise DataError(
        f"column '{column}' is {a.kind} in one batch or shard and {b.kind} in another; "
        "a column must have one type",
        hint="fix the data, or cast the column to one type at ingest",
    )


class TableStatisticsAccumulator:
    """Statistics of every column of a stream of batches; picklable, merge is associative.

    ``merge`` folds ``other`` into self (and may adopt its accumulators): do not use
    ``other`` afterwards.
    """

    kind = "table"

    def __init__(self) -> None:
        self.num_rows = 0
        self.features: dict[str, ColumnAccumulator] = {}
        self.rows_seen: dict[str, int] = {}

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.num_rows += batch.num_rows
        for name in batch.schema.names:
            col = _prepare(batch.column(name))
            kind = column_kind(col.type, name)
            acc = self.features.get(name)
            if acc is not None and acc.kind == kind:
                acc.update(col)
            else:
                fresh = _new(kind)
                fresh.update(col)
                self.features[name] = fresh if acc is None else _combine(acc, fresh, name)
            self.rows_seen[name] = self.rows_seen.get(name, 0) + batch.num_rows

    def merge(self, other: Self) -> Self:
        self.num_rows += other.num_rows
        for name, acc in other.features.items():
            mine = self.features.get(name)
            self.features[name] = acc if mine is None else _combine(mine, acc, name)
            self.rows_seen[name] = self.rows_seen.get(name, 0) + other.rows_seen[name]
        return self

    def result(self) -> dict[str, Any]:
        """``{"num_rows": N, "features": {name: {...}}}``; a column absent from some
        files counts those rows as missing."""
        features: dict[str, dict[str, Any]] = {}
        for name, acc in self.features.items():
            stats = acc.result()
            stats["missing"] += self.num_rows - self.rows_seen[name]
            features[name] = stats
        return {"num_rows": self.num_rows, "features": features}


def compute_statistics(
    paths: Iterable[str | Path] | str | Path, *, batch_size: int = 65_536
) -> dict[str, Any]:
    """Stream every file's batches through one accumulator and return the statistics."""
    return accumulate_files(paths, batch_size=batch_size).result()


def accumulate_files(
    paths: Iterable[str | Path] | str | Path, *, batch_size: int = 65_536
) -> TableStatisticsAccumulator:
    """The accumulator of some files, unread, so that shards can be merged afterwards."""
    if isinstance(paths, str | Path):
        paths = [paths]
    acc = TableStatisticsAccumulator()
    for path in paths:
        for batch in iter_batches(path, batch_size=batch_size):
            acc.update(batch)
    return acc
