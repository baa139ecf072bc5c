"""Stream a CSV file in constant memory, with one schema for every batch.

Arrow's streaming reader infers types from its first block and fails on a later block that
disagrees (a float in an int column at row 10**6, a stray ``n/a`` in a numeric column). So
the types are fixed before the first batch: Arrow's inference on the first block, where a
text column whose values are numbers but for a few is numeric (the few are bad values);
then, only when a column is int or all null so far, a scan pass over those columns widens
int to float and types the late-filled ones. Numeric columns are read as text and cast per
batch with a non-strict cast, which finds each bad value's row and column.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lockgate.data.casting import cast_checked, infer_text_type, needs_float
from lockgate.data.lines import (
    LineIndex,
    TextScan,
    first_undecodable,
    locate,
    open_bytes,
    scan_text,
)
from lockgate.data.rejects import OnBadRows, rejected_rows
from lockgate.errors import ColumnNotFoundError, ConfigError, DataFileError

__all__ = [
    "COLUMN_TYPES",
    "MAX_BLOCK_BYTES",
    "NULL_VALUES",
    "CsvOptions",
    "KeepBadValues",
    "csv_schema",
    "iter_csv",
]

#: Strings that mean "missing" in a CSV file.
NULL_VALUES: tuple[str, ...] = ("NA", "", "null", "NaN", "N/A")

#: Names a user may give in ``CsvOptions.column_types``.
COLUMN_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
}

#: Bytes Arrow parses at a time. Arrow's memory grows with the file for large blocks, so
#: blocks are small, and only a file with a longer line gets blocks that fit it.
BLOCK_BYTES = 1 << 20
#: The largest block: Arrow's block size is a 32-bit int, and a block must hold the longest
#: line twice over, so a line of half this (512 MiB) or more cannot be read.
MAX_BLOCK_BYTES = 1 << 30

_CASTS = (pa.int64(), pa.float64(), pa.string())
_COLUMN_NO = re.compile(r"In CSV column #(\d+)")
_BAD_VALUE = re.compile(r"conversion error to (\S+): invalid value '(.*)'")
_ROW_NO = re.compile(r"Row #(\d+)")


#: An ``on_bad_rows`` that may keep the rows it is handed: it returns True to keep them,
#: their bad values read as nulls (ingest then reports them as a type anomaly of the data).
KeepBadValues = Callable[[pa.Table], bool | None]


@dataclass(frozen=True)
class CsvOptions:
    """How to parse a CSV file. Without a header the columns are ``column_0, column_1, ...``
    or ``column_names`` (which, with a header, replace its names);
    ``column_types`` ({column: "int" | "float" | "string" | "bool" | "timestamp"}) overrides
    the inferred type, e.g. to read zip codes as text."""

    delimiter: str = ","
    header: bool = True
    quote_char: str | None = '"'
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = NULL_VALUES
    column_types: Mapping[str, str] = field(default_factory=dict)
    column_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.column_names is not None:
            object.__setattr__(self, "column_names", tuple(self.column_names))
        for name in ("delimiter", "quote_char"):
            value = getattr(self, name)
            if not (value is None and name == "quote_char") and (
                not isinstance(value, str) or len(value) != 1
            ):
                raise ConfigError(
                    f"The '{name}' parameter of CsvOptions must be one character. "
                    f"Got {value!r} instead."
                )
        for column, kind in self.column_types.items():
            if kind not in COLUMN_TYPES:
                raise ConfigError(
                    f"The column type of '{column}' in CsvOptions.column_types must be one of "
                    f"{sorted(COLUMN_TYPES)}. Got {kind!r} instead."
                )


@dataclass
class _Plan:
    names: list[str]
    target: dict[str, pa.DataType]  # the type every batch has (null: no value seen)
    block_size: int


def iter_csv(
    path: Path,
    options: CsvOptions,
    *,
    batch_size: int,
    on_bad_rows: OnBadRows | KeepBadValues | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of at most ``batch_size`` rows (one empty batch when no row is left, so that
    the columns are still known). A bad row (wrong field count, a value that does not parse
    as its column's type) raises ``DataFileError`` naming the file, line and column, or is
    handed to ``on_bad_rows`` and left out; when ``on_bad_rows`` returns True for rows with
    bad values, they are kept with those values as nulls (a malformed row is always left
    out: it has no values to keep)."""
    plan = _plan(path, options)
    schema = pa.schema(list(plan.target.items()))
    read = {
        n: (pa.string() if t in _CASTS or pa.types.is_null(t) else t)
        for n, t in plan.target.items()
    }
    skipped: list[int] = []  # Arrow numbers of the rows Arrow left out
    ragged: list[pacsv.InvalidRow] = []
    lines = LineIndex(path, delimiter=options.delimiter, quote_char=options.quote_char)
    base = 2 if options.header else 1

    def handler(row: pacsv.InvalidRow) -> str:
        ragged.append(row)
        if on_bad_rows is None:
            return "error"
        skipped.append(row.number)
        return "skip"

    emitted = given = 0
    for block in _blocks(path, options, plan.block_size, plan.names, read, handler, ragged):
        if ragged:
            _reject_ragged(ragged, lines, on_bad_rows)
        n = block.num_rows
        arrays: list[pa.Array] = []
        bad = np.zeros(n, dtype=bool)
        rejects: list[pa.Table] = []
        numbers: np.ndarray | None = None
        for i, (name, target) in enumerate(plan.target.items()):
            raw = block.column(i)
            arr, wrong = cast_checked(raw, target)
            arrays.append(arr)
            if wrong is None:
                continue
            if numbers is None:
                numbers = _record_numbers(emitted, n, skipped, base)
            fresh = wrong & ~bad
            if on_bad_rows is None:
                first = int(np.flatnonzero(fresh)[0])
                line = int(lines.lines(numbers[first : first + 1])[0])
                raise _value_error(path, name, target, raw[first].as_py(), line)
            rejects.append(_value_rejects(block, fresh, numbers, lines, name, target, options))
            bad |= wrong
        emitted += n
        out = pa.RecordBatch.from_arrays(arrays, schema=schema)
        if rejects and on_bad_rows is not None:
            if on_bad_rows(pa.concat_tables(rejects)) is not True:
                out = out.filter(pa.array(~bad))  # left out; kept, they read as nulls
        given += out.num_rows
        for start in range(0, out.num_rows, batch_size):
            yield out.slice(start, batch_size)
    if ragged:
        _reject_ragged(ragged, lines, on_bad_rows)
    if not given:
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _plan(path: Path, options: CsvOptions) -> _Plan:
    """Names and types from the first block, widened by a scan pass where needed."""
    names: list[str] | None = None
    block = _block_size(path, options)
    try:
        reader = pacsv.open_csv(
            path,
            read_options=_read_options(options, None, block),
            parse_options=_parse_options(options, lambda row: "skip"),
            convert_options=pacsv.ConvertOptions(
                null_values=list(options.null_values), strings_can_be_null=True
            ),
        )
        schema = reader.schema
        names = _names(schema.names, options, path)
        _check_unique(names, path)
        sample = next(iter(reader), None)
        reader.close()
    except pa.ArrowInvalid as exc:
        raise _arrow_error(path, options, exc, names or [], []) from exc
    except UnicodeDecodeError as exc:  # in Arrow's transcoding from another encoding
        raise _undecodable(path, options, first_undecodable(path, options.encoding)) from exc
    target: dict[str, pa.DataType | None] = {}
    for i, (name, fld) in enumerate(zip(names, schema, strict=True)):
        if pa.types.is_string(fld.type) and sample is not None:
            target[name] = infer_text_type(sample.column(i))
        else:
            target[name] = None if pa.types.is_null(fld.type) else fld.type
    for name, kind in options.column_types.items():
        if name not in target:
            raise ColumnNotFoundError(name, names, where=f"the header of {path}")
        target[name] = COLUMN_TYPES[kind]
    pending = [
        n
        for n, t in target.items()
        if n not in options.column_types and (t is None or pa.types.is_integer(t))
    ]
    if pending and sample is not None:
        types = {n: pa.string() for n in pending}
        # the handler keeps nothing, so Arrow may parse blocks in parallel (before any batch)
        scan = _blocks(
            path, options, block, names, types, lambda row: "skip", [], pending, threads=True
        )
        for batch in scan:
            for i, name in enumerate(pending):
                col = batch.column(i)
                t = target[name]
                if t is None:
                    target[name] = infer_text_type(col)
                elif pa.types.is_integer(t) and needs_float(col):
                    target[name] = pa.float64()
    final = {n: (pa.null() if t is None else t) for n, t in target.items()}
    return _Plan(names, final, block)


def csv_schema(path: Path, options: CsvOptions) -> pa.Schema:
    """The names and types every batch of :func:`iter_csv` will have (its planning pass)."""
    return pa.schema(list(_plan(path, options).target.items()))


def _names(found: list[str], options: CsvOptions, path: Path) -> list[str]:
    """The header's names, ``column_0, ...`` without one, or ``options.column_names``."""
    if options.column_names is None:
        return found if options.header else [f"column_{i}" for i in range(len(found))]
    if len(options.column_names) != len(found):
        raise DataFileError(
            f"{path} has {len(found)} fields per row; {len(options.column_names)} column "
            f"names were given ({', '.join(options.column_names)})",
            path=str(path),
            hint="give one name per field, in order",
        )
    return list(options.column_names)


def _blocks(
    path: Path,
    options: CsvOptions,
    block_size: int,
    names: list[str],
    types: dict[str, pa.DataType],
    handler: Callable[[pacsv.InvalidRow], str],
    ragged: list[pacsv.InvalidRow],
    include: list[str] | None = None,
    *,
    threads: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Arrow's streaming reader with our names and types, its errors made DataFileErrors."""
    try:
        reader = pacsv.open_csv(
            path,
            read_options=_read_options(options, names, block_size, threads=threads),
            parse_options=_parse_options(options, handler),
            convert_options=pacsv.ConvertOptions(
                null_values=list(options.null_values),
                strings_can_be_null=True,
                column_types=types,
                include_columns=include or [],
            ),
        )
        with reader:
            yield from reader
    except pa.ArrowInvalid as exc:
        raise _arrow_error(path, options, exc, include or names, ragged) from exc
    except UnicodeDecodeError as exc:  # in Arrow's transcoding from another encoding
        raise _undecodable(path, options, first_undecodable(path, options.encoding)) from exc


def _block_size(path: Path, options: CsvOptions) -> int:
    """BLOCK_BYTES, or a power of two that holds the longest line twice over.

    The same pass checks that a UTF-8 file is UTF-8: Arrow hands a bad row's text to the row
    handler as ``str``, and a row that does not decode ends in a printed traceback."""
    utf8 = codecs.lookup(options.encoding).name == "utf-8"  # Arrow transcodes any other
    scan = scan_text(path, utf8=utf8)
    if scan.not_utf8_at is not None:
        raise _undecodable(path, options, scan.not_utf8_at)
    if scan.longest == 0:  # Arrow's reader, refusing an empty file, can abort the process
        raise DataFileError(f"data file {path} is empty (not even a header)", path=str(path))
    need = 2 * scan.longest + 2
    if need > MAX_BLOCK_BYTES:
        raise _line_too_long(path, scan)
    size = BLOCK_BYTES
    while size < need:
        size *= 2
    return size


def _line_too_long(path: Path, scan: TextScan) -> DataFileError:
    limit = (MAX_BLOCK_BYTES - 2) // 2
    return DataFileError(
        f"line {scan.longest_at} of {path} is {scan.longest:,} bytes long; a CSV line must "
        f"be shorter than {_size(limit + 1)} ({limit + 1:,} bytes)",
        path=str(path),
        row=scan.longest_at,
        hint="a line this long is seldom CSV (one JSON document, a binary file, a value that "
        "belongs in object storage): split the line, or write the data as Parquet",
    )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def _read_options(
    options: CsvOptions, names: list[str] | None, block: int, *, threads: bool = False
) -> pacsv.ReadOptions:
    common = {"block_size": block, "encoding": options.encoding, "use_threads": threads}
    if names is None:
        return pacsv.ReadOptions(autogenerate_column_names=not options.header, **common)
    return pacsv.ReadOptions(column_names=names, skip_rows=1 if options.header else 0, **common)


def _parse_options(
    options: CsvOptions, handler: Callable[[pacsv.InvalidRow], str]
) -> pacsv.ParseOptions:
    quote = options.quote_char if options.quote_char is not None else False
    return pacsv.ParseOptions(
        delimiter=options.delimiter, quote_char=quote, invalid_row_handler=handler
    )


def _record_numbers(start: int, n: int, skipped: list[int], base: int) -> np.ndarray:
    """Arrow's record number of emitted rows ``start .. start+n``, given the rows left out."""
    left_out = np.sort(np.asarray(skipped, dtype=np.int64))
    before = left_out - base - np.arange(len(left_out))  # emitted rows before each one
    emitted = start + np.arange(n, dtype=np.int64)
    return base + emitted + np.searchsorted(before, emitted, side="right")


def _reject_ragged(
    ragged: list[pacsv.InvalidRow],
    lines: LineIndex,
    on_bad_rows: OnBadRows | KeepBadValues | None,
) -> None:
    if on_bad_rows is None:
        return
    numbers = np.array([r.number for r in ragged], dtype=np.int64)
    reasons = [f"expected {r.expected_columns} fields, got {r.actual_columns}" for r in ragged]
    on_bad_rows(
        rejected_rows(lines.lines(numbers), [None] * len(ragged), reasons, [r.text for r in ragged])
    )
    ragged.clear()


def _value_rejects(
    block: pa.RecordBatch,
    rows: np.ndarray,
    numbers: np.ndarray,
    lines: LineIndex,
    column: str,
    target: pa.DataType,
    options: CsvOptions,
) -> pa.Table:
    """The rows of ``block`` whose ``column`` did not parse, as rejected rows (vectorised)."""
    mask = pa.array(rows)
    picked = block.filter(mask)
    texts = pc.binary_join_element_wise(
        *[pc.cast(c, pa.string()) for c in picked.columns],
        options.delimiter,
        null_handling="replace",
        null_replacement="",
    )
    values = pc.cast(picked.column(column), pa.string())
    reasons = pc.binary_join_element_wise(f"expected {target}, got '", values, "'", "")
    return rejected_rows(
        lines.lines(numbers[rows]),
        pa.array([column] * picked.num_rows, pa.string()),
        reasons,
        texts,
    )


def _check_unique(names: list[str], path: Path) -> None:
    dups = [name for name, n in Counter(names).items() if n > 1]
    if dups:
        raise DataFileError(
            f"column '{dups[0]}' appears more than once in {path}; column names must be unique",
            path=str(path),
            column=dups[0],
            hint="rename the duplicated column in the header",
        )


def _value_error(
    path: Path, column: str, target: pa.DataType, value: object, line: int
) -> DataFileError:
    where = f" at line {line}" if line > 0 else ""
    return DataFileError(
        f"bad value in {path}{where}, column '{column}': expected {target}, got {value!r}",
        path=str(path),
        row=line if line > 0 else None,
        column=column,
        hint=(
            "fix the value, pass bad_rows='skip' to set such rows aside, or read the column "
            f"as text with column_types={{'{column}': 'string'}}"
        ),
    )


def _arrow_error(
    path: Path,
    options: CsvOptions,
    exc: pa.ArrowInvalid,
    names: list[str],
    ragged: list[pacsv.InvalidRow],
) -> DataFileError:
    text = str(exc)
    number = _COLUMN_NO.search(text)
    column = names[int(number.group(1))] if number and int(number.group(1)) < len(names) else None
    if text.startswith("Empty CSV file"):
        return DataFileError(f"data file {path} is empty (not even a header)", path=str(path))
    if "UTF8" in text or "utf8" in text.lower() or "decod" in text.lower():
        return _undecodable(path, options, first_undecodable(path, options.encoding))
    lines = LineIndex(path, delimiter=options.delimiter, quote_char=options.quote_char)
    if ragged:
        row = ragged[0]
        line = _line(lines, row.number)
        return DataFileError(
            f"malformed row in {path} at line {line}: expected {row.expected_columns} fields, "
            f"got {row.actual_columns}: {row.text[:200]!r}",
            path=str(path),
            row=line,
            hint="fix or quote that line (a comma inside a value needs double quotes), "
            "or pass bad_rows='skip' to set such rows aside",
        )
    if "straddling" in text or "out of sync" in text:  # a quoted value across blocks
        opened = lines.unclosed_quote()
        if opened is not None:
            return DataFileError(
                f"a quote opened at line {opened} of {path} is never closed",
                path=str(path),
                row=opened,
                hint='close the quote; a quote inside a quoted value is written twice ("")',
            )
        return DataFileError(
            f"a row of {path} spans more bytes than a block of the reader (a quoted value "
            "over many lines)",
            path=str(path),
            hint="check the quoting of that file",
        )
    bad = _BAD_VALUE.search(text)
    if bad:
        return DataFileError(
            f"bad value in {path}, column '{column}': expected {bad.group(1)}, "
            f"got {bad.group(2)!r}",
            path=str(path),
            column=column,
            hint=f"fix the value, or read the column as text with column_types={{'{column}': 'string'}}",
        )
    # anything else in Arrow's words, with the file's line for Arrow's row, and no raw bytes
    text = _ROW_NO.sub(lambda m: f"line {_line(lines, int(m.group(1)))}", text, count=1)
    return DataFileError(f"cannot read CSV {path}: {_printable(text)}", path=str(path))


def _line(lines: LineIndex, record: int | None) -> int | None:
    """The file's line of Arrow's record number (None when Arrow did not know it)."""
    if record is None or record < 1:
        return None
    line = int(lines.lines(np.array([record]))[0])
    return line if line > 0 else None


def _printable(text: str, limit: int = 300) -> str:
    """``text`` with control and other unprintable characters escaped, cut at ``limit``."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _undecodable(path: Path, options: CsvOptions, offset: int | None) -> DataFileError:
    """The error for a byte that ``options.encoding`` cannot decode at ``offset``: its line,
    its column, the bytes around it escaped (never raw bytes on a terminal)."""
    utf8 = codecs.lookup(options.encoding).name == "utf-8"
    label = "UTF-8" if utf8 else options.encoding
    hint = (
        "pass encoding='latin-1' (or the file's encoding), or re-save it as UTF-8"
        if utf8
        else f"check the file's encoding; it does not read as {options.encoding}"
    )
    if _holds_nul(path):
        hint = (
            "it holds NUL bytes: it looks like a binary file, not CSV text; check the path "
            "(a Parquet file needs a .parquet suffix)"
        )
    if offset is None:
        return DataFileError(f"data file {path} is not valid {label}", path=str(path), hint=hint)
    place = locate(path, offset, delimiter=options.delimiter, quote_char=options.quote_char)
    column: str | None = None
    if not options.header:
        column = f"column_{place.field}"
    elif not place.first_record:
        names = _header_names(path, options)
        column = names[place.field] if place.field < len(names) else None
    if options.header and place.first_record:
        where = f" in its header (field {place.field + 1})"
    else:
        where = f" in column '{column}'" if column else f" in field {place.field + 1}"
    start = max(place.column - 20, 0)
    excerpt = place.text[start : place.column + 20]
    more = ("..." if start else "", "..." if place.column + 20 < len(place.text) else "")
    return DataFileError(
        f"data file {path} is not valid {label}{where} at line {place.line}: byte "
        f"0x{place.text[place.column]:02x} in {more[0]}{excerpt!r}{more[1]}",
        path=str(path),
        row=place.line,
        column=column,
        hint=hint,
    )


def _header_names(path: Path, options: CsvOptions) -> list[str]:
    """The column names, read with Python's csv module (error path only)."""
    import csv
    import io

    with io.TextIOWrapper(
        open_bytes(path), encoding=options.encoding, errors="replace", newline=""
    ) as fh:
        reader = csv.reader(
            fh,
            delimiter=options.delimiter,
            quotechar=options.quote_char,
            quoting=csv.QUOTE_NONE if options.quote_char is None else csv.QUOTE_MINIMAL,
        )
        try:
            return next((row for row in reader if row), [])
        except csv.Error:
            return []


def _holds_nul(path: Path) -> bool:
    with open_bytes(path) as fh:
        return b"\x00" in fh.read(1 << 16)
