"""Arrow arrays to NumPy and back without pandas.

pyarrow imports pandas (about 0.1-0.2 s) the first time ``pa.array``, ``pa.scalar`` or
``Array.to_numpy`` runs, to check whether its input is a pandas object: time that a short
``lockgate stats`` would spend on nothing. These helpers go through the buffers instead, for
the cases the statistics meet: 1-d numbers and bools without nulls.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["bool_array", "empty", "numeric_array", "to_numpy"]


def bool_array(mask: np.ndarray) -> pa.BooleanArray:
    """``pa.array(mask)`` for a 1-d NumPy bool array."""
    mask = np.asarray(mask, dtype=bool)
    bits = np.packbits(mask, bitorder="little")
    array = pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])
    assert isinstance(array, pa.BooleanArray)
    return array


def empty(dtype: pa.DataType) -> pa.Array:
    """``pa.array([], dtype)``."""
    return pa.nulls(0, dtype)


def numeric_array(values: np.ndarray) -> pa.Array:
    """``pa.array(values)`` for a 1-d NumPy array of ints or floats; it shares ``values``'
    memory when contiguous."""
    values = np.ascontiguousarray(values)
    dtype = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(dtype, len(values), [None, pa.py_buffer(values)])


def to_numpy(array: pa.Array, fill: int | float | None = None) -> np.ndarray:
    """``array.to_numpy()`` of an int, float or bool array without nulls (zero-copy but for
    bools, read-only); with ``fill``, nulls read as ``fill``. Other arrays: Arrow's own."""
    t = array.type
    n, offset = len(array), array.offset
    nulls = array.null_count
    plain = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    if not plain or (nulls and fill is None):
        if nulls and fill is not None:
            return np.asarray(array.fill_null(fill).to_numpy(zero_copy_only=False))
        return np.asarray(array.to_numpy(zero_copy_only=False))
    validity, data = array.buffers()[:2]
    if pa.types.is_boolean(t):
        bits = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        values = np.unpackbits(bits, count=offset + n, bitorder="little")[offset:].view(bool)
    else:
        dtype = np.dtype(t.to_pandas_dtype())
        values = np.frombuffer(data, dtype=dtype, count=offset + n)[offset:]
    if nulls and fill is not None:
        bits = np.frombuffer(validity, dtype=np.uint8)
        valid = np.unpackbits(bits, count=offset + n, bitorder="little")[offset:].view(bool)
        values = np.where(valid, values, fill)
    return values
