"""Read CSV, Parquet and JSON-lines files into Arrow, with errors that say where.

Every failure a user can meet (missing file, empty file, a row with the wrong number of
fields, bytes that are not UTF-8, a duplicated column, a value that does not fit its
column) becomes a ``DataFileError`` that names the file and, where it can be known, the
1-based line and the column, so the fix is one editor jump away. Text files are streamed
(``csv_stream``, ``jsonl_stream``): memory does not grow with the file.

A path is a file, a folder or a glob. A text file may be compressed (``.csv.gz``,
``.jsonl.zst``, ``.bz2``): it is decompressed as a stream. A folder of Parquet files is read
as one dataset (schemas unified); a folder of CSV or JSON-lines files is read file by file
in sorted order with one schema: CSV files must have the same columns (the first file that
differs is named), JSON-lines files may lack keys (read as nulls).
"""

from __future__ import annotations

import dataclasses
import glob
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from lockgate.data.casting import widen
from lockgate.data.csv_stream import COLUMN_TYPES, NULL_VALUES, CsvOptions, csv_schema, iter_csv
from lockgate.data.jsonl_stream import iter_jsonl, jsonl_schema
from lockgate.data.lines import COMPRESSIONS
from lockgate.data.nested import check_flat
from lockgate.data.rejects import OnBadRows
from lockgate.errors import DataFileError

if TYPE_CHECKING:
    import pyarrow.dataset as pads

__all__ = [
    "FORMATS",
    "NULL_VALUES",
    "CsvOptions",
    "data_files",
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
    """Return the format of ``path``: ``format`` if given, else from its suffix (after a
    compression suffix: ``a.csv.gz`` is CSV).

    A folder or a glob holding Parquet files is Parquet (a folder of part files is what
    writers produce); else the format its CSV or JSON-lines files share.
    """
    p = Path(path)
    if format is not None:
        if format not in set(FORMATS.values()):
            raise DataFileError(
                f"unknown format '{format}' for {p}; formats are {sorted(set(FORMATS.values()))}",
                path=str(p),
            )
        return format
    if p.is_dir() or _GLOB & set(str(p)):
        return _format_of_files(p)
    fmt = _format_of(p)
    if fmt is None:
        suffix = "".join(p.suffixes[-2:]) if p.suffix.lower() in COMPRESSIONS else p.suffix
        raise DataFileError(
            f"cannot tell the format of {p} from its suffix '{suffix}'; "
            f"suffixes are {sorted(FORMATS)}, optionally followed by {sorted(COMPRESSIONS)}",
            path=str(p),
            hint="rename the file or pass format='csv' | 'parquet' | 'jsonl' (--format)",
        )
    return fmt


def _format_of(p: Path) -> str | None:
    name = p.name.lower()
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return FORMATS.get(Path(name).suffix)


def _format_of_files(p: Path) -> str:
    found: dict[str, Path] = {}
    for f in _candidates(p):
        fmt = _format_of(f)
        if fmt is not None:
            found.setdefault(fmt, f)
    if "parquet" in found:
        return "parquet"
    if not found:
        raise DataFileError(
            f"no CSV, Parquet or JSON-lines files in {p}",
            path=str(p),
            hint=f"file suffixes are {sorted(FORMATS)}, optionally followed by "
            f"{sorted(COMPRESSIONS)}; or pass format='csv' | 'jsonl' (--format)",
        )
    if len(found) > 1:
        shown = ", ".join(f"{f} is {fmt}" for fmt, f in sorted(found.items()))
        raise DataFileError(
            f"{p} mixes formats ({shown}); the files of one folder share one format",
            path=str(p),
            hint="move the files of the other format out, or pass format=... to read one",
        )
    return next(iter(found))


def _candidates(p: Path) -> list[Path]:
    """The files of a folder (recursively, without hidden ``.x`` and ``_SUCCESS``-like
    files) or of a glob, sorted."""
    if _GLOB & set(str(p)):
        files = (Path(f) for f in glob.glob(str(p), recursive=True))
        return sorted(f for f in files if f.is_file())
    if p.is_dir():
        return sorted(
            f
            for f in p.rglob("*")
            if f.is_file()
            and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)
        )
    return [p]


def data_files(path: str | Path, format: str | None = None) -> list[Path]:
    """The files ``path`` stands for, sorted: itself, or those of a folder or glob in
    ``format`` (given, or as :func:`infer_format` finds it)."""
    p = Path(path)
    fmt = infer_format(p, format)
    if fmt == "parquet":
        return parquet_files(p)
    if not (p.is_dir() or _GLOB & set(str(p))):
        return [p]
    files = [f for f in _candidates(p) if _format_of(f) in (fmt, None)]
    if p.is_dir() and format is None:  # the format came from the suffixes: keep only those
        files = [f for f in files if _format_of(f) == fmt]
    if not files:
        raise DataFileError(f"no {fmt} files in {p}", path=str(p), hint="check the folder")
    return files


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
    dictionaries: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of at most ``batch_size`` rows, all with one schema; a source
    without rows yields one empty batch, so that its columns are known all the same.

    Parquet is streamed row group by row group, CSV and JSON lines block by block. A bad
    row raises ``DataFileError``, or, when ``on_bad_rows`` is given, is handed to it as a
    table of ``rejects.REJECTED_SCHEMA`` and left out (Parquet has no bad rows).
    With ``dictionaries``, the string columns of a single Parquet file that it stores with
    small dictionaries (categories) arrive dictionary-encoded, as Arrow reads them several
    times faster so (the values are the same; the type is ``dictionary<string>``).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r} instead")
    p = _existing(path)
    fmt = infer_format(p, format)
    if fmt == "parquet":
        yield from _iter_parquet(p, batch_size, dictionaries=dictionaries)
        return
    files = data_files(p, fmt)
    if files == [p]:
        yield from _iter_text(p, fmt, batch_size, csv, on_bad_rows, None)
        return
    options = csv or CsvOptions()
    schema = _text_schema(files, fmt, options)
    if fmt == "csv":  # each file read with the types of all: every batch has one schema
        forced = {f.name: name for f in schema if (name := _type_name(f.type))}
        options = dataclasses.replace(options, column_types={**forced, **options.column_types})
    given = 0
    for f in files:
        for batch in _iter_text(f, fmt, batch_size, options, on_bad_rows, schema):
            if batch.num_rows:
                given += batch.num_rows
                yield _conform_text(batch, schema, f)
    if not given:
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _iter_text(
    path: Path,
    fmt: str,
    batch_size: int,
    csv: CsvOptions | None,
    on_bad_rows: OnBadRows | None,
    schema: pa.Schema | None,
) -> Iterator[pa.RecordBatch]:
    if fmt == "csv":
        yield from iter_csv(
            path, csv or CsvOptions(), batch_size=batch_size, on_bad_rows=on_bad_rows
        )
    else:
        _not_empty(path)
        yield from iter_jsonl(path, batch_size=batch_size, on_bad_rows=on_bad_rows, schema=schema)


def _text_schema(files: list[Path], fmt: str, options: CsvOptions) -> pa.Schema:
    """One schema for the files of a folder: the first's columns (every CSV file must have
    them, in order; JSON lines: the union), each column's type widened as within a file."""
    types: dict[str, pa.DataType | None] = {}
    first: list[str] | None = None
    for f in files:
        if fmt == "jsonl":
            _not_empty(f)
        schema = csv_schema(f, options) if fmt == "csv" else jsonl_schema(f)
        if fmt == "csv" and first is not None and schema.names != first:
            raise _columns_differ(f, schema.names, files[0], first)
        first = first if first is not None else schema.names
        for fld in schema:
            types[fld.name] = widen(types.get(fld.name), fld.type)
    return pa.schema([(n, pa.null() if t is None else t) for n, t in types.items()])


def _columns_differ(f: Path, names: list[str], first_file: Path, first: list[str]) -> DataFileError:
    missing = [n for n in first if n not in names]
    extra = [n for n in names if n not in first]
    parts = [f"it lacks {missing}"] if missing else []
    parts += [f"it has {extra} too"] if extra else []
    what = "; ".join(parts) or f"they are in another order: {names}"
    return DataFileError(
        f"the columns of {f} differ from those of {first_file} {first}: {what}",
        path=str(f),
        hint="every CSV file of a folder has the same columns in the same order; move the "
        "file out, or fix its header",
    )


def _type_name(dtype: pa.DataType) -> str | None:
    return next((name for name, t in COLUMN_TYPES.items() if t == dtype), None)


def _conform_text(batch: pa.RecordBatch, schema: pa.Schema, path: Path) -> pa.RecordBatch:
    try:
        return _conform(batch, schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataFileError(
            f"cannot read {path} with the column types of the other files of its folder: {exc}",
            path=str(path),
            hint="give the column's type, e.g. column_types={'name': 'string'}",
        ) from exc


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files of a file, a folder (recursively) or a glob pattern, sorted."""
    p = Path(path)
    if _GLOB & set(str(p)):
        return sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".parquet", ".pq"))
    return [p]


def _iter_parquet(
    path: Path, batch_size: int, *, dictionaries: bool = False
) -> Iterator[pa.RecordBatch]:
    """Each file's batches in turn, read row group by row group and conformed to the
    unified schema. Not a dataset scan: its readahead (16 batches of 4 files) and
    pre-buffering kept gigabytes in flight (3.2 GB peak RSS for 10M taxi rows)."""
    files, schema = _parquet_schema(path)
    rows = 0
    for f in files:
        try:
            encoded = _small_dictionaries(f, schema) if dictionaries and len(files) == 1 else []
            with pq.ParquetFile(f, pre_buffer=False, read_dictionary=encoded or None) as reader:
                target = schema
                if encoded:
                    read = reader.schema_arrow
                    target = pa.schema(
                        [read.field(x.name) if x.name in encoded else x for x in schema]
                    )
                for batch in reader.iter_batches(batch_size=batch_size):
                    rows += batch.num_rows
                    yield _conform(batch, target)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataFileError(f"cannot read Parquet {f}: {exc}", path=str(f)) from exc
    if not rows:
        yield pa.RecordBatch.from_pylist([], schema=schema)


#: A dictionary page up to this size (compressed) holds categories, not a unique column's
#: values (a writer stops adding to a dictionary at about 1 MiB and falls back to plain).
SMALL_DICTIONARY_BYTES = 64 << 10


def _small_dictionaries(path: Path, schema: pa.Schema) -> list[str]:
    """The string columns whose every column chunk in ``path`` has a small dictionary page."""
    metadata = pq.read_metadata(path)
    if metadata.num_row_groups == 0:
        return []
    names = []
    for i in range(metadata.num_columns):
        name = metadata.row_group(0).column(i).path_in_schema
        if name not in schema.names or not pa.types.is_string(schema.field(name).type):
            continue
        chunks = [metadata.row_group(g).column(i) for g in range(metadata.num_row_groups)]
        if all(
            c.has_dictionary_page
            and c.dictionary_page_offset is not None
            and 0 < c.data_page_offset - c.dictionary_page_offset <= SMALL_DICTIONARY_BYTES
            for c in chunks
        ):
            names.append(name)
    return names


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
    import pyarrow.dataset as pads  # 0.2 s of imports (pandas among them): only here

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
    if p.suffix.lower() in COMPRESSIONS and _format_of(p) == "parquet":
        raise DataFileError(
            f"{p} is a compressed Parquet file; Parquet compresses inside the file",
            path=str(p),
            hint=f"decompress it: the file inside {p.name} is the Parquet file",
        )
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
