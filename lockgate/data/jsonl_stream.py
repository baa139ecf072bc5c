"""Stream a JSON-lines file in constant memory, with one schema for every batch.

The file is cut into chunks of whole lines and Arrow parses each chunk alone, so a bad line
is found by its chunk's first line plus Arrow's row. A scan pass first unifies the chunks'
types (null fills in, int widens to float); the main pass casts every chunk to that schema
and reports a value that does not fit (a string in a numeric field) by line and column.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from lockgate.data.casting import cast_checked, widen
from lockgate.data.lines import open_bytes
from lockgate.data.nested import check_flat
from lockgate.data.rejects import OnBadRows, rejected_rows
from lockgate.errors import DataFileError

__all__ = ["iter_jsonl", "jsonl_schema"]

CHUNK_BYTES = 8 << 20
_ROW = re.compile(r" in row (\d+)")
_COLUMN = re.compile(r"Column\(/([^)]*)\)")


def jsonl_schema(path: Path) -> pa.Schema:
    """The unified schema of every line (the scan pass); bad lines are left to the main pass."""
    types: dict[str, pa.DataType | None] = {}
    for _, table in _tables(path, lambda rejected: None):
        for fld in table.schema:
            types[fld.name] = widen(types.get(fld.name), fld.type)
    if not types:
        raise DataFileError(f"data file {path} has no JSON lines", path=str(path))
    schema = pa.schema([(n, pa.null() if t is None else t) for n, t in types.items()])
    check_flat(schema, path)
    return schema


def iter_jsonl(
    path: Path,
    *,
    batch_size: int,
    on_bad_rows: OnBadRows | None = None,
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of at most ``batch_size`` rows, every one with :func:`jsonl_schema`'s schema,
    or ``schema`` (the files of a folder share one); one empty batch when every line was set
    aside."""
    schema = jsonl_schema(path) if schema is None else schema
    given = 0
    for lines, table in _tables(path, on_bad_rows):
        arrays, bad = [], np.zeros(table.num_rows, dtype=bool)
        for fld in schema:
            if fld.name not in table.column_names:
                arrays.append(pa.nulls(table.num_rows, type=fld.type))
                continue
            raw = table.column(fld.name).combine_chunks()
            arr, wrong = cast_checked(raw, fld.type)
            arrays.append(arr)
            if wrong is None:
                continue
            rows = np.flatnonzero(wrong & ~bad)
            if on_bad_rows is None:
                line = int(lines[rows[0]])
                raise DataFileError(
                    f"bad value in {path} at line {line}, column '{fld.name}': expected "
                    f"{fld.type}, got {raw[int(rows[0])].as_py()!r}",
                    path=str(path),
                    row=line,
                    column=fld.name,
                    hint="fix the value, or pass bad_rows='skip' to set such rows aside",
                )
            on_bad_rows(
                rejected_rows(
                    lines[rows],
                    [fld.name] * len(rows),
                    [f"expected {fld.type}, got {raw.type}"] * len(rows),
                    _texts(raw.take(pa.array(rows))),
                )
            )
            bad |= wrong
        out = pa.Table.from_arrays(arrays, schema=schema).filter(pa.array(~bad))
        given += out.num_rows
        yield from out.to_batches(max_chunksize=batch_size)
    if not given:
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes of whole lines) of about CHUNK_BYTES each."""
    line, carry = 1, b""
    with open_bytes(path) as fh:
        while data := fh.read(CHUNK_BYTES):
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            yield line, data[:cut]
            line += data.count(b"\n", 0, cut)
            carry = data[cut:]
    if carry.strip():
        yield line, carry


def _tables(path: Path, on_bad_rows: OnBadRows | None) -> Iterator[tuple[np.ndarray, pa.Table]]:
    """Each chunk parsed, with the file line of each of its rows; a malformed line raises,
    or (with ``on_bad_rows``) is blanked out and handed over."""
    for first_line, chunk in _chunks(path):
        while True:
            lines = first_line + _nonblank(chunk)  # Arrow's rows skip blank lines
            try:
                options = pajson.ReadOptions(block_size=len(chunk) + 1, use_threads=False)
                yield lines, pajson.read_json(io.BytesIO(chunk), read_options=options)
                break
            except pa.ArrowInvalid as exc:
                match = _ROW.search(str(exc))
                row = int(match.group(1)) if match else None
                line = int(lines[row]) if row is not None and row < len(lines) else None
                if line is None or on_bad_rows is None:
                    where = f" at line {line}" if line else ""
                    raise DataFileError(
                        f"malformed JSON line in {path}{where}: {exc}",
                        path=str(path),
                        row=line,
                        hint="fix that line, or pass bad_rows='skip' to set such lines aside",
                    ) from exc
                column = _COLUMN.search(str(exc))
                name = column.group(1) if column else None
                chunk = _blank_line(chunk, line - first_line, line, name, str(exc), on_bad_rows)


def _nonblank(chunk: bytes) -> np.ndarray:
    """0-based numbers of the chunk's lines that hold something."""
    data = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if len(data) and (not len(ends) or ends[-1] != len(data) - 1):
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    spaces = np.isin(data, np.frombuffer(b" \t\r", dtype=np.uint8))
    solid = np.concatenate([[0], np.cumsum(~spaces & (data != 10))])
    return np.flatnonzero(solid[ends] - solid[starts] > 0)


def _blank_line(
    chunk: bytes, index: int, line: int, column: str | None, reason: str, sink: OnBadRows
) -> bytes:
    """``chunk`` with its ``index``-th line (0-based) blanked; the line goes to ``sink``."""
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    start = int(ends[index - 1]) + 1 if index > 0 else 0
    end = int(ends[index]) if index < len(ends) else len(chunk)
    text = chunk[start:end].decode("utf-8", errors="replace")
    sink(rejected_rows([line], [column], [reason], [text]))
    return chunk[:start] + chunk[end:]


def _texts(values: pa.Array) -> pa.Array:
    """The values as text for the rejected file (null where a value has no text form)."""
    try:
        return values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(values), type=pa.string())
