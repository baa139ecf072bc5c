"""A CSV file's bytes as an editor shows them: lines, and where each record starts.

Arrow numbers the records of a CSV file (the header is record 1): a blank line is no record,
and a quoted value may hold newlines, so one record can span several lines. ``LineIndex``
scans the bytes forward once, with NumPy, following quotes as Arrow does, and maps record
numbers to the line each record starts on.

``scan_text`` reads a file once before Arrow does, for what Arrow cannot say itself: the
longest line (Arrow needs a block that holds it) and the first byte that is not UTF-8 (Arrow
hands a bad row's text to its row handler as ``str``, and a row that does not decode ends in
a printed traceback, sometimes an abort). ``locate`` turns a byte offset into the line and
the field it is in, on the error path only.

Every pass reads through ``open_bytes``, which decompresses ``.gz``, ``.bz2`` and ``.zst``
files as a stream: line numbers are those of the decompressed text, and nothing here seeks
backwards, so a compressed file costs one forward pass like a plain one.
"""

from __future__ import annotations

import codecs
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

__all__ = [
    "COMPRESSIONS",
    "LineIndex",
    "Place",
    "TextScan",
    "compression_of",
    "first_undecodable",
    "locate",
    "open_bytes",
    "scan_text",
]

#: File suffix -> the compression Arrow decompresses it with.
COMPRESSIONS: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}

_CHUNK = 1 << 20
_SCAN_CHUNK = 8 << 20
_NL, _CR = 10, 13


class _Quotes:
    """Inside or outside a quoted value, chunk after chunk, by Arrow's rule: a quote opens a
    value only at the start of a field; inside one, ``""`` is a quote and a lone ``"`` closes
    it. So only runs of an odd number of quotes count: one closes a quoted value, or opens
    one at a field's start, or (mid-field, outside quotes) is a literal character."""

    def __init__(self, quote: int | None, delimiter: int) -> None:
        self.quote = quote
        self.starts = np.array([delimiter, _NL, _CR], dtype=np.uint8)
        self.inside = False
        self.previous = _NL  # the byte before the first: the file starts a line

    def outside(self, data: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """For sorted ``positions`` of non-quote bytes of ``data`` (the next chunk), whether
        each is outside quotes; then the state moves to the end of ``data``."""
        initial = self.inside
        inside = np.full(len(positions), initial)
        quotes = np.flatnonzero(data == self.quote) if self.quote is not None else data[:0]
        if len(quotes):
            first = np.diff(quotes, prepend=-2) != 1  # the first quote of each run
            run_start = quotes[first]
            run_length = np.diff(np.append(np.flatnonzero(first), len(quotes)))
            odd = run_length % 2 == 1
            start, last = run_start[odd], (run_start + run_length - 1)[odd]
            before = np.where(start > 0, data[np.maximum(start - 1, 0)], self.previous)
            at_field_start = np.isin(before, self.starts)
            # After an odd run not at a field start the state is "outside"; each odd run at
            # a field start flips it: the parity of such runs since the last other one.
            index = np.arange(len(start))
            reset = np.maximum.accumulate(np.where(at_field_start, -1, index))
            after = np.where(reset >= 0, (index - reset) % 2 == 1, (initial + index + 1) % 2 == 1)
            if len(after):
                run = np.searchsorted(last, positions) - 1
                inside = np.where(run >= 0, after[np.maximum(run, 0)], initial)
                self.inside = bool(after[-1])
        if len(data):
            self.previous = int(data[-1])
        return ~inside


def compression_of(path: str | Path) -> str | None:
    """ "gzip", "bz2" or "zstd" for a compressed file's suffix; None for a plain file."""
    return COMPRESSIONS.get(Path(path).suffix.lower())


def open_bytes(path: Path) -> BinaryIO:
    """``path`` opened for reading its bytes, decompressed as a stream when its suffix says
    it is compressed (``.gz``, ``.bz2``, ``.zst``)."""
    compression = compression_of(path)
    if compression is None:
        return path.open("rb")
    import pyarrow as pa

    return pa.input_stream(str(path), compression=compression)  # type: ignore[return-value]


class _Forward:
    """A byte stream read forward only, with bytes that can be put back (a compressed
    stream cannot seek)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._back = b""

    def read(self, size: int) -> bytes:
        if not self._back:
            return self._fh.read(size)
        data, self._back = self._back[:size], self._back[size:]
        return data + self._fh.read(size - len(data)) if len(data) < size else data

    def unread(self, data: bytes) -> None:
        self._back = data + self._back


def _read(fh: _Forward, size: int, quote: int | None) -> bytes:
    """About ``size`` bytes, more where needed so as not to end inside a run of quotes (a
    run's length decides what it means)."""
    data = fh.read(size)
    while quote is not None and data and data[-1] == quote:
        more = fh.read(size)
        if not more:
            break
        other = next((i for i, byte in enumerate(more) if byte != quote), None)
        if other is not None:
            fh.unread(more[other + 1 :])
            return data + more[: other + 1]
        data += more
    return data


class LineIndex:
    """Record number -> 1-based line where the record starts, for records asked in
    increasing order. ``quote_char=None`` reads quotes as plain characters, as Arrow does
    with quoting off."""

    def __init__(self, path: Path, *, delimiter: str = ",", quote_char: str | None = '"') -> None:
        self._path = path
        self._quotes = _Quotes(None if quote_char is None else ord(quote_char), ord(delimiter))
        self._offset = 0  # bytes consumed
        self._lines = 0  # newlines consumed
        self._start_line = 1  # the line the record being read starts on
        self._partial = 0  # bytes (but \r) of the record being read, so far
        self._records = 0  # records found (blank ones are none)
        self._known = np.zeros(0, dtype=np.int64)  # lines of records _first.._records
        self._first = 1
        self._done = False
        self._fh: _Forward | None = None  # opened on first use, closed at the end or with self

    def lines(self, records: np.ndarray) -> np.ndarray:
        """Lines of ``records`` (any order; none below the smallest asked before); -1 if
        a record is past the end of the file."""
        records = np.asarray(records, dtype=np.int64)
        if len(records) == 0:
            return records
        lowest = int(records.min())
        self._trim(lowest)
        while self._records < int(records.max()) and not self._done:
            self._advance()
            self._trim(lowest)  # memory stays one chunk's lines, however far the record
        index = records - self._first
        ok = (index >= 0) & (index < len(self._known))
        safe = np.clip(index, 0, max(len(self._known) - 1, 0))
        return np.where(ok, self._known[safe] if len(self._known) else -1, -1)

    def unclosed_quote(self) -> int | None:
        """The line of the record whose quoted value the file never closes, if any (reads
        to the end of the file)."""
        while not self._done:
            self._advance()
            self._trim(self._first + len(self._known))
        return self._start_line if self._quotes.inside else None

    def _trim(self, lowest: int) -> None:
        drop = max(0, min(lowest - self._first, len(self._known)))
        self._known, self._first = self._known[drop:], self._first + drop

    def _advance(self) -> None:
        if self._fh is None:
            raw = open_bytes(self._path)
            weakref.finalize(self, raw.close)
            self._fh = _Forward(raw)
        chunk = _read(self._fh, _CHUNK, self._quotes.quote)
        after = self._fh.read(1)
        self._done = not after
        self._fh.unread(after)
        data = np.frombuffer(chunk, dtype=np.uint8)
        self._offset += len(data)
        newlines = np.flatnonzero(data == _NL)
        ends = newlines[self._quotes.outside(data, newlines)]  # newlines that end a record
        solid = np.concatenate([[0], np.cumsum(data != _CR)])  # bytes but \r, so far
        found = []
        if len(ends):
            starts = np.concatenate([[0], ends[:-1] + 1])
            content = solid[ends] - solid[starts]
            content[0] += self._partial
            blank = content == 0  # Arrow skips a line of nothing (or only \r)
            after = np.searchsorted(newlines, ends) + self._lines + 2  # line after each end
            first_lines = np.concatenate([[self._start_line], after[:-1]])
            found.append(first_lines[~blank])
            self._start_line = int(after[-1])
            self._partial = int(solid[-1] - solid[int(ends[-1]) + 1])
        else:
            self._partial += int(solid[-1])
        self._lines += len(newlines)
        if self._done and self._partial:
            found.append(np.array([self._start_line]))  # a last record without a newline
            self._partial = 0
        if found:
            lines = np.concatenate(found).astype(np.int64)
            self._known = np.concatenate([self._known, lines])
            self._records += len(lines)


@dataclass(frozen=True)
class TextScan:
    """What one pass over a text file found: its longest line (bytes, without the newline)
    and that line's number; the offset of the first byte that is not UTF-8 (None: none)."""

    longest: int
    longest_at: int
    not_utf8_at: int | None


def scan_text(path: Path, *, utf8: bool = True) -> TextScan:
    """One pass, one chunk in memory at a time; stops at the first byte that is not UTF-8
    (``utf8=False`` does not look). ASCII chunks cost one ``isascii``; others Arrow's
    vectorised UTF-8 check."""
    longest, longest_at, partial, lines, offset = 0, 1, 0, 0, 0
    carry = b""  # the bytes of a character cut at a chunk's end
    with open_bytes(path) as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            if utf8:
                text = carry + chunk if carry else chunk
                if not text.isascii():
                    whole = memoryview(text)[: _whole_characters(text)]
                    if not _valid_utf8(whole):
                        bad = _undecodable_at(bytes(whole), "utf-8")
                        return TextScan(longest, longest_at, offset - len(carry) + bad)
                    carry = text[len(whole) :]
                else:
                    carry = b""
            ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == _NL)
            if len(ends):
                sizes = np.diff(ends, prepend=-1) - 1
                sizes[0] += partial
                top = int(np.argmax(sizes))
                if int(sizes[top]) > longest:
                    longest, longest_at = int(sizes[top]), lines + top + 1
                partial = len(chunk) - int(ends[-1]) - 1
                lines += len(ends)
            else:
                partial += len(chunk)
            offset += len(chunk)
    if carry:
        return TextScan(longest, longest_at, offset - len(carry))
    if partial > longest:
        longest, longest_at = partial, lines + 1
    return TextScan(longest, longest_at, None)


def _whole_characters(text: bytes) -> int:
    """Length of ``text`` without a multi-byte UTF-8 character cut at its end."""
    for back in range(1, min(4, len(text)) + 1):
        byte = text[-back]
        if byte < 0x80:
            return len(text)
        if byte >= 0xC0:  # a lead byte: how long its character is
            size = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(text) if back >= size else len(text) - back
    return len(text)  # continuation bytes only: the check says what is wrong


def _valid_utf8(text: bytes | memoryview) -> bool:
    offsets = np.array([0, len(text)], dtype=np.int64)
    array = pa.Array.from_buffers(
        pa.large_string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    )
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _undecodable_at(text: bytes, encoding: str) -> int:
    try:
        text.decode(encoding)
    except UnicodeDecodeError as exc:
        return exc.start
    return len(text)


def first_undecodable(path: Path, encoding: str) -> int | None:
    """Offset of the first byte that ``encoding`` cannot decode (error path only)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with open_bytes(path) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                pending = len(decoder.getstate()[0]) if hasattr(decoder, "getstate") else 0
                return max(offset - pending + exc.start, 0)
            if not chunk:
                return None
            offset += len(chunk)


@dataclass(frozen=True)
class Place:
    """Where a byte is: its 1-based line, the 0-based field of its record, whether that
    record is the first one (the header, when there is one), and its line's bytes."""

    line: int
    field: int
    first_record: bool
    text: bytes
    column: int  # 0-based offset of the byte in ``text``


def locate(path: Path, offset: int, *, delimiter: str = ",", quote_char: str | None = '"') -> Place:
    """The line and field of the byte at ``offset``, quotes followed as Arrow does (error
    path only: one pass over the bytes before it)."""
    quotes = _Quotes(None if quote_char is None else ord(quote_char), ord(delimiter))
    sep = ord(delimiter)
    lines, fields, records, partial, position = 0, 0, 0, 0, 0
    with open_bytes(path) as raw_fh:
        fh = _Forward(raw_fh)
        while position < offset and (raw := _read(fh, _CHUNK, quotes.quote)):
            data = np.frombuffer(raw, dtype=np.uint8)[: offset - position]
            marks = np.flatnonzero((data == _NL) | (data == sep))
            outside = quotes.outside(data, marks)
            newline = data[marks] == _NL
            lines += int(np.count_nonzero(newline))
            ends = marks[outside & newline]
            solid = np.concatenate([[0], np.cumsum(data != _CR)])
            if len(ends):
                content = solid[ends] - solid[np.concatenate([[0], ends[:-1] + 1])]
                content[0] += partial
                records += int(np.count_nonzero(content))
                partial = int(solid[-1] - solid[int(ends[-1]) + 1])
                fields = int(np.count_nonzero(outside & ~newline & (marks > ends[-1])))
            else:
                partial += int(solid[-1])
                fields += int(np.count_nonzero(outside & ~newline))
            position += len(data)
    start = max(offset - 200, 0)
    with open_bytes(path) as raw_fh:
        _skip(raw_fh, start)
        around = raw_fh.read(offset - start + 200)
    cut = offset - start
    head = around.rfind(b"\n", 0, cut) + 1
    tail = around.find(b"\n", cut)
    text = around[head : tail if tail >= 0 else len(around)].rstrip(b"\r")
    return Place(lines + 1, fields, records == 0, text, cut - head)


def _skip(fh: BinaryIO, n: int) -> None:
    """Read past ``n`` bytes (a compressed stream cannot seek)."""
    while n > 0 and (chunk := fh.read(min(n, _CHUNK))):
        n -= len(chunk)
