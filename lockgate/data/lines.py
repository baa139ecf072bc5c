"""From Arrow's record numbers to the lines an editor shows.

Arrow numbers the records of a CSV file (the header is record 1) and does not count blank
lines, so after a blank line its number is not the line number. ``LineIndex`` scans the
file's bytes forward once, with NumPy, and maps record numbers to line numbers. A quoted
value that spans lines still counts as several lines here, so a line after one is off by
those extra lines; such files are rare, and the row text in the message finds the row.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np

__all__ = ["LineIndex", "first_invalid_utf8_line", "longest_line"]

_CHUNK = 1 << 20


class LineIndex:
    """Record number -> 1-based line, for record numbers asked in increasing order."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0  # bytes consumed
        self._lines = 0  # complete lines consumed
        self._records = 0  # non-blank lines consumed
        self._partial = 0  # length of the line being read so far
        self._known = np.zeros(0, dtype=np.int64)  # lines of records _first.._records
        self._first = 1
        self._done = False

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

    def _trim(self, lowest: int) -> None:
        drop = max(0, min(lowest - self._first, len(self._known)))
        self._known, self._first = self._known[drop:], self._first + drop

    def _advance(self) -> None:
        with self._path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(_CHUNK)
        self._offset += len(chunk)
        self._done = len(chunk) < _CHUNK
        data = np.frombuffer(chunk, dtype=np.uint8)
        ends = np.flatnonzero(data == 10)
        tail = len(data) - (int(ends[-1]) + 1 if len(ends) else 0)
        if self._done and (tail or (self._partial and not len(ends))):
            ends = np.append(ends, len(data))  # a last line without a newline
            tail = 0
        if not len(ends):
            self._partial += len(data)
            return
        starts = np.concatenate([[0], ends[:-1] + 1])
        lengths = ends - starts
        lengths[0] += self._partial
        before = data[np.clip(ends - 1, 0, max(len(data) - 1, 0))] if len(data) else ends * 0
        blank = (lengths == 0) | ((lengths == 1) & (ends > 0) & (before == 13))
        found = (self._lines + 1 + np.flatnonzero(~blank)).astype(np.int64)
        self._known = np.concatenate([self._known, found])
        self._records += len(found)
        self._lines += len(ends)
        self._partial = tail


def first_invalid_utf8_line(path: Path) -> int | None:
    """1-based line of the first byte sequence that is not UTF-8 (error path only)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return lines + chunk[: max(exc.start, 0)].count(b"\n") + 1
            lines += chunk.count(b"\n")
    return None


def longest_line(path: Path) -> int:
    """Length in bytes of the longest line, scanned in chunks (memory stays one chunk)."""
    longest, partial = 0, 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK * 8):
            ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            if not len(ends):
                partial += len(chunk)
                continue
            first = partial + int(ends[0])
            inner = int(np.diff(ends).max()) - 1 if len(ends) > 1 else 0
            longest = max(longest, first, inner)
            partial = len(chunk) - int(ends[-1]) - 1
    return max(longest, partial)
