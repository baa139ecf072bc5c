"""The request log: sampled requests and answers, written as Parquet ``InferenceLog``s.

Logging must never slow or fail a request, so ``RequestLogger.log`` only draws the sample
and appends a reference to a bounded queue (a full queue drops the record and counts it).
A background thread takes the records every ``DRAIN_S`` (not woken per record: that would
pass the GIL back and forth on every logged request), gathers them column by column
(``_Batch``: lists of the requests' arrays, no per-record table) and writes one Parquet
file per model version every ``flush_rows`` rows or ``flush_interval_s`` seconds, and on
``close``. A flush is a few NumPy concatenations, one Arrow table and the Parquet write
(which releases the GIL), so the serving thread waits on it for no more than a few hundred
microseconds at a time. Each file is published atomically as an ``InferenceLog`` artifact
whose input is the ``PushedModel`` it logs, so lineage leads from a log back to the model::

    <root>/serving/<model>/inference_log/<execution id>/part-0.parquet

(``<time>-<id>`` instead of the execution id when no metadata store registers the files).
``root`` is the artifact root, a folder or a URL: files go through the one publish path
(``core.publish``) of the artifact store for it.

The raw feature columns keep their names, so ``lockgate skew TRAIN_PATH LOG_PATH`` compares a
log with training data directly; everything else starts with ``_``: ``_request_id``,
``_model_name``, ``_model_version``, ``_timestamp`` (UTC), ``_shadow`` and one
``_output_<name>`` per output (n x k outputs as fixed-size lists).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockgate.core.artifact_store import artifact_store_for
from lockgate.core.artifacts import Artifact, InferenceLog
from lockgate.core.publish import Publication
from lockgate.errors import ConfigError
from lockgate.serving.servable import Servable, ServableWrapper, as_chain

logger = logging.getLogger("lockgate.serving.request_log")

PIPELINE = "lockgate-serve"
#: how often the writer thread takes the records requests left
DRAIN_S = 0.05


@dataclass
class _Record:
    model: str
    version: str
    columns: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    at_us: int  # microseconds since the epoch, UTC

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_us / 1e6, UTC)

    shadow: bool
    source: Artifact | None


@dataclass
class LogStats:
    """Counts since start: sampled, dropped (queue full), written rows, files, failures."""

    sampled: int = 0
    dropped: int = 0
    rows_written: int = 0
    files: int = 0
    failures: int = 0
    artifacts: list[Artifact] = field(default_factory=list)


class RequestLogger:
    """Writes sampled requests as InferenceLog artifacts from a background thread.

    ``store`` (a metadata store, optional) registers each file; without one the files are
    still written. The thread starts with the first logged record.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        store: Any | None = None,
        sample_rate: float = 1.0,
        flush_rows: int = 10_000,
        flush_interval_s: float = 60.0,
        max_queue: int = 10_000,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= sample_rate <= 1:
            raise ConfigError(f"log sample rate must be between 0 and 1; got {sample_rate}")
        if flush_rows < 1 or flush_interval_s <= 0:
            raise ConfigError("log flush_rows must be >= 1 and flush_interval_s > 0")
        self.root = root
        self._artifacts = artifact_store_for(root)
        self.store = store
        self.sample_rate = sample_rate
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.stats = LogStats()
        self.max_queue = max_queue
        self._pending: deque[_Record] = deque()  # appended by requests, drained by the thread
        self._stop = threading.Event()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._run_id: int | None = None
        # Arrow's first pa.array imports pandas (a third of a second holding the GIL in the
        # writer thread, while requests wait): done here, before serving starts
        pa.array(np.zeros(0))

    def log(
        self,
        servable: Servable,
        columns: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        *,
        shadow: bool = False,
        source: Artifact | None = None,
    ) -> bool:
        """Sample and queue one request; True when it was queued. Never raises, never waits."""
        try:
            with self._lock:
                if self._closed or self._rng.random() >= self.sample_rate:
                    return False
                self._start()
            record = _Record(
                servable.name,
                servable.version,
                {name: np.asarray(value) for name, value in columns.items()},
                {name: np.asarray(value) for name, value in outputs.items()},
                time.time_ns() // 1000,
                shadow,
                source,
            )
            if len(self._pending) >= self.max_queue:
                self.stats.dropped += 1
                return False
            self._pending.append(record)
            self.stats.sampled += 1
            return True
        except Exception:  # noqa: BLE001 - the request must not fail because of its log
            logger.exception("request log: could not queue a record")
            return False

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is buffered and stop the thread; later records are not logged."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join(timeout_s)
        if self.store is not None and self._run_id is not None:
            self.store.finish_run(self._run_id, "complete")
        self._artifacts.close()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="lockgate-request-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        batches: dict[tuple[Any, ...], _Batch] = {}
        next_flush = time.monotonic() + self.flush_interval_s
        while True:
            stopping = self._stop.wait(min(DRAIN_S, max(0.0, next_flush - time.monotonic())))
            while self._pending:
                item = self._pending.popleft()
                key = (item.model, item.version, item.shadow, _kinds(item))
                batch = batches.get(key)
                if batch is None:
                    batch = batches[key] = _Batch(item)
                batch.add(item)
                if batch.rows >= self.flush_rows:
                    self._flush(batches.pop(key))
            if stopping or time.monotonic() >= next_flush:
                for key in list(batches):
                    self._flush(batches.pop(key))
                next_flush = time.monotonic() + self.flush_interval_s
            if stopping:
                return

    def _flush(self, batch: _Batch) -> None:
        try:
            self._write(batch)
        except Exception:  # noqa: BLE001 - a lost log batch is counted, serving goes on
            self.stats.failures += 1
            logger.exception("request log: could not write %d record(s)", batch.requests)

    def _write(self, batch: _Batch) -> None:
        first = batch.first
        table = batch.table()
        publication = Publication(self._artifacts, pipeline="serving", step=first.model)
        artifact = publication.stage("inference_log", InferenceLog)
        try:
            pq.write_table(table, artifact.path / "part-0.parquet")
            # Registered: started first, so that a crash before the commit leaves a running
            # execution whose folder the next run's sweep removes. Else: a unique name.
            execution = self._start_execution(first) if self.store is not None else None
        except BaseException:
            publication.discard()
            raise
        name = (
            str(execution)
            if execution is not None
            else f"{first.at.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        )
        artifact.properties = {
            "model_name": first.model,
            "model_version": first.version,
            "shadow": first.shadow,
            "rows": table.num_rows,
            "requests": batch.requests,
            "sample_rate": self.sample_rate,
            "first_at": first.at.isoformat(),
            "last_at": batch.last.at.isoformat(),
            "feature_columns": list(first.columns),
            "output_columns": [f"_output_{n}" for n in first.outputs],
        }
        store = self.store if execution is not None else None
        try:
            publication.publish(
                name,
                None
                if store is None
                else lambda outputs: store.publish_execution(execution, outputs),
            )
        except BaseException as exc:
            if store is not None and execution is not None:
                store.fail_execution(execution, f"{type(exc).__name__}: {exc}")
            raise
        self.stats.rows_written += table.num_rows
        self.stats.files += 1
        self.stats.artifacts.append(artifact)

    def _start_execution(self, first: _Record) -> int:
        assert self.store is not None
        if self._run_id is None:
            self._run_id = self.store.start_run(PIPELINE, {"kind": "serving"})
        params = {"model_name": first.model, "model_version": first.version}
        return int(
            self.store.start_execution(
                self._run_id,
                step=f"request_log:{first.model}",
                component="request_log",
                cache_key=None,
                code_fingerprint=None,
                params=params,
                inputs={"pushed_model": first.source},
            )
        )


class LoggingServable(ServableWrapper):
    """Answers with ``inner`` and hands each answer to the request log (sampled there)."""

    def __init__(
        self, inner: Servable, request_logger: RequestLogger, *, source: Artifact | None = None
    ) -> None:
        self.inner = as_chain(inner)
        self.request_logger = request_logger
        self.source = source

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.inner.predict(columns)
        parts = getattr(columns, "parts", None)
        if parts is None:
            self.request_logger.log(self.inner, columns, outputs, source=self.source)
            return outputs
        start = 0  # requests merged into one call: one record each, as if alone
        for rows in parts:
            part = slice(start, start + rows)
            self.request_logger.log(
                self.inner,
                {name: value[part] for name, value in columns.items()},
                {name: np.asarray(value)[part] for name, value in outputs.items()},
                source=self.source,
            )
            start += rows
        return outputs


class _Batch:
    """The records of one model version with the same columns (names, kinds, widths: see
    ``_kinds``) gathered column by column. Every ``CHUNK`` records the requests' small
    arrays are joined into one, so that no single NumPy call of the flush holds the GIL
    for long while requests wait for it."""

    CHUNK = 256

    def __init__(self, first: _Record) -> None:
        self.first = first
        self.last = first
        names = [*first.columns, *(f"_output_{name}" for name in first.outputs)]
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        self.chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
        self.counts: list[int] = []
        self.stamps: list[int] = []
        self.rows = 0

    @property
    def requests(self) -> int:
        return len(self.counts)

    def add(self, record: _Record) -> None:
        for name, value in record.columns.items():
            self.parts[name].append(value)
        for name, value in record.outputs.items():
            self.parts[f"_output_{name}"].append(value)
        rows = _rows(record)
        self.counts.append(rows)
        self.stamps.append(record.at_us)
        self.rows += rows
        self.last = record
        if len(self.counts) % self.CHUNK == 0:
            self._chunk()

    def _chunk(self) -> None:
        for name, parts in self.parts.items():
            if parts:
                self.chunks[name].append(np.concatenate(parts))
                parts.clear()

    def table(self) -> pa.Table:
        self._chunk()
        counts = np.asarray(self.counts)
        n = int(counts.sum())
        columns = {name: _array(np.concatenate(chunks)) for name, chunks in self.chunks.items()}
        inputs = {k: v for k, v in columns.items() if not k.startswith("_output_")}
        ids = np.frombuffer(os.urandom(16 * len(counts)).hex().encode(), dtype="S32")
        stamps = np.repeat(np.asarray(self.stamps, dtype=np.int64), counts)
        meta = {
            "_request_id": pa.array(np.repeat(ids, counts)).cast(pa.string()),
            "_model_name": pa.repeat(pa.scalar(self.first.model, pa.string()), n),
            "_model_version": pa.repeat(pa.scalar(self.first.version, pa.string()), n),
            "_timestamp": pa.array(stamps).cast(pa.timestamp("us", tz="UTC")),
            "_shadow": pa.repeat(pa.scalar(self.first.shadow), n),
        }
        outputs = {k: v for k, v in columns.items() if k.startswith("_output_")}
        return pa.table({**inputs, **meta, **outputs})


def _kinds(record: _Record) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """What must match for records to share a file, joined column by column: each input's
    and output's name, dtype kind and shape beyond the rows."""

    def kinds(values: dict[str, np.ndarray]) -> tuple[Any, ...]:
        return tuple((name, v.dtype.kind, v.shape[1:]) for name, v in values.items())

    return kinds(record.columns), kinds(record.outputs)


def _rows(record: _Record) -> int:
    return len(next(iter(record.columns.values()))) if record.columns else 0


def _array(value: np.ndarray) -> pa.Array:
    """A column as Arrow, NaN and None as nulls."""
    value = np.asarray(value)
    if value.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(
            pa.array(value.astype(np.float64).ravel()), value.shape[1]
        )
    if value.dtype.kind == "f":
        return pa.array(value, mask=np.isnan(value))
    if value.dtype.kind in "biu":
        return pa.array(value)
    missing = _missing(value)
    try:
        return pa.array(value, type=pa.string(), mask=missing)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        numbers = value.astype(np.float64)
        return pa.array(numbers, mask=missing | np.isnan(numbers))


_is_missing = np.frompyfunc(lambda v: v is None or (isinstance(v, float) and v != v), 1, 1)


def _missing(value: np.ndarray) -> np.ndarray:
    """None and NaN in an object or string column."""
    if value.dtype.kind != "O":
        return np.zeros(len(value), dtype=bool)
    return np.asarray(_is_missing(value), dtype=bool)
