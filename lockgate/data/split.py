"""A deterministic, hash-based train/eval split.

A row's side must not change when the data is re-read on another machine, by another
process, or after a library upgrade; otherwise evaluation rows leak into training between
runs. So the hash is our own, written out in NumPy, over each value's *text* form (the
same value read as int from CSV or as string from JSON hashes the same):

1. every column is cast to ``large_string``; a null gets a fixed hash of its own; a list
   hashes as the sequence of its values' hashes, as a string does its bytes (so ``[1, 2]``,
   ``[2, 1]``, ``[12]`` and ``[]`` all differ, and an empty list is not a null one);
2. each string is hashed as ``sum((byte_i + 1) * P**i) mod 2**64``, mixed with its length
   (vectorised: per-byte terms, a wrapping cumulative sum, one subtraction per row);
3. the columns, taken in name order so that reordering columns changes nothing, are
   combined as ``h = h * Q + col``, seeded with the salt's hash;
4. a splitmix64 finaliser spreads the bits so that ``h % 10_000`` is uniform.

Not ``hash()`` (salted per process) and not Polars' ``hash_rows`` (may change between
releases). A regression test pins the value of a fixed table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import ColumnNotFoundError, ConfigError

__all__ = ["hash_strings", "split_table", "stable_row_hash"]

_P = np.uint64(0x100000001B3)  # FNV-1a 64 prime: a good odd multiplier
_Q = np.uint64(0x9E3779B97F4A7C15)  # golden ratio: combines columns
_NULL = np.uint64(0x6A09E667F3BCC908)  # fixed hash for a null value
_LIST = np.uint64(0xBB67AE8584CAA73B)  # mixed into a list's hash: a list is not a string
_BUCKETS = 10_000


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (Steele et al. 2014), on an array so that it wraps silently."""
    z = z.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _hash_string_array(arr: pa.Array) -> np.ndarray:
    arr = pc.cast(arr, pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)[start:end]
        if data_buf is not None
        else np.zeros(0, dtype=np.uint8)
    )
    lengths = np.diff(offsets)
    rel = offsets - start
    # position of every byte within its own string
    pos = np.arange(end - start, dtype=np.int64) - np.repeat(rel[:-1], lengths)
    max_len = int(lengths.max()) if n else 0
    powers = np.cumprod(np.full(max(max_len, 1), _P, dtype=np.uint64))
    powers = np.concatenate([np.ones(1, dtype=np.uint64), powers[:-1]])
    terms = (data.astype(np.uint64) + np.uint64(1)) * powers[pos]
    csum = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(terms, dtype=np.uint64)])
    h = csum[rel[1:]] - csum[rel[:-1]]
    h = _mix(h ^ (lengths.astype(np.uint64) + _Q))
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return np.where(valid, h, _NULL).astype(np.uint64)


def _hash_list_array(arr: pa.Array) -> np.ndarray:
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    lengths = lengths.astype(np.int64)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    values = _hash_array(pc.list_flatten(arr))
    rel = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])
    pos = np.arange(int(rel[-1]), dtype=np.int64) - np.repeat(rel[:-1], lengths)
    powers = np.cumprod(np.full(max(int(lengths.max()), 1), _P, dtype=np.uint64))
    powers = np.concatenate([np.ones(1, dtype=np.uint64), powers[:-1]])
    terms = values * powers[pos]
    csum = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(terms, dtype=np.uint64)])
    h = _mix((csum[rel[1:]] - csum[rel[:-1]]) ^ (lengths.astype(np.uint64) + _LIST))
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return np.where(valid, h, _NULL).astype(np.uint64)


def _hash_array(arr: pa.Array) -> np.ndarray:
    t = pa.types
    if t.is_list(arr.type) or t.is_large_list(arr.type) or t.is_fixed_size_list(arr.type):
        return _hash_list_array(arr)
    return _hash_string_array(arr)


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Stable uint64 hash of each value's text form (nulls get a fixed hash; a list, of the
    sequence of its values' hashes)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = [_hash_array(c) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def stable_row_hash(
    table: pa.Table, columns: list[str] | None = None, *, salt: str = ""
) -> np.ndarray:
    """Return one uint64 per row, the same on every machine, process and library version."""
    names = sorted(table.column_names) if columns is None else list(columns)
    for name in names:
        if name not in table.column_names:
            raise ColumnNotFoundError(name, table.column_names, where="the table to hash")
    seed = hash_strings(pa.array([salt], type=pa.large_string()))[0:1]
    h = np.repeat(seed, table.num_rows)
    for name in names:
        h = h * _Q + hash_strings(table.column(name))
    return _mix(h)


def split_table(
    table: pa.Table, *, eval_fraction: float = 0.2, salt: str = ""
) -> tuple[pa.Table, pa.Table]:
    """Split rows into (train, eval): a row goes to eval when its hash bucket is low.

    The salt gives a different, equally stable split (e.g. one per experiment).
    """
    if (
        isinstance(eval_fraction, bool)
        or not isinstance(eval_fraction, int | float)
        or not 0.0 < eval_fraction < 1.0
    ):
        raise ConfigError(
            "The 'eval_fraction' parameter of split_table must be a float in the open "
            f"interval (0, 1). Got {eval_fraction!r} instead.",
            hint="e.g. eval_fraction=0.2 for 80% train, 20% eval",
        )
    bucket = stable_row_hash(table, salt=salt) % np.uint64(_BUCKETS)
    to_eval = pa.array(bucket < np.uint64(round(eval_fraction * _BUCKETS)))
    return table.filter(pc.invert(to_eval)), table.filter(to_eval)
