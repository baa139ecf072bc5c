"""Mergeable per-feature statistics, TFDV's set: shards computed anywhere, merged anywhere.

The result shape is the "Statistics" contract of docs/architecture.md. Sketches are Apache
DataSketches': KLL for quantiles and histograms of numbers (``rank_error`` reported), theta
for distinct counts past 100k values (±2% at 99%); top values past that bound are
Misra-Gries lower bounds short by at most N / 10_001.
"""

from lockgate.data.statistics.categorical import StringAccumulator
from lockgate.data.statistics.columns import NullAccumulator, column_kind
from lockgate.data.statistics.compute import (
    accumulate_files,
    compute_statistics,
    statistics_of_table,
)
from lockgate.data.statistics.lists import ListAccumulator
from lockgate.data.statistics.numeric import QUANTILES, NumericAccumulator
from lockgate.data.statistics.table import TableStatisticsAccumulator
from lockgate.data.statistics.temporal import TimestampAccumulator

__all__ = [
    "QUANTILES",
    "ListAccumulator",
    "NullAccumulator",
    "NumericAccumulator",
    "StringAccumulator",
    "TableStatisticsAccumulator",
    "TimestampAccumulator",
    "accumulate_files",
    "column_kind",
    "compute_statistics",
    "statistics_of_table",
]
