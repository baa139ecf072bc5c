"""A deterministic taxi-trips-like table for the statistics benchmark.

Twenty-two columns shaped like the Chicago/NYC taxi data that TFX's examples use: ints,
floats with missing values, low-cardinality categorical strings, timestamps, a bool and a
unique ``trip_id`` (the high-cardinality string that makes distinct counts expensive).
Written in chunks of a million rows, so generating 10M rows stays within a few hundred MB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["CHUNK_ROWS", "ensure_data", "taxi_chunk"]

CHUNK_ROWS = 1_000_000
_PAYMENTS = np.array(["Credit Card", "Cash", "No Charge", "Dispute", "Unknown", "Mobile"])
_COMPANIES = np.array([f"Company {i:02d}" for i in range(40)])
_AREAS = np.array([f"Zone {i:03d}" for i in range(260)])


def _missing(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return rng.random(n) < p


def taxi_chunk(start: int, n: int, seed: int = 2024) -> pa.Table:
    """Rows ``start .. start+n`` of the table; the same rows whatever the chunking."""
    rng = np.random.default_rng([seed, start])
    ids = pc.binary_join_element_wise(
        "T", pc.cast(pa.array(np.arange(start, start + n) * 7919 % 10**9 + start), pa.string()), ""
    )
    base = np.datetime64("2023-01-01T00:00:00", "us")
    pickup = base + (rng.integers(0, 365 * 86_400, n) * 1_000_000).astype("timedelta64[us]")
    seconds = rng.gamma(2.0, 400.0, n).astype(np.int64) + 60
    dropoff = pickup + (seconds * 1_000_000).astype("timedelta64[us]")
    miles = np.round(rng.gamma(1.5, 2.0, n), 2)
    fare = np.round(3.25 + 2.25 * miles + seconds / 240.0, 2)
    tips = np.round(np.where(rng.random(n) < 0.6, fare * rng.uniform(0.1, 0.3, n), 0.0), 2)
    tolls = np.where(rng.random(n) < 0.05, 6.55, 0.0)
    extras = rng.choice(np.array([0.0, 0.5, 1.0, 2.5]), n)
    lat = 41.88 + rng.normal(0, 0.06, n)
    lon = -87.63 + rng.normal(0, 0.08, n)
    zipf = rng.zipf(1.3, n)
    columns: dict[str, pa.Array] = {
        "trip_id": ids,
        "taxi_id": pa.array(rng.integers(0, 8_000, n)),
        "vendor_id": pa.array(rng.integers(1, 3, n).astype(np.int8)),
        "pickup_datetime": pa.array(pickup),
        "dropoff_datetime": pa.array(dropoff, mask=_missing(rng, n, 0.01)),
        "trip_seconds": pa.array(seconds, mask=_missing(rng, n, 0.02)),
        "trip_miles": pa.array(miles, mask=_missing(rng, n, 0.01)),
        "passenger_count": pa.array(rng.integers(0, 7, n), mask=_missing(rng, n, 0.05)),
        "pickup_latitude": pa.array(lat, mask=_missing(rng, n, 0.08)),
        "pickup_longitude": pa.array(lon, mask=_missing(rng, n, 0.08)),
        "dropoff_latitude": pa.array(lat + rng.normal(0, 0.03, n), mask=_missing(rng, n, 0.1)),
        "dropoff_longitude": pa.array(lon + rng.normal(0, 0.03, n), mask=_missing(rng, n, 0.1)),
        "fare": pa.array(fare, mask=_missing(rng, n, 0.005)),
        "tips": pa.array(tips, mask=_missing(rng, n, 0.005)),
        "tolls": pa.array(tolls),
        "extras": pa.array(extras, mask=_missing(rng, n, 0.02)),
        "trip_total": pa.array(fare + tips + tolls + extras, mask=_missing(rng, n, 0.005)),
        "payment_type": pa.array(_PAYMENTS[zipf % len(_PAYMENTS)]),
        "company": pa.array(_COMPANIES[zipf % len(_COMPANIES)], mask=_missing(rng, n, 0.3)),
        "pickup_community_area": pa.array(_AREAS[rng.integers(0, len(_AREAS), n)]),
        "dropoff_community_area": pa.array(
            _AREAS[rng.integers(0, len(_AREAS), n)], mask=_missing(rng, n, 0.12)
        ),
        "shared_trip": pa.array(rng.random(n) < 0.15),
    }
    return pa.table(columns)


def ensure_data(folder: Path, rows: int) -> tuple[Path, Path]:
    """Parquet and CSV files of ``rows`` rows under ``folder``, generated once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    parquet, csv = folder / f"taxi-{rows}.parquet", folder / f"taxi-{rows}.csv"
    if parquet.exists() and csv.exists():
        return parquet, csv
    tmp_parquet, tmp_csv = parquet.with_suffix(".parquet.tmp"), csv.with_suffix(".csv.tmp")
    schema = taxi_chunk(0, 1).schema
    with (
        pq.ParquetWriter(tmp_parquet, schema) as pw,
        pacsv.CSVWriter(tmp_csv, schema) as cw,
    ):
        for start in range(0, rows, CHUNK_ROWS):
            chunk = taxi_chunk(start, min(CHUNK_ROWS, rows - start))
            pw.write_table(chunk, row_group_size=128 * 1024)
            cw.write_table(chunk)
    tmp_parquet.rename(parquet)
    tmp_csv.rename(csv)
    return parquet, csv
