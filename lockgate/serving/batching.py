"""Adaptive batching: concurrent requests to one model merged into one ``predict`` call.

A model answers a batch of 64 rows in about the time it answers one, so merging the rows
of requests that arrive together raises throughput under load. The batch forms while the
model is busy: a request that finds the model idle and nobody waiting is answered at once,
in its own thread (no hand-off, no added latency); requests that arrive while the model is
working queue up, and when it is free they go in together, up to ``max_batch_size`` rows.
``max_wait_ms`` (0 by default) lets a batch wait that much longer for more rows. Each
request is validated on its own first, so one bad request gets its own 400 and never fails
the others; if the merged call still fails, each request is retried alone so that every
caller gets its own answer or its own error.

Given ``metrics`` (the app's ``ServingMetrics``), the batcher records the rows of every
call it makes into the model (``lockgate_batch_size``) and says so with
``observes_batches``, so that the app does not count the requests as batches too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lockgate.errors import ConfigError
from lockgate.serving.servable import (
    Servable,
    ServableWrapper,
    ValidColumns,
    as_chain,
    validate_columns,
)


class BatchObserver(Protocol):
    """What records batch sizes: ``ServingMetrics`` is one."""

    def observe_batch(self, model: str, version: str, rows: int) -> None: ...


@dataclass
class _Pending:
    columns: ValidColumns
    rows: int
    future: Future[dict[str, np.ndarray]] = field(default_factory=Future)


@dataclass
class BatchStats:
    """What the batcher did: requests in, inner ``predict`` calls out, rows per batch."""

    requests: int = 0
    batches: int = 0
    rows: int = 0
    largest_batch: int = 0
    fallbacks: int = 0


class BatchingServable(ServableWrapper):
    """Wrap ``inner`` so that concurrent ``predict`` calls share inner ``predict`` calls."""

    def __init__(
        self,
        inner: Servable,
        *,
        max_batch_size: int = 1024,
        max_wait_ms: float = 5.0,
        metrics: BatchObserver | None = None,
    ):
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1; got {max_batch_size}")
        if max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must be 0 or more; got {max_wait_ms}")
        self.inner = as_chain(inner)
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.metrics = metrics
        self.stats = BatchStats()
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = 0  # inner predict calls running: a batch forms while this is above 0

    @property
    def observes_batches(self) -> bool:
        """True when the batches are recorded here (``metrics`` given)."""
        return self.metrics is not None

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Answer at once when the model is idle, else queue the rows and wait for the
        batch they join; return this request's rows."""
        typed = validate_columns(columns, self.inner.inputs)  # as it is, if the app did
        rows = typed.rows
        with self._cond:
            self.stats.requests += 1
            alone = self._closed or (not self._queue and self._busy == 0)
            if alone:
                self._busy += 1
                self._count_rows(rows)
            else:
                pending = _Pending(typed, rows)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"lockgate-batcher-{self.name}", daemon=True
                    )
                    self._thread.start()
                self._queue.append(pending)
                self._cond.notify_all()
        if not alone:
            return pending.future.result()
        try:
            return self.inner.predict(typed)
        finally:
            self._done()

    def close(self) -> None:
        """Answer what is queued, then stop the batching thread; later calls go straight in."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.inner.close()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._answer(batch)
            finally:
                self._done()

    def _done(self) -> None:
        with self._cond:
            self._busy -= 1
            if self._queue or self._closed:  # the batching thread waits for this; else
                self._cond.notify_all()  # waking it costs a thread switch per request

    def _next_batch(self) -> list[_Pending] | None:
        """Wait until requests are queued and the model is free, optionally a little
        longer for more rows (``max_wait_ms``), then take up to ``max_batch_size`` rows."""
        with self._cond:
            while not self._queue or (self._busy and not self._closed):
                if self._closed and not self._queue:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self.max_wait_ms / 1000.0
            while not self._closed:
                if sum(p.rows for p in self._queue) >= self.max_batch_size:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [self._queue.popleft()]
            total = batch[0].rows
            while self._queue and total + self._queue[0].rows <= self.max_batch_size:
                total += self._queue[0].rows
                batch.append(self._queue.popleft())
            self._busy += 1
            return batch

    def _answer(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            self._count(batch)
            self._predict_alone(batch[0])
            return
        first = batch[0].columns
        merged = ValidColumns(  # rows of requests validated for the same specs
            {name: np.concatenate([p.columns[name] for p in batch]) for name in first},
            first.specs,
            sum(p.rows for p in batch),
        )
        self._count(batch)
        try:
            outputs = self.inner.predict(merged)
            offsets = np.cumsum([p.rows for p in batch])[:-1]
            parts = {name: np.split(np.asarray(value), offsets) for name, value in outputs.items()}
        except Exception:  # noqa: BLE001 - each request gets its own answer or error below
            self.stats.fallbacks += 1
            for pending in batch:
                self._predict_alone(pending)
            return
        for index, pending in enumerate(batch):
            pending.future.set_result({name: part[index] for name, part in parts.items()})

    def _predict_alone(self, pending: _Pending) -> None:
        try:
            pending.future.set_result(self.inner.predict(pending.columns))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
            pending.future.set_exception(exc)

    def _count(self, batch: list[_Pending]) -> None:
        self._count_rows(sum(p.rows for p in batch))

    def _count_rows(self, rows: int) -> None:
        self.stats.batches += 1
        self.stats.rows += rows
        self.stats.largest_batch = max(self.stats.largest_batch, rows)
        if self.metrics is not None:
            self.metrics.observe_batch(self.name, self.version, rows)
