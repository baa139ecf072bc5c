"""Which accumulator a column gets, by its Arrow type, and how two of them combine.

A column whose batches disagree on type is reconciled when merged: int with float becomes
float, an all-null batch (Arrow type ``null``) takes the other's type, anything else is a
``DataError`` naming the column, because the statistics of a mixed column mean nothing.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.statistics.categorical import StringAccumulator
from lockgate.data.statistics.lists import ListAccumulator
from lockgate.data.statistics.numeric import NumericAccumulator
from lockgate.data.statistics.temporal import TimestampAccumulator
from lockgate.errors import DataError

__all__ = [
    "ColumnAccumulator",
    "NullAccumulator",
    "column_kind",
    "combine",
    "new_accumulator",
    "prepare",
]


class NullAccumulator:
    """A column seen only as all-null so far: it has no type until some value arrives."""

    kind = "null"

    def __init__(self) -> None:
        self.missing = 0

    def update(self, batch: pa.Array | pa.ChunkedArray, weights: np.ndarray | None = None) -> None:
        self.missing += len(batch)

    def merge(self, other: Self) -> Self:
        self.missing += other.missing
        return self

    def result(self) -> dict[str, Any]:
        return {"type": "null", "count": 0, "missing": self.missing}


ColumnAccumulator = (
    NumericAccumulator
    | StringAccumulator
    | TimestampAccumulator
    | ListAccumulator
    | NullAccumulator
)


def column_kind(dtype: pa.DataType, column: str) -> str:
    """Map an Arrow type to a statistics type: int, float, string, bool, timestamp, list, null."""
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
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        return "list"
    raise DataError(
        f"column '{column}' has Arrow type {dtype}, which statistics do not support; "
        "supported are integers, floats, decimals, strings, bools, timestamps, dates and lists",
        hint="cast or drop the column at ingest",
    )


def new_accumulator(dtype: pa.DataType, column: str, *, weighted: bool) -> ColumnAccumulator:
    kind = column_kind(dtype, column)
    if kind in ("int", "float"):
        return NumericAccumulator(kind, weighted=weighted)  # type: ignore[arg-type]
    if kind in ("string", "bool"):
        return StringAccumulator(kind, weighted=weighted)  # type: ignore[arg-type]
    if kind == "timestamp":
        return TimestampAccumulator(weighted=weighted)
    if kind == "list":
        return ListAccumulator(weighted=weighted)
    return NullAccumulator()


def prepare(
    col: pa.Array | pa.ChunkedArray, *, strings_encoded: bool = False
) -> pa.Array | pa.ChunkedArray:
    """Decode dictionaries (but, with ``strings_encoded``, a dictionary array of strings,
    which ``StringAccumulator`` counts by its codes), decimals as float64, string views as
    strings."""
    t = col.type
    if pa.types.is_dictionary(t) and not (
        strings_encoded and isinstance(col, pa.DictionaryArray) and pa.types.is_string(t.value_type)
    ):
        col = pc.cast(col, col.type.value_type)
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.float64())
    if pa.types.is_string_view(col.type):
        col = pc.cast(col, pa.large_string())
    return col


def combine(a: ColumnAccumulator, b: ColumnAccumulator, column: str) -> ColumnAccumulator:
    """``a`` merged with ``b`` (either may be adopted); a type clash is a ``DataError``."""
    kinds = {_kind(a), _kind(b)}
    if len(kinds) == 1 or kinds == {"int", "float"}:
        return a.merge(b)  # type: ignore[arg-type]
    if isinstance(a, NullAccumulator):
        b.missing += a.missing
        return b
    if isinstance(b, NullAccumulator):
        a.missing += b.missing
        return a
    raise DataError(
        f"column '{column}' is {_kind(a)} in one batch or shard and {_kind(b)} in another; "
        "a column must have one type",
        hint="fix the data, or cast the column to one type at ingest",
    )


def _kind(acc: ColumnAccumulator) -> str:
    return str(acc.kind)
