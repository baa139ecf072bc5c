"""Timestamp and date columns: count, missing, earliest, latest and an exact histogram.

Values are kept as microseconds since the epoch (UTC); the histogram counts them exactly on
an aligned grid (``AlignedHistogram``) and reports ISO 8601 bucket bounds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.arrays import to_numpy
from lockgate.data.statistics.histograms import TIME_WIDTHS, AlignedHistogram

__all__ = ["TimestampAccumulator"]

_EPOCH = datetime(1970, 1, 1)


class TimestampAccumulator:
    """Keeps min/max as microseconds since the epoch (UTC), rendered as ISO 8601."""

    kind = "timestamp"

    def __init__(self, *, weighted: bool = False) -> None:
        self.weighted = weighted
        self.count = 0
        self.missing = 0
        self.weight = 0.0
        self.min: int | None = None
        self.max: int | None = None
        self.tz: str | None = None
        self.histogram = AlignedHistogram(TIME_WIDTHS)

    def update(self, batch: pa.Array | pa.ChunkedArray, weights: np.ndarray | None = None) -> None:
        tz = getattr(batch.type, "tz", None)
        self.tz = self.tz or tz
        micros = pc.cast(pc.cast(batch, pa.timestamp("us", tz)), pa.int64())
        if isinstance(micros, pa.ChunkedArray):
            micros = micros.combine_chunks()
        nulls = micros.null_count
        self.count += len(micros) - nulls
        self.missing += nulls
        if len(micros) == nulls:
            return
        if weights is not None:
            self.weight += float(weights[to_numpy(micros.is_valid())].sum())
        x = to_numpy(micros.drop_null())
        lo, hi = int(x.min()), int(x.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.histogram.update(x)

    def merge(self, other: Self) -> Self:
        self.count += other.count
        self.missing += other.missing
        self.weight += other.weight
        self.tz = self.tz or other.tz
        for attr, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if theirs is not None:
                setattr(self, attr, theirs if mine is None else pick(mine, theirs))
        self.histogram.merge(other.histogram)
        return self

    def _iso(self, micros: int | None) -> str | None:
        if micros is None:
            return None
        if self.tz is None:  # what Arrow's scalar gives, without pa.scalar's pandas import
            return (_EPOCH + timedelta(microseconds=micros)).isoformat()
        return pa.scalar(micros, type=pa.timestamp("us", self.tz)).as_py().isoformat()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "timestamp",
            "count": self.count,
            "missing": self.missing,
            "min": self._iso(self.min),
            "max": self._iso(self.max),
            "histogram": [
                {"low": self._iso(lo), "high": self._iso(hi), "count": c}
                for lo, hi, c in self.histogram.buckets()
            ],
        }
        if self.weighted:
            out["weighted"] = {"count": self.weight}
        return out
