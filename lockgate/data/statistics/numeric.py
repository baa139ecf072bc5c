"""Numeric column statistics that merge exactly (counts, moments) or with a bound (quantiles).

Mean and variance are merged with Chan et al.'s parallel formula, so shards computed on
different workers combine to the same numbers as one pass (up to float rounding). Quantiles
and the histogram come from a KLL sketch whose rank error is reported with them.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

__all__ = ["QUANTILES", "NumericAccumulator"]

#: The ranks reported under ``quantiles``.
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BUCKETS = 10
KLL_K = 200


def _plain(x: float | int | None) -> float | int | None:
    """A JSON-safe number: Python int/float, non-finite as None."""
    if x is None:
        return None
    if isinstance(x, int | np.integer):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


class NumericAccumulator:
    """Statistics of an int or float column; ``kind`` becomes "float" when merged with one."""

    def __init__(self, kind: Literal["int", "float"] = "float") -> None:
        self.kind = kind
        self.count = 0
        self.missing = 0
        self.zeros = 0
        self.min: float | int | None = None
        self.max: float | int | None = None
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean
        self.sketch = kll_doubles_sketch(KLL_K)

    def update(self, batch: pa.Array | pa.ChunkedArray) -> None:
        """Add one column's values; NaN counts as missing."""
        valid = pc.is_valid(batch)
        if pa.types.is_floating(batch.type):
            valid = pc.and_(valid, pc.invert(pc.is_nan(batch)))
        kept = batch.filter(valid)
        native = (
            kept.to_numpy()
            if isinstance(kept, pa.ChunkedArray)
            else kept.to_numpy(zero_copy_only=False)
        )
        self.missing += len(batch) - len(native)
        if len(native) == 0:
            return
        x = native.astype(np.float64)
        other = NumericAccumulator(self.kind)
        other.count = len(x)
        other.zeros = int(np.count_nonzero(x == 0))
        lo, hi = native.min(), native.max()
        cast = int if self.kind == "int" else float
        other.min, other.max = cast(lo), cast(hi)
        other.mean = float(x.mean())
        other.m2 = float(((x - other.mean) ** 2).sum())
        self._merge_moments(other)
        self.sketch.update(x)

    def _merge_moments(self, other: NumericAccumulator) -> None:
        n = self.count + other.count
        if other.count == 0:
            return
        if self.count == 0:
            self.mean, self.m2 = other.mean, other.m2
        else:
            delta = other.mean - self.mean
            self.mean += delta * other.count / n
            self.m2 += other.m2 + delta * delta * self.count * other.count / n
        self.count = n
        self.zeros += other.zeros
        self.min = other.min if self.min is None else min(self.min, other.min)  # type: ignore[type-var]
        self.max = other.max if self.max is None else max(self.max, other.max)  # type: ignore[type-var]

    def merge(self, other: Self) -> Self:
        """Fold ``other`` into this one and return self; int merged with float gives float."""
        if other.kind == "float":
            self.kind = "float"
        self.missing += other.missing
        self._merge_moments(other)
        self.sketch.merge(other.sketch)
        return self

    def result(self) -> dict[str, Any]:
        """Plain-Python summary: no NumPy scalars, no NaN (absent values are None)."""
        out: dict[str, Any] = {"type": self.kind, "count": self.count, "missing": self.missing}
        empty = self.count == 0
        std = math.sqrt(self.m2 / self.count) if not empty else None
        out.update(
            mean=None if empty else _plain(self.mean),
            std=_plain(std),
            min=_plain(self.min),
            max=_plain(self.max),
            zeros=self.zeros,
        )
        if empty:
            out.update(median=None, quantiles=None, histogram=[])
            return out
        qs = self.sketch.get_quantiles(list(QUANTILES), inclusive=True)
        quantiles: dict[str, float | None] = {
            str(r): _plain(q) for r, q in zip(QUANTILES, qs, strict=True)
        }  # type: ignore[misc]
        quantiles["rank_error"] = float(self.sketch.normalized_rank_error(False))
        out.update(median=quantiles["0.5"], quantiles=quantiles, histogram=self._histogram())
        return out

    def _histogram(self) -> list[dict[str, float | int]]:
        lo, hi = float(self.min), float(self.max)  # type: ignore[arg-type]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return []
        if lo == hi:
            return [{"low": lo, "high": hi, "count": self.count}]
        edges = np.linspace(lo, hi, HISTOGRAM_BUCKETS + 1)
        cdf = np.asarray(self.sketch.get_cdf(edges[1:-1].tolist(), inclusive=True))[:-1]
        cum = np.concatenate([[0], np.rint(cdf * self.count).astype(np.int64), [self.count]])
        counts = np.diff(cum)
        return [
            {"low": float(a), "high": float(b), "count": int(c)}
            for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["sketch"] = self.sketch.serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["sketch"] = kll_doubles_sketch.deserialize(state["sketch"])
        self.__dict__.update(state)
