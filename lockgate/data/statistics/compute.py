"""Entry points: statistics of files (streamed in batches) or of an in-memory table."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from lockgate.data.statistics.table import TableStatisticsAccumulator

if TYPE_CHECKING:
    from lockgate.data.readers import CsvOptions

__all__ = [
    "BATCH_SIZE",
    "accumulate_files",
    "coalesce",
    "compute_statistics",
    "statistics_of_table",
]

T = TypeVar("T")

#: Rows per batch: large enough that per-batch Python overhead is noise (about 2% at 20
#: columns), small enough that a batch of 20 columns stays in the tens of MB.
BATCH_SIZE = 262_144


def coalesce(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of about ``rows`` rows: a CSV read arrives in chunks of a few thousand rows,
    and per-batch overhead (one Python call per column and sketch) would then dominate."""
    for group in _groups(batches, rows):
        yield _combined(group)


def _groups(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[list[pa.RecordBatch]]:
    """The batches that :func:`coalesce` combines into one, group by group."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if batch.num_rows >= rows and not pending:
            yield [batch]
            continue
        pending.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield pending
            pending, size = [], 0
    if pending:
        yield pending


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each read in a thread of its own while the one before is in use: reading
    (Parquet decoding, CSV parsing and casts) overlaps the statistics of the batch before,
    with one batch more in memory. An error of the reading is raised here, as it was."""
    slot: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed over, raised in the consumer
            put((False, exc))

    reader = threading.Thread(target=produce, name="lockgate-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            more, item = slot.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        reader.join()


def _combined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch of the batches of one file (they share its schema)."""
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def compute_statistics(
    paths: Iterable[str | Path] | str | Path,
    *,
    batch_size: int = BATCH_SIZE,
    slice_by: list[str] | None = None,
    weight: str | None = None,
    format: str | None = None,
    csv: CsvOptions | None = None,
) -> dict[str, Any]:
    """Stream every file's batches through one accumulator and return the statistics
    (``format`` and ``csv`` as ``readers.iter_batches`` takes them)."""
    return accumulate_files(
        paths, batch_size=batch_size, slice_by=slice_by, weight=weight, format=format, csv=csv
    ).result()


def accumulate_files(
    paths: Iterable[str | Path] | str | Path,
    *,
    batch_size: int = BATCH_SIZE,
    slice_by: list[str] | None = None,
    weight: str | None = None,
    format: str | None = None,
    csv: CsvOptions | None = None,
) -> TableStatisticsAccumulator:
    """The accumulator of some files, not yet read out, so that shards can be merged."""
    from lockgate.data.readers import iter_batches

    if isinstance(paths, str | Path):
        paths = [paths]
    acc = TableStatisticsAccumulator(slice_by=slice_by, weight=weight)
    for path in paths:
        batches = iter_batches(
            path, batch_size=batch_size, format=format, csv=csv, dictionaries=True
        )
        for group in _read_ahead(_groups(batches, batch_size)):
            acc.update_group(group)
    return acc


def statistics_of_table(
    table: pa.Table | pa.RecordBatch,
    *,
    batch_size: int = BATCH_SIZE,
    slice_by: list[str] | None = None,
    weight: str | None = None,
) -> dict[str, Any]:
    """Statistics of an in-memory Arrow table (a pandas or Polars frame: convert first)."""
    acc = TableStatisticsAccumulator(slice_by=slice_by, weight=weight)
    batches = [table] if isinstance(table, pa.RecordBatch) else table.to_batches(batch_size)
    for batch in coalesce(batches, batch_size):
        acc.update(batch)
    return acc.result()
