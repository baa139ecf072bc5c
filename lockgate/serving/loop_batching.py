"""Batching on the event loop: the requests to one fast model whose bytes arrived together
go into the model as one call.

A request answered inline (see ``inline``) decodes its body, then hands its columns here and
waits. The first request of a batch schedules the batch's call with ``loop.call_soon``, so it
runs once the loop has started every request that became ready in the same turn; those
joined the batch meanwhile. Under load that is several requests per call, and a model
answers 16 rows in about the time it answers one (scikit-learn's checks and the trees' set-up
are per call), so the server answers more requests than the bare predict-per-request floor.
With one request in flight the batch is that request alone: no wait, no added latency.

Each request is validated on its own before it joins (``ValidColumns``), so a bad one gets
its own error and never fails the others; if the merged call fails, each request is answered
alone, so that every caller gets its own answer or its own error. The merged columns carry each request's rows
(``ValidColumns.parts``), so the request log still writes one record per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lockgate.serving.servable import ServingChain, ValidColumns

#: what answers a batch: (servable, columns) -> (the version that answered, outputs)
Predict = Callable[[ServingChain, ValidColumns], tuple[str, dict[str, np.ndarray]]]
#: rows one call takes at most; more requests wait for the next turn's call
DEFAULT_MAX_ROWS = 1024


@dataclass
class Share:
    """One request's answer and its share of the call that made it (seconds of wall and
    CPU time, divided evenly among the requests of the batch)."""

    version: str
    outputs: dict[str, np.ndarray]
    wall_s: float
    cpu_s: float


@dataclass
class _Waiting:
    columns: ValidColumns
    future: asyncio.Future[Share]


@dataclass
class _Queue:
    waiting: list[_Waiting] = field(default_factory=list)
    rows: int = 0


class LoopBatcher:
    """Per servable, the requests waiting for this turn's call into it."""

    def __init__(self, predict: Predict, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.predict_one = predict
        self.max_rows = max_rows
        self._queues: dict[ServingChain, _Queue] = {}

    async def predict(self, servable: ServingChain, columns: ValidColumns) -> Share:
        """This request's answer, from the call its batch makes this turn."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(servable)
        if queue is None or queue.rows + columns.rows > self.max_rows:
            if queue is not None:  # full: it goes now, this request starts the next one
                loop.call_soon(self._answer, servable, self._queues.pop(servable))
            queue = self._queues[servable] = _Queue()
            loop.call_soon(self._answer_pending, servable, queue)
        waiting = _Waiting(columns, loop.create_future())
        queue.waiting.append(waiting)
        queue.rows += columns.rows
        return await waiting.future

    def _answer_pending(self, servable: ServingChain, queue: _Queue) -> None:
        if self._queues.get(servable) is queue:
            del self._queues[servable]
            self._answer(servable, queue)

    def _answer(self, servable: ServingChain, queue: _Queue) -> None:
        batch = [w for w in queue.waiting if not w.future.done()]  # not given up meanwhile
        if len(batch) <= 1:
            for waiting in batch:
                self._alone(servable, waiting)
            return
        first = batch[0].columns
        parts = tuple(w.columns.rows for w in batch)
        merged = ValidColumns(
            {name: np.concatenate([w.columns[name] for w in batch]) for name in first},
            first.specs,
            sum(parts),
            parts=parts,
        )
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            version, outputs = self.predict_one(servable, merged)
            offsets = np.cumsum(parts)[:-1]
            split = {name: np.split(np.asarray(value), offsets) for name, value in outputs.items()}
        except Exception:  # noqa: BLE001 - each request gets its own answer or error below
            for waiting in batch:
                self._alone(servable, waiting)
            return
        wall_s = (time.perf_counter() - wall) / len(batch)
        cpu_s = (time.thread_time() - cpu) / len(batch)
        for index, waiting in enumerate(batch):
            answer = {name: part[index] for name, part in split.items()}
            _settle(waiting.future, Share(version, answer, wall_s, cpu_s))

    def _alone(self, servable: ServingChain, waiting: _Waiting) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            version, outputs = self.predict_one(servable, waiting.columns)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
            _settle(waiting.future, exc)
            return
        share = Share(version, outputs, time.perf_counter() - wall, time.thread_time() - cpu)
        _settle(waiting.future, share)


def _settle(future: asyncio.Future[Share], outcome: Share | Exception) -> None:
    """Hand a request its answer or error, unless it gave up (a client gone) meanwhile."""
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
