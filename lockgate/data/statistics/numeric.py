"""Numeric columns: exact counts, extremes and moments; quantiles exact or from KLL.

While a column has at most ``EXACT_VALUES`` distinct values (most ints, prices, counts,
codes) its value counts are kept exactly, and quantiles and histograms are exact
(``rank_error`` 0). Counting values is an Arrow hash kernel that releases the GIL and
runs several times faster than a KLL update. Past the bound the counts seed a
DataSketches KLL sketch (``k=200``) and its normalised rank error (about 1.3% at 99%
confidence) is reported as ``rank_error``. Int columns also report ``distinct``
(exact up to 100k values, then a theta-sketch estimate).
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from lockgate.data.arrays import to_numpy
from lockgate.data.statistics.frequency import MAX_DISTINCT, ValueCounts
from lockgate.data.statistics.histograms import (
    equal_mass,
    equal_width,
    exact_functions,
    plain,
    sketch_functions,
)
from lockgate.data.statistics.weighted import Moments, WeightedQuantiles

__all__ = ["KLL_K", "QUANTILES", "NumericAccumulator"]

#: The ranks reported under ``quantiles``.
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
KLL_K = 200
#: Distinct values up to which quantiles and histograms are exact.
EXACT_VALUES = MAX_DISTINCT
_REPLAY_CHUNK = 1 << 20


def _quantile_dict(values: list[float], rank_error: float) -> dict[str, Any]:
    out: dict[str, Any] = {str(r): plain(q) for r, q in zip(QUANTILES, values, strict=True)}
    out["rank_error"] = rank_error
    return out


def _replay(sketch: kll_doubles_sketch, values: pa.Array, counts: np.ndarray) -> None:
    """Feed every occurrence of exactly counted values to ``sketch``, about a million at a
    time, so that replaying counts taken over millions of rows stays small in memory."""
    v, c = to_numpy(values).astype(np.float64), counts.astype(np.int64)
    cum = np.cumsum(c)
    cuts = np.searchsorted(
        cum, np.arange(_REPLAY_CHUNK, int(cum[-1]) if len(cum) else 0, _REPLAY_CHUNK)
    )
    for part_v, part_c in zip(np.split(v, cuts), np.split(c, cuts), strict=True):
        if len(part_v):
            sketch.update(np.repeat(part_v, part_c))


class NumericAccumulator:
    """Statistics of an int or float column; ``kind`` becomes "float" when merged with one."""

    def __init__(self, kind: Literal["int", "float"] = "float", *, weighted: bool = False) -> None:
        self.kind = kind
        self.weighted = weighted
        self.count = 0
        self.missing = 0
        self.zeros = 0
        self.min: float | int | None = None
        self.max: float | int | None = None
        self.moments = Moments()
        self.sketch: kll_doubles_sketch | None = None  # once the exact counts overflow
        self.counts = self._new_counts(kind)
        self.weighted_moments = Moments() if weighted else None
        self.weighted_quantiles = WeightedQuantiles() if weighted else None

    @staticmethod
    def _new_counts(kind: str) -> ValueCounts:
        is_int = kind == "int"
        value_type = pa.int64() if is_int else pa.float64()
        return ValueCounts(
            value_type, max_distinct=EXACT_VALUES, keep=0, sketch_distinct=is_int, spill=True
        )

    def _take_spill(self) -> None:
        """The exact counts just overflowed: replay them into a new KLL sketch."""
        if self.counts.spilled is not None:
            values, counts = self.counts.spilled
            self.counts.spilled = None
            self.sketch = kll_doubles_sketch(KLL_K)
            _replay(self.sketch, values, counts)

    def update(self, batch: pa.Array | pa.ChunkedArray, weights: np.ndarray | None = None) -> None:
        """Add one column's values; NaN counts as missing; ``weights`` align with ``batch``."""
        if isinstance(batch, pa.ChunkedArray):
            batch = batch.combine_chunks()
        valid = batch.is_valid()
        if pa.types.is_floating(batch.type):
            valid = pc.and_kleene(valid, pc.invert(pc.is_nan(batch)))
        kept = batch.filter(valid) if valid.false_count else batch
        self.missing += len(batch) - len(kept)
        if len(kept) == 0:
            return
        x = to_numpy(kept).astype(np.float64, copy=False)
        self.count += len(x)
        self.zeros += len(x) - int(np.count_nonzero(x))
        mm = pc.min_max(kept)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.moments.update(x)
        if self.sketch is not None:
            # Arrow's zero-copy view is read-only and the KLL binding takes writable arrays
            self.sketch.update(x if x.flags.writeable else x.copy())
            if self.counts.theta is not None:
                self.counts.update(kept)
        else:
            self.counts.update(kept)
            self._take_spill()  # the batch itself is in the replayed counts
        if weights is not None and self.weighted_moments and self.weighted_quantiles:
            w = weights[to_numpy(valid)] if len(x) < len(batch) else weights
            self.weighted_moments.update(x, w)
            self.weighted_quantiles.update(x, w)

    def merge(self, other: Self) -> Self:
        """Fold ``other`` into this one and return self; int merged with float gives float."""
        for acc in (self, other):
            if acc.kind == "int" and "float" in (self.kind, other.kind):
                acc._become_float()
        self._merge_values(other)
        self.count += other.count
        self.missing += other.missing
        self.zeros += other.zeros
        for attr, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if theirs is not None:
                setattr(self, attr, theirs if mine is None else pick(mine, theirs))
        self.moments.merge(other.moments)
        if self.weighted_moments and other.weighted_moments:
            self.weighted_moments.merge(other.weighted_moments)
        if self.weighted_quantiles and other.weighted_quantiles:
            self.weighted_quantiles.merge(other.weighted_quantiles)
        return self

    def _become_float(self) -> None:
        """An int column merged with a float one: its counts are re-keyed as floats."""
        self.kind = "float"
        self.counts.value_type = pa.float64()
        self.counts.values = self.counts.values.cast(pa.float64())
        self.counts.sketch_distinct, self.counts.theta = False, None

    def _merge_values(self, other: NumericAccumulator) -> None:
        """Counts with counts, sketch with sketch; an exact side replays into the sketch."""
        if self.sketch is not None and other.sketch is None and len(other.counts.values):
            _replay(self.sketch, other.counts.values, other.counts.counts)
        self.counts.merge(other.counts)
        self._take_spill()
        if other.sketch is not None:
            if self.sketch is None:
                self.sketch = kll_doubles_sketch(KLL_K)
                if len(self.counts.values):
                    _replay(self.sketch, self.counts.values, self.counts.counts)
            self.sketch.merge(other.sketch)

    def result(self) -> dict[str, Any]:
        """Plain-Python summary: no NumPy scalars, no NaN (absent values are None)."""
        out: dict[str, Any] = {"type": self.kind, "count": self.count, "missing": self.missing}
        empty = self.count == 0
        cast = int if self.kind == "int" else float
        out.update(
            mean=None if empty else plain(self.moments.mean),
            std=plain(self.moments.std()),
            min=None if self.min is None else plain(cast(self.min)),
            max=None if self.max is None else plain(cast(self.max)),
            zeros=self.zeros,
        )
        if empty:
            out.update(median=None, quantiles=None, histogram=[], quantile_histogram=[])
        else:
            out.update(self._distribution(float(self.min), float(self.max)))  # type: ignore[arg-type]
        if self.kind == "int":
            out.update(distinct=self.counts.distinct(), distinct_is_estimate=not self.counts.exact)
        if self.weighted_moments is not None and self.weighted_quantiles is not None:
            out["weighted"] = self._weighted()
        return out

    def _distribution(self, lo: float, hi: float) -> dict[str, Any]:
        """Quantiles and both histograms: exact from the counts, or from the sketch."""
        if self.sketch is None:
            values = to_numpy(self.counts.values).astype(np.float64)
            quantile_fn, cdf = exact_functions(values, self.counts.counts)
            rank_error = 0.0
        else:
            quantile_fn, cdf = sketch_functions(self.sketch, self.count)
            rank_error = float(self.sketch.normalized_rank_error(False))
        quantiles = _quantile_dict(quantile_fn(list(QUANTILES)), rank_error)
        return {
            "median": quantiles["0.5"],
            "quantiles": quantiles,
            "histogram": equal_width(cdf, lo, hi, self.count),
            "quantile_histogram": equal_mass(quantile_fn, cdf, lo, hi, self.count),
        }

    def _weighted(self) -> dict[str, Any]:
        wm = self.weighted_moments
        assert wm is not None and self.weighted_quantiles is not None
        qs = self.weighted_quantiles.quantiles(list(QUANTILES))
        return {
            "count": plain(wm.weight),
            "mean": plain(wm.mean) if wm.weight else None,
            "std": plain(wm.std()),
            "quantiles": None if qs is None else _quantile_dict(*qs),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["sketch"] = None if self.sketch is None else self.sketch.serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if state["sketch"] is not None:
            state["sketch"] = kll_doubles_sketch.deserialize(state["sketch"])
        self.__dict__.update(state)
