"""Canary releases: a candidate version takes a share of the traffic, or a shadow copy of it.

In a *split* the candidate answers ``percent`` of the requests (chosen per request) and the
primary the rest, so a regression reaches few users. In *shadow* mode the primary answers
every request and the candidate gets a copy in a background thread: its answers and errors
are handed to ``on_shadow`` (the request log) and never reach the caller, so a candidate can
be watched on live traffic at no risk. The ``canary`` alias in the registry picks the
candidate; the follower builds this wrapper.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lockgate.errors import ConfigError
from lockgate.serving.servable import Servable, TensorSpec, as_chain

logger = logging.getLogger("lockgate.serving.canary")

#: Called with (candidate, columns, outputs or None, error or None) for each shadow request.
ShadowHook = Callable[
    [Servable, dict[str, np.ndarray], dict[str, np.ndarray] | None, Exception | None], None
]


@dataclass
class CanaryStats:
    primary: int = 0
    candidate: int = 0
    shadow: int = 0
    shadow_errors: int = 0
    shadow_dropped: int = 0


class CanaryServable:
    """``primary`` and ``candidate`` behind one name; the primary's metadata is shown."""

    def __init__(
        self,
        primary: Servable,
        candidate: Servable,
        percent: float,
        *,
        shadow: bool = False,
        on_shadow: ShadowHook | None = None,
        rng: random.Random | None = None,
        max_shadow_queue: int = 64,
    ) -> None:
        if not 0 <= percent <= 100:
            raise ConfigError(f"canary percent must be between 0 and 100; got {percent}")
        if primary.name != candidate.name:
            raise ConfigError(
                f"a canary needs two versions of one model; got '{primary.name}' and"
                f" '{candidate.name}'"
            )
        self.primary = primary
        self.candidate = candidate
        self._observes_batches = (
            as_chain(primary).observes_batches and as_chain(candidate).observes_batches
        )
        self.percent = float(percent)
        self.shadow = shadow
        self.on_shadow = on_shadow
        self.stats = CanaryStats()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._shadow_slots = threading.BoundedSemaphore(max_shadow_queue)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lockgate-shadow")

    @property
    def name(self) -> str:
        return self.primary.name

    @property
    def version(self) -> str:
        return self.primary.version

    @property
    def platform(self) -> str:
        return self.primary.platform

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.primary.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.primary.outputs

    @property
    def observes_batches(self) -> bool:
        """True when both versions record their own calls (each behind a batcher with the
        app's metrics); otherwise the app counts each request as a call."""
        return self._observes_batches

    def choose(self) -> Servable:
        """The servable that answers the next request (always the primary in shadow mode)."""
        if self.shadow:
            return self.primary
        with self._lock:
            to_candidate = self._rng.random() * 100 < self.percent
        return self.candidate if to_candidate else self.primary

    def predict_versioned(
        self, columns: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray]]:
        """The answer and the version that gave it (for the response's ``model_version``)."""
        chosen = self.choose()
        outputs = chosen.predict(columns)
        with self._lock:
            if chosen is self.candidate:
                self.stats.candidate += 1
            else:
                self.stats.primary += 1
        if self.shadow:
            self._send_shadow(columns)
        return chosen.version, outputs

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.predict_versioned(columns)[1]

    def close(self) -> None:
        """Finish the shadow copies in flight; the two servables are released by their owner."""
        self._pool.shutdown(wait=True)

    def _send_shadow(self, columns: dict[str, np.ndarray]) -> None:
        if not self._shadow_slots.acquire(blocking=False):  # the candidate is behind: skip
            with self._lock:
                self.stats.shadow_dropped += 1
            return
        try:
            self._pool.submit(self._run_shadow, dict(columns))
        except RuntimeError:  # shut down while a request was finishing
            self._shadow_slots.release()

    def _run_shadow(self, columns: dict[str, np.ndarray]) -> None:
        try:
            outputs: dict[str, np.ndarray] | None = None
            error: Exception | None = None
            try:
                outputs = self.candidate.predict(columns)
            except Exception as exc:  # noqa: BLE001 - a shadow's failure is recorded, not raised
                error = exc
            with self._lock:
                self.stats.shadow += 1
                self.stats.shadow_errors += error is not None
            if self.on_shadow is not None:
                try:
                    self.on_shadow(self.candidate, columns, outputs, error)
                except Exception:  # noqa: BLE001 - logging must not break serving
                    logger.exception("shadow hook failed for model '%s'", self.name)
        finally:
            self._shadow_slots.release()
