"""Slice specs turned into partitions of the eval rows.

A spec is a feature name (one slice per value), a list of names (crossed slices) or
``{"feature": name, "quantiles": q}`` (q buckets of a numeric feature, by its quantiles on the
eval rows). Each spec becomes one :class:`Partition`: a slice index per row, so that every
metric of every slice of a spec is one grouped computation over all rows, not one per slice.
A missing value (null, or NaN in a float column) is the value None and sorts last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import ColumnNotFoundError, ConfigError
from lockgate.evaluation.results import OVERALL, SliceKey

SliceSpec = str | Sequence[str] | Mapping[str, Any]


@dataclass
class Partition:
    """Every row's slice: ``codes[i]`` indexes ``keys``; each slice has at least one row."""

    codes: np.ndarray
    keys: list[SliceKey]

    @property
    def n_slices(self) -> int:
        return len(self.keys)


def overall(n_rows: int) -> Partition:
    return Partition(np.zeros(n_rows, dtype=np.int64), [OVERALL])


def partitions(features: pa.Table, slice_by: Sequence[SliceSpec], n_rows: int) -> list[Partition]:
    """One partition for the whole split, then one per spec, in the order given."""
    out = [overall(n_rows)]
    for spec in slice_by:
        out.append(_partition(features, spec))
    return out


def _column(features: pa.Table, name: Any) -> pa.Array:
    if not isinstance(name, str):
        raise ConfigError(f"a slice feature must be a column name; got {name!r}")
    if name not in features.column_names:
        raise ColumnNotFoundError(name, features.column_names, where="the eval split (slice_by)")
    array = features.column(name).combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type):  # NaN is missing too, as in pandas
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    return array


def _values(array: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Codes into the sorted distinct values (None last, if any row is missing)."""
    encoded = pc.dictionary_encode(array)
    raw = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = encoded.dictionary.to_pylist()
    order = sorted(range(len(uniques)), key=lambda i: uniques[i])
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(uniques))
    rank[-1] = len(uniques)  # -1 (missing) indexes the last entry
    values = [uniques[i] for i in order]
    if (raw == -1).any():
        values.append(None)
    return rank[raw], values


def _buckets(array: pa.Array, name: str, q: Any) -> tuple[np.ndarray, list[Any]]:
    if not isinstance(q, int) or isinstance(q, bool) or q < 1:
        raise ConfigError(
            f"'quantiles' of slice feature '{name}' must be an integer >= 1; got {q!r}"
        )
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        raise ConfigError(f"quantile slices need a numeric feature; '{name}' has type {array.type}")
    x = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    missing = np.isnan(x)
    present = x[~missing]
    edges = (
        np.unique(np.quantile(present, np.linspace(0.0, 1.0, q + 1)))
        if present.size
        else np.array([])
    )
    labels: list[Any] = []
    codes = np.full(x.shape[0], -1, dtype=np.int64)
    if edges.size:
        n_buckets = max(edges.size - 1, 1)
        inner = edges[1:-1]
        codes[~missing] = np.searchsorted(inner, present, side="right")
        for b in range(n_buckets):
            lo = edges[b]
            hi = edges[min(b + 1, edges.size - 1)]
            close = "]" if b == n_buckets - 1 else ")"
            labels.append(f"[{lo:.6g}, {hi:.6g}{close}")
    if missing.any():
        codes[missing] = len(labels)
        labels.append(None)
    return codes, labels


def _partition(features: pa.Table, spec: SliceSpec) -> Partition:
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"feature", "quantiles"}
        if "feature" not in spec or "quantiles" not in spec or unknown:
            raise ConfigError(
                f"a quantile slice is {{'feature': name, 'quantiles': q}}; got {dict(spec)!r}"
            )
        name = spec["feature"]
        codes, labels = _buckets(_column(features, name), name, spec["quantiles"])
        return _compact(codes[:, None], [[(name, v) for v in labels]])
    names = [spec] if isinstance(spec, str) else list(spec)
    if not names:
        raise ConfigError("an empty list is not a slice spec; name at least one feature")
    columns, values = [], []
    for name in names:
        codes, vals = _values(_column(features, name))
        columns.append(codes)
        values.append([(name, v) for v in vals])
    return _compact(np.stack(columns, axis=1), values)


def _compact(codes: np.ndarray, values: list[list[tuple[str, Any]]]) -> Partition:
    """Crossed codes -> the combinations present, in lexicographic order of the values."""
    sizes = np.array([len(v) for v in values], dtype=np.int64)
    flat = np.ravel_multi_index(tuple(codes.T), tuple(sizes))
    present, inverse = np.unique(flat, return_inverse=True)
    keys: list[SliceKey] = []
    combos = np.stack(np.unravel_index(present, tuple(sizes)), axis=1)
    for combo in combos:
        keys.append(tuple(values[f][int(c)] for f, c in enumerate(combo)))
    return Partition(inverse.astype(np.int64).reshape(-1), keys)
