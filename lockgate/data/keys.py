"""Duplicate keys, counted exactly on the data.

Statistics hold an exact distinct count only for one column with few values; a key is
often several columns, or millions of values. This counts it with polars on the key
columns alone (the rest of each batch is dropped as it arrives), so memory is the key
columns, not the table. Pass the result to ``find_anomalies(..., duplicate_keys=n)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from lockgate.errors import ColumnNotFoundError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["find_duplicate_keys"]


def find_duplicate_keys(
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch] | pl.DataFrame,
    key: Sequence[str],
) -> int:
    """Rows whose key repeats an earlier row's: rows minus distinct keys.

    A row with a null in any key column has no key and is not counted (a required key
    column reports its nulls as ``unexpected_null``).
    """
    import polars as pl

    columns = list(key)
    if isinstance(data, pl.DataFrame):
        _check(columns, data.columns)
        frame = data.select(columns)
    else:
        batches: Iterable[pa.Table | pa.RecordBatch] = (
            [data] if isinstance(data, pa.Table | pa.RecordBatch) else data
        )
        parts: list[pa.Table] = []
        for batch in batches:
            _check(columns, batch.schema.names)
            table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            parts.append(table.select(columns))
        if not parts:
            return 0
        frame = pl.from_arrow(pa.concat_tables(parts, promote_options="permissive"))  # type: ignore[assignment]
    frame = frame.drop_nulls()
    return frame.height - frame.n_unique()


def _check(columns: list[str], names: Sequence[str]) -> None:
    for column in columns:
        if column not in names:
            raise ColumnNotFoundError(column, names, where="the data checked for duplicate keys")
