"""Read CSV, Parquet and JSON-lines files into Arrow, with errors that say where.

Every failure a user can meet (missing file, empty file, a row with the wrong number of
fields, bytes that are not UTF-8, a duplicated column, a value that does not fit its
column) becomes a ``DataFileError`` that names the file and, where it can be known, the
1-based line and the column, so the fix is one editor jump away. Text files are streamed
(``csv_stream``, ``jsonl_stream``): memory does not grow with the file.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from lockgate.data.csv_stream import NULL_VALUES, CsvOptions, iter_csv
from lockgate.data.jsonl_stream import iter_jsonl
from lockgate.data.nested import check_flat
from lockgate.data.rejects import OnBadRows
from lockgate.errors import DataFileError

__all__ = [
    "FORMATS",
    "NULL_VALUES",
    "CsvOptions",
    "infer_format",
    "iter_batches",
    "parquet_files",
    "read_table",
]

#: File suffix -> format name.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

_GLOB = set("*?[")


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


def read_table(
    path: str | Path, *, format: str | None = None, csv: CsvOptions | None = None
) -> pa.Table:
    """Read one file, a folder of Parquet files or a glob into an Arrow table.

    A CSV file with a header and no rows gives an empty table with those columns (typed
    ``null``): an empty span is legal, and the statistics then report zero rows.
    """
    p = _existing(path)
    fmt = infer_format(p, format)
    if fmt == "parquet":
        return _parquet_dataset(p).to_table()
    return pa.Table.from_batches(list(iter_batches(p, format=fmt, csv=csv)))


def iter_batches(
    path: str | Path,
    *,
    format: str | None = None,
    batch_size: int = 65_536,
    csv: CsvOptions | None = None,
    on_bad_rows: OnBadRows | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of at most ``batch_size`` rows, all with one schema; a source
    without rows yields one empty batch, so that its columns are known all the same.

    Parquet is streamed row group by row group, CSV and JSON lines block by block. A bad
    row raises ``DataFileError``, or, when ``on_bad_rows`` is given, is handed to it as a
    table of ``rejects.REJECTED_SCHEMA`` and left out (Parquet has no bad rows).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r} instead")
    p = _existing(path)
    fmt = infer_format(p, format)
    if fmt == "csv":
        yield from iter_csv(p, csv or CsvOptions(), batch_size=batch_size, on_bad_rows=on_bad_rows)
    elif fmt == "jsonl":
        _not_empty(p)
        yield from iter_jsonl(p, batch_size=batch_size, on_bad_rows=on_bad_rows)
    else:
        yield from _iter_parquet(p, batch_size)


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files of a file, a folder (recursively) or a glob pattern, sorted."""
    p = Path(path)
    if _GLOB & set(str(p)):
        return sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".parquet", ".pq"))
    return [p]


def _iter_parquet(path: Path, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Each file's batches in turn, read row group by row group and conformed to the
    unified schema. Not a dataset scan: its readahead (16 batches of 4 files) and
    pre-buffering kept gigabytes in flight (3.2 GB peak RSS for 10M taxi rows)."""
    files, schema = _parquet_schema(path)
    rows = 0
    for f in files:
        try:
            with pq.ParquetFile(f, pre_buffer=False) as reader:
                for batch in reader.iter_batches(batch_size=batch_size):
                    rows += batch.num_rows
                    yield _conform(batch, schema)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataFileError(f"cannot read Parquet {f}: {exc}", path=str(f)) from exc
    if not rows:
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns and types: a column it lacks is all null."""
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for field in schema:
        i = batch.schema.get_field_index(field.name)
        if i < 0:
            arrays.append(pa.nulls(batch.num_rows, field.type))
        else:
            column = batch.column(i)
            arrays.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _parquet_dataset(path: Path) -> pads.Dataset:
    """One dataset over the files, with their schemas unified (int widened to float)."""
    files, schema = _parquet_schema(path)
    return pads.dataset([str(f) for f in files], schema=schema, format="parquet")


def _parquet_schema(path: Path) -> tuple[list[Path], pa.Schema]:
    """The Parquet files of ``path`` and their schemas unified (int widened to float)."""
    files = parquet_files(path)
    if not files:
        raise DataFileError(
            f"no Parquet files in {path}", path=str(path), hint="check the folder or pattern"
        )
    try:
        schemas = [pq.read_schema(f) for f in files]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DataFileError(f"cannot read Parquet {path}: {exc}", path=str(path)) from exc
    for f, s in zip(files, schemas, strict=True):
        _check_columns(s, f)
    return files, schema


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if _GLOB & set(str(p)):
        if not parquet_files(p):
            raise DataFileError(
                f"no file matches {p}", path=str(p), hint="check the pattern and the span"
            )
        return p
    if not p.exists():
        raise DataFileError(
            f"data file {p} does not exist", path=str(p), hint="check the path and the span"
        )
    return p


def _not_empty(path: Path) -> None:
    if path.is_file() and path.stat().st_size == 0:
        raise DataFileError(f"data file {path} is empty", path=str(path))


def _check_columns(schema: pa.Schema, path: Path) -> None:
    dups = [name for name, n in Counter(schema.names).items() if n > 1]
    if dups:
        raise DataFileError(
            f"column '{dups[0]}' appears more than once in {path}; column names must be unique",
            path=str(path),
            column=dups[0],
            hint="rename the duplicated column in the header",
        )
    check_flat(schema, path)
