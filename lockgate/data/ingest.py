"""Ingest: any source into Parquet examples, split into train and eval, in constant memory.

Batches stream from the reader to one ``ParquetWriter`` per split; the split hash is per
row, so splitting batch by batch gives the same split as splitting the whole table. Bad
rows either stop the ingest with the file, line and column (``bad_rows="error"``), or go
to ``rejected/rejected.parquet`` and are counted in the report (``bad_rows="skip"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lockgate.data.readers import CsvOptions, iter_batches
from lockgate.data.rejects import REJECTED_SCHEMA
from lockgate.data.split import split_table
from lockgate.data.sql import read_sql_batches
from lockgate.errors import ConfigError, DataFileError

__all__ = ["BAD_ROWS", "SPLITS", "IngestReport", "ingest_query", "ingest_to_folder"]

SPLITS = ("train", "eval")
BAD_ROWS = ("error", "skip")
_REASONS_KEPT = 5


@dataclass
class IngestReport:
    """What an ingest wrote: rows per split, rows set aside (and why), columns, warnings."""

    splits: dict[str, int]
    columns: list[str]
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    span: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_to_folder(
    source: str | Path,
    out_dir: str | Path,
    *,
    format: str | None = None,
    csv: CsvOptions | None = None,
    eval_fraction: float = 0.2,
    salt: str = "",
    bad_rows: str = "error",
    batch_size: int = 65_536,
    span: int | None = None,
) -> IngestReport:
    """Stream a CSV, JSON-lines or Parquet source into ``out_dir/{train,eval}/part-0.parquet``."""
    _check_bad_rows(bad_rows)
    sink = _RejectedSink(Path(out_dir) / "rejected")
    on_bad = sink.add if bad_rows == "skip" else None
    batches = iter_batches(
        source, format=format, batch_size=batch_size, csv=csv, on_bad_rows=on_bad
    )
    return _write(batches, Path(out_dir), str(source), eval_fraction, salt, sink, span)


def ingest_query(
    url: str,
    query: str,
    out_dir: str | Path,
    *,
    eval_fraction: float = 0.2,
    salt: str = "",
    batch_size: int = 65_536,
) -> IngestReport:
    """Stream a SQL query's rows into split Parquet examples (a bad value stops it)."""
    sink = _RejectedSink(Path(out_dir) / "rejected")
    batches = read_sql_batches(url, query, batch_size=batch_size)
    return _write(batches, Path(out_dir), f"query {query!r}", eval_fraction, salt, sink, None)


def _check_bad_rows(bad_rows: str) -> None:
    if bad_rows not in BAD_ROWS:
        raise ConfigError(
            f"The 'bad_rows' parameter of ingest must be 'error' or 'skip'. Got {bad_rows!r} "
            "instead.",
            hint="'skip' sets bad rows aside in rejected/rejected.parquet and counts them",
        )


def _write(
    batches: Iterable[pa.RecordBatch],
    out_dir: Path,
    where: str,
    eval_fraction: float,
    salt: str,
    sink: _RejectedSink,
    span: int | None,
) -> IngestReport:
    counts = dict.fromkeys(SPLITS, 0)
    writers: dict[str, pq.ParquetWriter] = {}
    schema: pa.Schema | None = None
    nulls: list[str] = []
    try:
        for batch in batches:
            if not batch.num_rows:  # a source without rows still gives its columns
                continue
            if schema is None:
                nulls = [f.name for f in batch.schema if pa.types.is_null(f.type)]
                schema = _storable(batch.schema)
                for split in SPLITS:
                    (out_dir / split).mkdir(parents=True, exist_ok=True)
                    writers[split] = pq.ParquetWriter(out_dir / split / "part-0.parquet", schema)
            table = pa.Table.from_batches([batch]).cast(schema)
            for split, part in zip(
                SPLITS, split_table(table, eval_fraction=eval_fraction, salt=salt), strict=True
            ):
                if part.num_rows:
                    writers[split].write_table(part)
                    counts[split] += part.num_rows
    finally:
        for writer in writers.values():
            writer.close()
        sink.close()
    if schema is None or sum(counts.values()) == 0:
        aside = f" ({sink.count} bad rows set aside)" if sink.count else ""
        raise DataFileError(
            f"{where} has no rows to ingest{aside}",
            path=where,
            hint="a header-only file or an empty query result is no training data",
        )
    warnings = [
        f"column '{name}' has no value in any row; kept as a string column of nulls"
        for name in nulls
    ]
    return IngestReport(
        splits=counts,
        columns=schema.names,
        rejected=sink.count,
        reasons=sink.reasons,
        warnings=warnings,
        span=span,
    )


def _storable(schema: pa.Schema) -> pa.Schema:
    """The written schema: a column with no value at all is stored as (null) strings."""
    return pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    )


class _RejectedSink:
    """Writes rejected rows as they come, counts them and keeps the first few reasons."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.reasons: list[str] = []
        self._writer: pq.ParquetWriter | None = None

    def add(self, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.folder / "rejected.parquet", REJECTED_SCHEMA)
        self._writer.write_table(rows.cast(REJECTED_SCHEMA))
        self.count += rows.num_rows
        for row in rows.slice(0, _REASONS_KEPT - len(self.reasons)).to_pylist():
            column = f", column '{row['column']}'" if row["column"] else ""
            self.reasons.append(f"line {row['line']}{column}: {row['reason']}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
