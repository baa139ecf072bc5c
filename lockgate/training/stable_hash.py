"""FNV-1a (64-bit) of strings, vectorised: the same value on every machine and process.

Python's ``hash()`` is salted per process, and Arrow's and Polars' hashes may change between
versions; a hashed feature must land in the same bucket in training and in a server started
years later. FNV-1a is tiny and fixed by its definition, so it is computed here with NumPy,
one byte position at a time across all (distinct) strings.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["fnv1a64", "hash_buckets"]

_OFFSET = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)


def fnv1a64(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 FNV-1a of each string's UTF-8 bytes; nulls hash as the empty string."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    arr = pc.fill_null(pc.cast(texts, pa.large_string()), "")
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data_buffer = arr.buffers()[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, np.uint8)
    )
    starts, lengths = offsets[:-1], np.diff(offsets)
    out = np.full(n, _OFFSET, dtype=np.uint64)
    for position in range(int(lengths.max()) if n else 0):
        live = np.flatnonzero(lengths > position)
        byte = data[starts[live] + position].astype(np.uint64)
        out[live] = (out[live] ^ byte) * _PRIME
    return out


def hash_buckets(texts: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """``fnv1a64(text) % buckets`` as int64, hashing each distinct string once."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    encoded = pc.dictionary_encode(pc.fill_null(pc.cast(texts, pa.large_string()), ""))
    per_value = fnv1a64(encoded.dictionary) % np.uint64(buckets)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return per_value.astype(np.int64)[indices]
