"""Timestamp and date columns: count, missing, earliest and latest."""

from __future__ import annotations

from typing import Any, Self

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TimestampAccumulator"]


class TimestampAccumulator:
    """Keeps min/max as microseconds since the epoch (UTC), rendered as ISO 8601."""

    kind = "timestamp"

    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.min: int | None = None
        self.max: int | None = None
        self.tz: str | None = None

    def update(self, batch: pa.Array | pa.ChunkedArray) -> None:
        tz = getattr(batch.type, "tz", None)
        self.tz = self.tz or tz
        micros = pc.cast(pc.cast(batch, pa.timestamp("us", tz)), pa.int64())
        nulls = micros.null_count
        self.count += len(micros) - nulls
        self.missing += nulls
        if len(micros) == nulls:
            return
        mm = pc.min_max(micros)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def merge(self, other: Self) -> Self:
        self.count += other.count
        self.missing += other.missing
        self.tz = self.tz or other.tz
        for attr, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if theirs is not None:
                setattr(self, attr, theirs if mine is None else pick(mine, theirs))
        return self

    def _iso(self, micros: int | None) -> str | None:
        if micros is None:
            return None
        return pa.scalar(micros, type=pa.timestamp("us", self.tz)).as_py().isoformat()

    def result(self) -> dict[str, Any]:
        return {
            "type": "timestamp",
            "count": self.count,
            "missing": self.missing,
            "min": self._iso(self.min),
            "max": self._iso(self.max),
        }
