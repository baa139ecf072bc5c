"""Parquet streams: peak memory does not grow with the size of the Parquet file.

Each read runs in a fresh interpreter that reports its peak RSS (``ru_maxrss``), with Arrow
on the system allocator (mimalloc's page cache would be measured otherwise). A dataset
scan, with its readahead and pre-buffering, held hundreds of MB more for the larger file;
the row-group-by-row-group read holds about one batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from support import rows_and_peak_rss

_CHILD = """
import json, resource, sys
from lockgate.data.readers import iter_batches
rows = sum(b.num_rows for b in iter_batches(sys.argv[1], batch_size=65_536))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "peak": peak}))
"""


def _write_parquet(path: Path, rows: int) -> int:
    """``rows`` rows of incompressible floats and strings: about 40 bytes a row in memory."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("s", pa.string())])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            table = pa.table(
                {
                    "id": np.arange(start, start + n),
                    "x": rng.random(n),
                    "s": rng.integers(0, 10**12, n).astype(str),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=65_536)
    return path.stat().st_size


def test_parquet_peak_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    small_size = _write_parquet(tmp_path / "small.parquet", 500_000)
    big_size = _write_parquet(tmp_path / "big.parquet", 3_000_000)
    small_rows, small_peak = rows_and_peak_rss(_CHILD, str(tmp_path / "small.parquet"))
    big_rows, big_peak = rows_and_peak_rss(_CHILD, str(tmp_path / "big.parquet"))
    assert (small_rows, big_rows) == (500_000, 3_000_000)
    extra_bytes = big_size - small_size  # about 90 MB
    assert big_peak - small_peak < 0.25 * extra_bytes, (small_peak >> 20, big_peak >> 20)
