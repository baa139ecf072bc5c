"""Read CSV, Parquet and JSON-lines files into Arrow, with errors that say where.

Every failure a user can meet (missing file, empty file, a row with the wrong number of
fields, bytes that are not UTF-8, a duplicated column) becomes a ``DataFileError`` that
names the file and, where Arrow lets us know it, the 1-based line, so the fix is one
editor jump away.
"""

from __future__ import annotations

import mmap
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lockgate.errors import DataFileError

__all__ = ["FORMATS", "NULL_VALUES", "infer_format", "iter_batches", "read_table"]

#: Strings that mean "missing" in a CSV file.
NULL_VALUES: tuple[str, ...] = ("NA", "", "null", "NaN", "N/A")

#: File suffix -> format name.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

_JSON_ROW = re.compile(r" in row (\d+)")


def infer_format(path: str | Path, format: str | None = None) -> str:
    """Return the format of ``path``: ``format`` if given, else from its suffix.

    A folder is read as Parquet (a folder of part files is what writers produce).
    """
    p = Path(path)
    if format is not None:
        if format not in set(FORMATS.values()):
            raise DataFileError(
                f"unknown format '{format}' for {p}; formats are {sorted(set(FORMATS.values()))}",
                path=str(p),
            )
        return format
    if p.is_dir():
        return "parquet"
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DataFileError(
            f"cannot tell the format of {p} from its suffix '{p.suffix}'; "
            f"suffixes are {sorted(FORMATS)}",
            path=str(p),
            hint="rename the file or pass format='csv' | 'parquet' | 'jsonl'",
        )
    return fmt


def read_table(path: str | Path, *, format: str | None = None) -> pa.Table:
    """Read one file (or a folder of Parquet files) into an Arrow table.

    A CSV file with a header and no rows gives an empty table with those columns (typed
    ``null``): an empty span is legal, and the statistics then report zero rows.
    """
    p = _existing(path)
    fmt = infer_format(p, format)
    if fmt == "csv":
        table = _read_csv(p)
    elif fmt == "jsonl":
        table = _read_jsonl(p)
    else:
        table = _read_parquet(p)
    _check_columns(table.schema, p)
    return table


def iter_batches(
    path: str | Path, *, format: str | None = None, batch_size: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of at most ``batch_size`` rows.

    Parquet is streamed row group by row group. CSV and JSON lines are read whole first:
    Arrow's streaming CSV reader infers types from the first block only and fails on a
    later block, whereas the whole-file reader unifies them. Ingest converts big text
    files to Parquet once, so later passes stream.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r} instead")
    p = _existing(path)
    fmt = infer_format(p, format)
    if fmt != "parquet":
        yield from read_table(p, format=fmt).to_batches(max_chunksize=batch_size)
        return
    try:
        dataset = pads.dataset(str(p), format="parquet")
        _check_columns(dataset.schema, p)
        yield from dataset.to_batches(batch_size=batch_size)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"cannot read Parquet {p}: {exc}", path=str(p)) from exc


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataFileError(
            f"data file {p} does not exist", path=str(p), hint="check the path and the span"
        )
    return p


def _check_columns(schema: pa.Schema, path: Path) -> None:
    dups = [name for name, n in Counter(schema.names).items() if n > 1]
    if dups:
        raise DataFileError(
            f"column '{dups[0]}' appears more than once in {path}; column names must be unique",
            path=str(path),
            column=dups[0],
            hint="rename the duplicated column in the header",
        )


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"cannot read Parquet {path}: {exc}", path=str(path)) from exc


def _read_jsonl(path: Path) -> pa.Table:
    if path.is_file() and path.stat().st_size == 0:
        raise DataFileError(f"data file {path} is empty", path=str(path))
    try:
        return pajson.read_json(path)
    except pa.ArrowInvalid as exc:
        match = _JSON_ROW.search(str(exc))
        line = int(match.group(1)) + 1 if match else None
        where = f" at line {line}" if line else ""
        raise DataFileError(
            f"malformed JSON line in {path}{where}: {exc}", path=str(path), row=line
        ) from exc


def _read_csv(path: Path) -> pa.Table:
    convert = pacsv.ConvertOptions(null_values=list(NULL_VALUES), strings_can_be_null=True)
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from exc
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
    if binary:
        raise _not_utf8(path, binary[0])
    return table


def _csv_error(path: Path, exc: pa.ArrowInvalid) -> DataFileError:
    text = str(exc)
    if text.startswith("Empty CSV file"):
        return DataFileError(f"data file {path} is empty (not even a header)", path=str(path))
    if "UTF8" in text or "utf8" in text.lower():
        return _not_utf8(path, None)
    if "CSV parse error" not in text:
        return DataFileError(f"cannot read CSV {path}: {text}", path=str(path))
    bad = _first_invalid_row(path)
    if bad is None:
        return DataFileError(f"malformed CSV {path}: {text}", path=str(path))
    line = _line_of(path, bad.text) or bad.number
    return DataFileError(
        f"malformed row in {path} at line {line}: expected {bad.expected} fields, "
        f"got {bad.actual}: {bad.text[:200]!r}",
        path=str(path),
        row=line,
        hint="fix or quote that line (a comma inside a value needs double quotes)",
    )


@dataclass(frozen=True)
class _InvalidRow:
    number: int | None
    text: str
    expected: int
    actual: int


def _first_invalid_row(path: Path) -> _InvalidRow | None:
    """Re-read single-threaded (only on the error path) so the first bad row is the first."""
    found: list[_InvalidRow] = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append(_InvalidRow(row.number, row.text, row.expected_columns, row.actual_columns))
        return "error"

    parse = pacsv.ParseOptions(invalid_row_handler=handler)
    try:
        pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False), parse_options=parse)
    except pa.ArrowInvalid:
        pass
    return found[0] if found else None


def _line_of(path: Path, text: str) -> int | None:
    """1-based line where ``text`` first stands as a whole line.

    Arrow's row number skips blank lines and counts a quoted multi-line value once, so the
    editor line is found by locating the row's text in the file.
    """
    needle = text.encode("utf-8")
    if not needle:
        return None
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        start = 0
        while (pos := buf.find(needle, start)) >= 0:
            end = pos + len(needle)
            at_start = pos == 0 or buf[pos - 1 : pos] == b"\n"
            at_end = end == len(buf) or buf[end : end + 1] in (b"\n", b"\r")
            if at_start and at_end:
                return buf[:pos].count(b"\n") + 1
            start = pos + 1
    return None


def _not_utf8(path: Path, column: str | None) -> DataFileError:
    where = f" in column '{column}'" if column else ""
    return DataFileError(
        f"data file {path} is not valid UTF-8{where}",
        path=str(path),
        column=column,
        hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
    )
