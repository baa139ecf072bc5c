"""Columns lockgate reads: flat values and lists of them, not structs, maps or unions.

Statistics, schemas and the split hash know numbers, strings, bools, timestamps and lists of
those (a feature with several values per row). A struct or a map column would fail deep
inside a step with Arrow's words (``Unsupported cast from struct<...>``), so the readers
refuse it up front, naming the file, the column and its type, and every command that reads
data (``stats``, ``validate``, ingest) says the same thing.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lockgate.errors import DataFileError

__all__ = ["check_flat"]


def check_flat(schema: pa.Schema, path: str | Path) -> None:
    """Raise ``DataFileError`` for the first column of ``schema`` whose type is nested
    (a struct, a map, a union, or a list of those)."""
    for field in schema:
        if _nested(field.type):
            if pa.types.is_struct(field.type):
                fix = (
                    "flatten it into one column per field before ingest (pyarrow's "
                    f"Table.flatten() makes '{field.name}.<field>' columns), or drop it"
                )
            elif pa.types.is_map(field.type):
                fix = "make a column of each key (or a list of keys and one of values), or drop it"
            else:
                fix = "write its values as flat columns, or drop it"
            raise DataFileError(
                f"column '{field.name}' of {path} has the nested type {field.type}; lockgate "
                "reads flat columns (numbers, strings, bools, timestamps) and lists of them",
                path=str(path),
                column=field.name,
                hint=fix,
            )


def _nested(dtype: pa.DataType) -> bool:
    t = pa.types
    if t.is_dictionary(dtype):
        return _nested(dtype.value_type)
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        return _nested(dtype.value_type)
    if t.is_list_view(dtype) or t.is_large_list_view(dtype):
        return _nested(dtype.value_type)
    return t.is_struct(dtype) or t.is_map(dtype) or t.is_union(dtype)
