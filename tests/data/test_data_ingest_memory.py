"""Ingest streams: peak memory does not grow with the size of the CSV file.

Each ingest runs in a fresh interpreter that reports its peak RSS (``ru_maxrss``), with
Arrow on the system allocator: mimalloc keeps freed pages for reuse, which would measure
the allocator's caching rather than what ingest holds. A file four times larger may cost a
little more (measured: +25 to +40 MB for +76 MB of file), while reading it whole costs
about 2.4 times the extra bytes (+186 MB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from support import rows_and_peak_rss

_CHILD = """
import json, resource, sys
from lockgate.data.ingest import ingest_to_folder
report = ingest_to_folder(sys.argv[1], sys.argv[2], bad_rows="skip")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": sum(report.splits.values()), "peak": peak}))
"""


def _write_csv(path: Path, rows: int) -> int:
    rng = np.random.default_rng(0)
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("city", pa.string())])
    with pacsv.CSVWriter(path, schema) as writer:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            cities = rng.integers(0, 1000, n).astype(str)
            writer.write_table(
                pa.table({"id": np.arange(start, start + n), "x": rng.random(n), "city": cities})
            )
    return path.stat().st_size


def test_peak_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    small_size = _write_csv(tmp_path / "small.csv", 800_000)
    big_size = _write_csv(tmp_path / "big.csv", 3_200_000)
    small_rows, small_peak = rows_and_peak_rss(
        _CHILD, str(tmp_path / "small.csv"), str(tmp_path / "s")
    )
    big_rows, big_peak = rows_and_peak_rss(_CHILD, str(tmp_path / "big.csv"), str(tmp_path / "b"))
    assert (small_rows, big_rows) == (800_000, 3_200_000)
    extra_bytes = big_size - small_size  # about 75 MB
    assert big_peak - small_peak < 0.75 * extra_bytes, (small_peak >> 20, big_peak >> 20)
