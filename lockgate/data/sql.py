"""Rows of a SQL query as Arrow batches, streamed through SQLAlchemy.

The database's cursor is read ``batch_size`` rows at a time (a server-side cursor where the
driver has one), and each chunk turns into Arrow column by column. Column types come from
the driver where it declares them (PostgreSQL), else from the first chunk; every batch has
that one schema, so ingest writes one Parquet schema. URLs in messages hide the password.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from lockgate.errors import DataError, DataFileError

__all__ = ["read_sql_batches", "redact_url"]

# PostgreSQL type OIDs -> Arrow (numeric is read as float64: statistics want numbers).
_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    700: pa.float64(),
    701: pa.float64(),
    1700: pa.float64(),
    19: pa.string(),
    25: pa.string(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also when it does not parse)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _PASSWORD.sub(r"\1***@", url)


def read_sql_batches(url: str, query: str, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
    """Yield the query's rows as batches of at most ``batch_size`` rows, one schema for all."""
    where = f"query {query!r} on {redact_url(url)}"
    try:
        engine = sa.create_engine(url)
    except ImportError as exc:
        from lockgate.metadata.store import missing_driver_error

        raise missing_driver_error(url, exc) from exc
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise DataError(
            f"cannot use the database URL {redact_url(url)}: {exc}",
            hint="a URL looks like sqlite:///data.db or postgresql+psycopg://user@host/db",
        ) from exc
    try:
        with engine.connect() as conn:
            options = conn.execution_options(stream_results=True, yield_per=batch_size)
            with options.execute(sa.text(query)) as result:  # closes a server-side cursor
                names = list(result.keys())
                _check_unique(names, where)
                declared = [_declared(d) for d in (result.cursor.description or [])]
                schema: pa.Schema | None = None
                seen = 0
                for rows in result.partitions(batch_size):
                    arrays = [pa.array(col) for col in zip(*rows, strict=True)]
                    if schema is None:
                        schema = _schema(names, declared, arrays)
                    yield _conform(arrays, schema, where, seen)
                    seen += len(rows)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DataError(
            f"{where} failed: {str(cause).strip().splitlines()[0]}",
            hint="check the query and the connection",
        ) from exc
    finally:
        engine.dispose()


def _declared(description: Sequence[Any]) -> pa.DataType | None:
    code = description[1] if len(description) > 1 else None
    return _PG_TYPES.get(code) if isinstance(code, int) else None


def _schema(
    names: list[str], declared: list[pa.DataType | None], arrays: list[pa.Array]
) -> pa.Schema:
    """Declared types first; else the first chunk's (decimal as float, all-null as string)."""
    fields = []
    for i, (name, arr) in enumerate(zip(names, arrays, strict=True)):
        kind = declared[i] if i < len(declared) else None
        if kind is None:
            kind = arr.type
            if pa.types.is_decimal(kind):
                kind = pa.float64()
            elif pa.types.is_null(kind):
                kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _conform(arrays: list[pa.Array], schema: pa.Schema, where: str, seen: int) -> pa.RecordBatch:
    out = []
    for arr, fld in zip(arrays, schema, strict=True):
        try:
            out.append(arr.cast(fld.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"{where}: column '{fld.name}' changes type after row {seen}: expected "
                f"{fld.type}, got {arr.type} ({exc})",
                hint=f"CAST the column in the query, e.g. CAST({fld.name} AS REAL)",
            ) from exc
    return pa.RecordBatch.from_arrays(out, schema=schema)


def _check_unique(names: list[str], where: str) -> None:
    dups = [name for name, n in Counter(names).items() if n > 1]
    if dups:
        raise DataFileError(
            f"column '{dups[0]}' appears more than once in the result of {where}",
            column=dups[0],
            hint="give the columns distinct names with AS",
        )
