"""Which inference requests are answered on the event loop instead of in a worker thread.

Handing a request to a thread and back costs more than a small model's whole answer (lock
hand-offs, a thread switch each way and the GIL passed between them: a third of the
server's CPU on a one-row request). A model that answers in well under a millisecond is
therefore called inline, as the bare Starlette floor does, and only a slow one (or a large
body) goes to a thread, where the request timeout can abandon it without stopping the loop.

The choice is measured, per served model, from its recent answers: the median CPU time
(of this thread: what the loop would spend) must be under ``budget_s``, and so must the
median time it waited beyond that (wall minus CPU time) when it ran alone — inline, or in a
thread with nothing else in flight, so that waiting for the GIL does not count; a model
that sleeps, or waits on a device, waits. Under steady load no thread call runs alone: a
model cheap in CPU but with no clean wall time then gets an inline *probe* now and then,
spaced out twice as far after each probe that waited, so a model that waits holds the loop
once in a long while at most. Scheduling noise (another process on the core) inflates wall
times too, but the median of ``window`` answers rides over the odd preempted one; an answer
alone that took ten budgets or more (a model that began to hang) outweighs the record.
"""

from __future__ import annotations

import weakref
from collections import deque

#: how long an answer on the event loop may hold it
INLINE_BUDGET_S = 0.002
#: bodies above this go to a thread whatever the model's cost (decoding is work too)
INLINE_MAX_BODY_BYTES = 256 * 1024
#: a slow probe doubles the calls to the next one, up to this many
MAX_PROBE_EVERY = 4096
#: an answer alone that took this many budgets outweighs the model's whole record
STALL_BUDGETS = 10


class InlinePolicy:
    """Per servable: answer on the loop when its recent answers were fast."""

    def __init__(
        self,
        *,
        budget_s: float = INLINE_BUDGET_S,
        max_body_bytes: int = INLINE_MAX_BODY_BYTES,
        window: int = 16,
    ) -> None:
        self.budget_s = budget_s
        self.max_body_bytes = max_body_bytes
        self.window = window
        self._models: weakref.WeakKeyDictionary[object, _Costs] = weakref.WeakKeyDictionary()

    def allows(self, servable: object, body_bytes: int) -> bool:
        """True when a request of ``body_bytes`` to ``servable`` is answered inline."""
        if body_bytes > self.max_body_bytes:
            return False
        costs = self._models.get(servable)
        if costs is None:
            return False
        if costs.cpu.median >= self.budget_s:
            return False  # too much work for the loop
        if costs.waited.median < self.budget_s:
            return True  # and it hardly waits on anything when it runs alone
        return costs.probe_due()  # cheap, but waited (or never ran alone): try again

    def observe(
        self, servable: object, body_bytes: int, *, wall_s: float, cpu_s: float, alone: bool
    ) -> None:
        """Record one answer: its CPU time always, and how long it waited beyond that
        when it ran ``alone`` (inline, or in a thread with nothing else in flight)."""
        if body_bytes > self.max_body_bytes:
            return
        costs = self._models.get(servable)
        if costs is None:
            costs = self._models[servable] = _Costs(self.window)
        if alone and wall_s >= STALL_BUDGETS * self.budget_s:  # held the loop far too long:
            costs.cpu.values.clear()  # this answer alone decides until more come
            costs.waited.values.clear()
        costs.cpu.add(cpu_s)
        if alone:
            waited = max(0.0, wall_s - cpu_s)
            costs.waited.add(waited)
            costs.probed(waited=waited >= self.budget_s)


class _Costs:
    """One model's recent CPU times and waits, and when it is next probed inline."""

    def __init__(self, window: int) -> None:
        self.cpu = _Median(window)
        self.waited = _Median(window)  # wall minus CPU time, of the answers taken alone
        self.probe_every = 1
        self.since_probe = 0

    def probe_due(self) -> bool:
        self.since_probe += 1
        if self.since_probe < self.probe_every:
            return False
        self.since_probe = 0
        return True

    def probed(self, *, waited: bool) -> None:
        self.probe_every = min(2 * self.probe_every, MAX_PROBE_EVERY) if waited else 1


class _Median:
    """The last values and their median, kept up to date as they come (inf when none)."""

    def __init__(self, window: int) -> None:
        self.values: deque[float] = deque(maxlen=window)
        self.median = float("inf")

    def add(self, value: float) -> None:
        self.values.append(value)
        ordered = sorted(self.values)
        middle = len(ordered) // 2
        self.median = (
            ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        )
