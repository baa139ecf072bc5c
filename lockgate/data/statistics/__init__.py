"""Mergeable column statistics: computed per shard anywhere, merged on the driver.

Result shape (fields that do not apply to a type are left out)::

    {"num_rows": N, "features": {name: {"type": "int" | "float" | "string" | "bool" |
     "timestamp" | "null", "count", "missing", ...}}}
"""

from lockgate.data.statistics.categorical import StringAccumulator
from lockgate.data.statistics.hll import HyperLogLog
from lockgate.data.statistics.numeric import QUANTILES, NumericAccumulator
from lockgate.data.statistics.table import (
    NullAccumulator,
    TableStatisticsAccumulator,
    accumulate_files,
    column_kind,
    compute_statistics,
)
from lockgate.data.statistics.temporal import TimestampAccumulator

__all__ = [
    "QUANTILES",
    "HyperLogLog",
    "NullAccumulator",
    "NumericAccumulator",
    "StringAccumulator",
    "TableStatisticsAccumulator",
    "TimestampAccumulator",
    "accumulate_files",
    "column_kind",
    "compute_statistics",
]
