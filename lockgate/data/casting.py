"""Text to numbers, per batch, finding the values that do not parse instead of failing.

Arrow's casts stop at the first bad value and do not say which row it was. Polars' non-strict
cast turns a bad value into a null; comparing null masks before and after finds every bad
value of a batch at once, so a reader can name its row or set it aside.

Arrow's cast is tried first, as it is several times faster: where it succeeds, Polars would
have parsed every value to the same number (the two agree on signs, exponents, ``inf`` and
``nan``, and both refuse whitespace, thousands separators and other digits; Arrow alone
takes hexadecimal ints, ``0x10``, which a float cast refuses). Only a batch with a value
Arrow refuses goes through Polars.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import polars as pl

__all__ = ["NUMERIC_SHARE", "cast_checked", "infer_text_type", "needs_float", "widen"]

#: A text column is numeric when at least this share of its values parse as numbers; the
#: rest are then bad values to report, not a reason to read the whole column as text.
NUMERIC_SHARE = 0.95

_NUMBERS = (pa.int64(), pa.float64())


@cache
def _polars() -> Any:
    """Polars, imported on first use: a Parquet read never needs it (0.2 s of start-up)."""
    import polars

    return polars


def _series(arr: pa.Array) -> pl.Series:
    series = _polars().from_arrow(arr)
    assert isinstance(series, _polars().Series)
    return series


def cast_checked(arr: pa.Array, target: pa.DataType) -> tuple[pa.Array, np.ndarray | None]:
    """``arr`` cast to ``target``, and a mask of the values that did not parse (None: all did).

    A bad value becomes null in the result.
    """
    if arr.type == target:
        return arr, None
    if pa.types.is_null(target):
        return pa.nulls(len(arr)), None
    if target in _NUMBERS and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        fast = _arrow_cast(arr, target)
        if fast is not None:
            return fast, None
        pl = _polars()
        series = _series(arr)
        cast = series.cast(pl.Int64 if target == pa.int64() else pl.Float64, strict=False)
        bad = (cast.is_null() & series.is_not_null()).to_numpy()
        return cast.to_arrow().cast(target), (bad if bad.any() else None)
    try:
        return arr.cast(target), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return pa.nulls(len(arr), type=target), (bad if bad.any() else None)


def _arrow_cast(arr: pa.Array, target: pa.DataType) -> pa.Array | None:
    """Text cast to int64 or float64 by Arrow, or None when a value does not parse as
    Polars would parse it (see the module docstring)."""
    try:
        if target == pa.int64():
            arr.cast(pa.float64())  # refuses hexadecimal, which Arrow's int cast takes
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


#: Every text Polars parses as a float matches (and more): a sign, digits with at most one
#: point, an exponent; or inf, infinity, nan in any case.
_FLOAT_LIKE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(?i:inf|infinity|nan)$"


def infer_text_type(arr: pa.Array) -> pa.DataType | None:
    """int64, float64 or string for a text column by the majority rule; None if all null."""
    present = len(arr) - arr.null_count
    if present == 0:
        return None
    like = pc.sum(pc.match_substring_regex(arr, _FLOAT_LIKE)).as_py() or 0
    if like < NUMERIC_SHARE * present:  # fewer parse as floats still: text, without Polars
        return pa.string()
    pl = _polars()
    series = _series(arr)
    floats = len(series) - series.cast(pl.Float64, strict=False).null_count()
    if floats < NUMERIC_SHARE * present:
        return pa.string()
    ints = len(series) - series.cast(pl.Int64, strict=False).null_count()
    return pa.int64() if ints == floats else pa.float64()


def widen(current: pa.DataType | None, seen: pa.DataType | None) -> pa.DataType | None:
    """The type a column keeps once ``seen`` turns up: null fills in, int widens to float;
    anything else keeps the first type (the values that do not fit are bad values)."""
    if current is None or pa.types.is_null(current):
        return None if seen is None or pa.types.is_null(seen) else seen
    if pa.types.is_integer(current) and seen is not None and pa.types.is_floating(seen):
        return pa.float64()
    return current


def needs_float(arr: pa.Array) -> bool:
    """True when some text value parses as a float but not as an int (``"1.5"``)."""
    try:  # every value an int for Arrow: each one an int, or a hexadecimal one, for Polars
        arr.cast(pa.int64())
        return False
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    pl = _polars()
    series = _series(arr)
    floats = series.cast(pl.Float64, strict=False).is_not_null()
    ints = series.cast(pl.Int64, strict=False).is_not_null()
    return bool((floats & ~ints).any())
