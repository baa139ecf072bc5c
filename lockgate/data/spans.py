"""Spans: numbered drops of the same data set (``data/span-{SPAN}/``, ``trips-{SPAN}.csv``).

A pipeline names the pattern once; each run ingests the latest span, or the one it is
asked for, and the Examples artifact records which, so statistics and drift can compare
span with span.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from lockgate.errors import ConfigError, DataFileError

__all__ = ["SPAN", "find_spans", "has_span", "resolve_span"]

SPAN = "{SPAN}"


def has_span(pattern: str | Path) -> bool:
    """True when ``pattern`` holds ``{SPAN}``."""
    return SPAN in str(pattern)


def find_spans(pattern: str | Path) -> dict[int, Path]:
    """{span number: path} of everything on disk that matches ``pattern``."""
    text = str(pattern).rstrip("/")
    pieces = text.split(SPAN)
    wildcard = "*".join(glob.escape(p) for p in pieces)
    regex = re.compile(
        re.escape(pieces[0])
        + "".join(
            (r"(?P<span>\d+)" if i == 0 else r"(?P=span)") + re.escape(p)
            for i, p in enumerate(pieces[1:])
        )
    )
    found: dict[int, Path] = {}
    for candidate in glob.glob(wildcard):
        match = regex.fullmatch(candidate.rstrip("/"))
        if match:
            found[int(match.group("span"))] = Path(candidate)
    return found


def resolve_span(pattern: str | Path, span: int | None = None) -> tuple[Path, int]:
    """(path, span) for ``pattern``: the given span, or the latest (highest) when None.

    A path without ``{SPAN}`` is the span the caller says it is (0 by default): a label.
    """
    if span is not None and (isinstance(span, bool) or not isinstance(span, int) or span < 0):
        raise ConfigError(f"The 'span' parameter must be a non-negative int. Got {span!r} instead.")
    if not has_span(pattern):
        return Path(pattern), span or 0
    found = find_spans(pattern)
    if not found:
        raise DataFileError(
            f"no span matches {pattern}; expected files or folders where {SPAN} is a number",
            path=str(pattern),
            hint="check the pattern; it is relative to the project folder",
        )
    if span is None:
        span = max(found)
    if span not in found:
        raise DataFileError(
            f"span {span} of {pattern} does not exist; spans are {sorted(found)}",
            path=str(pattern),
            hint=f"pass span=None for the latest ({max(found)})",
        )
    return found[span], span
