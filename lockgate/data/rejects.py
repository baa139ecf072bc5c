"""Bad rows as data: what a reader hands to ingest when the user chose to set them aside.

A reader that is given an ``on_bad_rows`` callback calls it with a table of this schema
instead of raising; ingest writes those tables to ``rejected/rejected.parquet`` and counts
them, so nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa

__all__ = ["REJECTED_SCHEMA", "OnBadRows", "rejected_rows"]

#: ``line`` is the 1-based line in the file (the row number for SQL), ``column`` the
#: column whose value did not fit (null for a malformed row), ``text`` the raw row.
REJECTED_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("text", pa.string()),
    ]
)

OnBadRows = Callable[[pa.Table], None]


def rejected_rows(
    lines: Sequence[int | None] | pa.Array,
    columns: Sequence[str | None] | pa.Array,
    reasons: Sequence[str] | pa.Array,
    texts: Sequence[str | None] | pa.Array,
) -> pa.Table:
    """A table of rejected rows with the standard schema."""
    values = (lines, columns, reasons, texts)
    arrays = [
        v.cast(f.type) if isinstance(v, pa.Array) else pa.array(v, type=f.type)
        for v, f in zip(values, REJECTED_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=REJECTED_SCHEMA)
