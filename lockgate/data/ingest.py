"""Ingest: any source into Parquet examples, split into train and eval, in constant memory.

Batches stream from the reader to one ``ParquetWriter`` per split; the split hash is per
row, so splitting batch by batch gives the same split as splitting the whole table. Bad
rows either stop the ingest with the file, line and column (``bad_rows="error"``), or go
to ``rejected/rejected.parquet`` and are counted in the report (``bad_rows="skip"``).
With ``bad_rows="keep"`` a value that does not parse as its column's type is a finding
about the data, not a reason to stop reading it (TFDV reports a type change as an
anomaly): the row is kept with that value as null, and ``invalid_values.json`` records per
column how many there were and the first few with their lines, for the statistics and
the data gate to report. A malformed row (wrong field count) still stops the ingest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lockgate.data.readers import CsvOptions, iter_batches
from lockgate.data.rejects import REJECTED_SCHEMA, OnBadRows
from lockgate.data.split import split_table
from lockgate.data.sql import read_sql_batches
from lockgate.errors import ConfigError, DataFileError

__all__ = [
    "BAD_ROWS",
    "INVALID_VALUES_FILE",
    "SPLITS",
    "IngestReport",
    "InvalidValues",
    "ingest_query",
    "ingest_to_folder",
]

SPLITS = ("train", "eval")
BAD_ROWS = ("keep", "skip", "error")
#: In an Examples folder: {column: {"expected", "count", "examples": [{"line", "value"}]}}.
INVALID_VALUES_FILE = "invalid_values.json"
_REASONS_KEPT = 5
_EXAMPLES_KEPT = 5
_REASON = re.compile(r"expected (\S+), got '(.*)'$", re.DOTALL)
#: Arrow's type names in the readers' reasons -> the schema's.
_TYPE_NAMES = {"int64": "int", "double": "float", "string": "string", "bool": "bool"}


@dataclass
class IngestReport:
    """What an ingest wrote: rows per split, rows set aside (and why), columns, warnings."""

    splits: dict[str, int]
    columns: list[str]
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    span: int | None = None
    invalid_values: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    invalid = InvalidValues(str(source))
    on_bad: OnBadRows | None = None
    if bad_rows != "error":
        # keep: the CSV reader keeps the rows it hands over when the callback returns True
        on_bad = sink.add if bad_rows == "skip" else cast(OnBadRows, invalid)
    batches = iter_batches(
        source, format=format, batch_size=batch_size, csv=csv, on_bad_rows=on_bad
    )
    report = _write(batches, Path(out_dir), str(source), eval_fraction, salt, sink, span)
    if invalid.columns:
        report.invalid_values = invalid.to_dict()
        text = json.dumps(report.invalid_values, indent=1)
        (Path(out_dir) / INVALID_VALUES_FILE).write_text(text, encoding="utf-8")
        report.warnings.append(invalid.summary())
    return report


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
            f"The 'bad_rows' parameter of ingest must be 'keep', 'skip' or 'error'. Got "
            f"{bad_rows!r} instead.",
            hint="'keep' keeps a value that does not parse as null and reports it to the "
            "data gate; 'skip' sets such rows aside in rejected/rejected.parquet and counts "
            "them; 'error' stops at the first",
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


class InvalidValues:
    """An ``on_bad_rows`` that keeps the rows (their bad values read as nulls) and records,
    per column, how many values did not parse and the first few with their lines. A
    malformed row (no column: the wrong number of fields) has nothing to keep: it stops the
    read as ``bad_rows="error"`` would."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.columns: dict[str, dict[str, Any]] = {}

    def __call__(self, rows: pa.Table) -> bool:
        malformed = rows.filter(pc.is_null(rows.column("column")))
        if malformed.num_rows:
            first = malformed.slice(0, 1).to_pylist()[0]
            raise DataFileError(
                f"malformed row in {self.where} at line {first['line']}: {first['reason']}: "
                f"{(first['text'] or '')[:200]!r}",
                path=self.where,
                row=first["line"],
                hint="fix or quote that line (a comma inside a value needs double quotes), "
                "or pass bad_rows='skip' to set such rows aside",
            )
        for column in pc.unique(rows.column("column")).to_pylist():
            picked = rows.filter(pc.equal(rows.column("column"), column))
            entry = self.columns.setdefault(column, {"expected": None, "count": 0, "examples": []})
            entry["count"] += picked.num_rows
            room = _EXAMPLES_KEPT - len(entry["examples"])
            for row in picked.slice(0, max(room, 0)).to_pylist():
                expected, value = _parse_reason(row["reason"])
                entry["expected"] = entry["expected"] or expected
                entry["examples"].append({"line": row["line"], "value": value})
        return True

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dict(entry) for name, entry in self.columns.items()}

    def summary(self) -> str:
        parts = [
            f"{entry['count']} in column '{name}' (expected {entry['expected']})"
            for name, entry in self.columns.items()
        ]
        return (
            f"values that do not parse as their column's type, kept as nulls for the data "
            f"gate: {', '.join(parts)}"
        )


def _parse_reason(reason: str) -> tuple[str | None, str]:
    """("int", "two") from a reader's reason "expected int64, got 'two'"."""
    match = _REASON.match(reason or "")
    if match is None:
        return None, reason
    return _TYPE_NAMES.get(match.group(1), match.group(1)), match.group(2)
