"""String and bool column statistics: exact value counts while they fit, a sketch beyond.

Value counts live in a small Arrow table and merge with a group-by, so neither a batch nor
a merge walks rows in Python. Past ``max_distinct`` values only the most frequent are kept
(top values may then undercount) and the distinct count comes from a HyperLogLog.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.statistics.hll import HyperLogLog

__all__ = ["MAX_DISTINCT", "TOP_K", "StringAccumulator"]

#: Exact counts are kept for at most this many distinct values.
MAX_DISTINCT = 10_000
#: Entries in ``top_values``: enough for schema inference to see a whole small domain.
TOP_K = 50

_COUNTS = pa.schema([("value", pa.large_string()), ("count", pa.int64())])


class StringAccumulator:
    """Statistics of a string column, or of a bool one (values "true"/"false")."""

    def __init__(
        self, kind: Literal["string", "bool"] = "string", *, max_distinct: int = MAX_DISTINCT
    ) -> None:
        self.kind = kind
        self.max_distinct = max_distinct
        self.count = 0
        self.missing = 0
        self.total_length = 0
        self.truncated = False
        self.counts = _COUNTS.empty_table()
        self.hll = HyperLogLog()

    def update(self, batch: pa.Array | pa.ChunkedArray) -> None:
        values = pc.cast(batch, pa.large_string())
        nulls = values.null_count
        self.count += len(values) - nulls
        self.missing += nulls
        if len(values) == nulls:
            return
        if self.kind == "string":
            self.total_length += int(pc.sum(pc.utf8_length(values)).as_py() or 0)
        vc = pc.value_counts(values)
        table = pa.table({"value": vc.field("values"), "count": vc.field("counts")})
        table = table.filter(pc.is_valid(table["value"])).cast(_COUNTS)
        self.hll.update(table["value"])
        self._add_counts(table)

    def _add_counts(self, table: pa.Table) -> None:
        merged = (
            pa.concat_tables([self.counts, table])
            .group_by("value")
            .aggregate([("count", "sum")])
            .rename_columns(["value", "count"])
        )
        if merged.num_rows > self.max_distinct:
            self.truncated = True
            merged = self._sorted(merged).slice(0, self.max_distinct)
        self.counts = merged.cast(_COUNTS)

    @staticmethod
    def _sorted(table: pa.Table) -> pa.Table:
        return table.sort_by([("count", "descending"), ("value", "ascending")])

    def merge(self, other: Self) -> Self:
        self.count += other.count
        self.missing += other.missing
        self.total_length += other.total_length
        self.truncated = self.truncated or other.truncated
        self.hll.merge(other.hll)
        self._add_counts(other.counts)
        return self

    def _distinct(self) -> int:
        exact = self.counts.num_rows
        return max(exact, round(self.hll.estimate())) if self.truncated else exact

    def result(self) -> dict[str, Any]:
        top = self._sorted(self.counts).slice(0, TOP_K)
        out: dict[str, Any] = {
            "type": self.kind,
            "count": self.count,
            "missing": self.missing,
            "distinct": self._distinct(),
            "distinct_is_estimate": self.truncated,
            "top_values": [
                [v, c]
                for v, c in zip(top["value"].to_pylist(), top["count"].to_pylist(), strict=True)
            ],
        }
        if self.kind == "string":
            out["avg_length"] = self.total_length / self.count if self.count else None
        return out
