"""The servables the server answers with, swapped atomically while requests run.

A request takes its servable once (``acquire`` or ``lease``) and keeps it to the end, so a
swap (a hot reload) never changes the model under a request that is already running. Every
servable is counted while it works: ``acquire`` and ``lease`` count the whole request, and
the handle that ``get`` returns counts its own ``predict`` calls. A retired version is closed
only when its count is back to zero, so releasing an old model never fails a request that
still holds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lockgate.errors import ModelNotFoundError, ModelNotReadyError, did_you_mean
from lockgate.serving.servable import Servable, ServableWrapper, ServingChain, as_chain


class _Slot:
    """One stored servable and the number of requests that are using it now."""

    def __init__(self, servable: Servable) -> None:
        self.servable = servable
        self.chain = as_chain(servable)  # what requests use: the chain's protocol
        self.in_flight = 0
        self._count_lock = threading.Lock()  # entered directly on the hot path: C-level
        self.drained = threading.Condition(self._count_lock)
        self.handle = _Tracked(servable, self)

    def enter(self) -> None:
        with self._count_lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self._count_lock:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.drained.notify_all()


class _Tracked(ServableWrapper):
    """What ``get`` hands out: the servable itself, with its ``predict`` calls counted."""

    def __init__(self, servable: Servable, slot: _Slot) -> None:
        self.inner = slot.chain
        self._slot = slot

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._slot.enter()
        try:
            return self.inner.predict(columns)
        finally:
            self._slot.leave()

    def predict_versioned(
        self, columns: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray]]:
        self._slot.enter()
        try:
            return self.inner.predict_versioned(columns)
        finally:
            self._slot.leave()

    def __getattr__(self, name: str) -> Any:  # anything else a wrapper offers (stats, ...)
        return getattr(self.inner, name)


class Lease:
    """One request's hold on a servable, counted in flight until it is released.

    The hold may pass to a worker thread that the request may give up on (a timeout): each
    party ``claim``s the duty to ``release`` before using or ending the hold, and only the
    first claim succeeds. A worker that loses the claim must not touch ``servable``; the
    request that wins it (its worker never started) releases at once.
    """

    __slots__ = ("_claim", "_slot", "servable")

    def __init__(self, slot: _Slot) -> None:
        self.servable: ServingChain = slot.chain
        self._slot = slot
        self._claim = threading.Lock()

    def claim(self) -> bool:
        """Take the duty to ``release``; False when another party took it already."""
        return self._claim.acquire(blocking=False)

    def release(self) -> None:
        """End the hold; called once, by the party whose ``claim`` succeeded."""
        self._slot.leave()


class ModelRepository:
    """Servables by name and version; the last one ``set`` for a name is its default."""

    def __init__(self, servables: list[Servable] | None = None) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, dict[str, _Slot]] = {}
        self._default: dict[str, str] = {}
        self._loading: set[str] = set()
        for servable in servables or []:
            self.set(servable)

    @property
    def ready(self) -> bool:
        """True once at least one model is loaded."""
        with self._lock:
            return bool(self._default)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._default)

    def versions(self, name: str) -> list[str]:
        with self._lock:
            return list(self._versions.get(name, {}))

    def default_version(self, name: str) -> str | None:
        with self._lock:
            return self._default.get(name)

    def expect(self, name: str) -> None:
        """Announce a model that is still loading: requests get 503, not 404, meanwhile."""
        with self._lock:
            self._loading.add(name)

    def set(self, servable: Servable) -> None:
        """Add (or replace) a version and make it the name's default, atomically."""
        with self._lock:
            self._put(servable)
            self._default[servable.name] = servable.version
            self._loading.discard(servable.name)

    def add(self, servable: Servable) -> None:
        """Add (or replace) a version without taking the default from the current one."""
        with self._lock:
            self._put(servable)
            self._default.setdefault(servable.name, servable.version)
            self._loading.discard(servable.name)

    def replace(self, name: str, servables: list[Servable], *, default: str) -> list[Servable]:
        """Make ``servables`` the name's whole set of versions, ``default`` answering
        unversioned requests, in one step; return handles of those that left, to ``release``.

        A request already running keeps the servable it took; the next one sees the new set.
        """
        if default not in {s.version for s in servables}:
            raise ValueError(f"default version {default!r} is not among the servables")
        with self._lock:
            old = self._versions.get(name, {})
            new = {s.version: self._slot_for(old, s) for s in servables}
            gone = [slot for version, slot in old.items() if new.get(version) is not slot]
            self._versions[name] = new
            self._default[name] = default
            self._loading.discard(name)
        return [slot.handle for slot in gone]

    def remove(self, name: str, version: str) -> None:
        """Stop serving one version; the newest remaining one becomes the default."""
        with self._lock:
            versions = self._versions.get(name, {})
            versions.pop(version, None)
            if not versions:
                self._versions.pop(name, None)
                self._default.pop(name, None)
            elif self._default.get(name) == version:
                self._default[name] = list(versions)[-1]

    def get(self, name: str, version: str | None = None) -> ServingChain:
        """Return the servable, or raise 404 (unknown) / 503 (still loading)."""
        with self._lock:
            return self._find(name, version).handle

    @contextmanager
    def acquire(self, name: str, version: str | None = None) -> Iterator[ServingChain]:
        """The servable, counted as in flight for the whole block (a request's lifetime)."""
        with self._lock:
            slot = self._find(name, version)
            slot.enter()
        try:
            yield slot.chain
        finally:
            slot.leave()

    def lease(self, name: str, version: str | None = None) -> Lease:
        """Like ``acquire``, for a hold that a worker thread may end (see ``Lease``)."""
        with self._lock:
            slot = self._find(name, version)
            slot.enter()
        return Lease(slot)

    def in_flight(self, servable: Servable) -> int:
        """How many requests use ``servable`` (served, or a handle that ``replace`` returned)."""
        slot = self._slot_of(servable)
        return 0 if slot is None else slot.in_flight

    def release(self, servable: Servable, *, timeout_s: float = 60.0, close: bool = True) -> bool:
        """Wait until no request uses a retired servable, then ``close()`` it if it can
        (``close=False``: the caller closes it, e.g. when its parts still serve elsewhere).

        Returns False when requests still use it after ``timeout_s``; it is then left for
        the garbage collector rather than closed under a running request.
        """
        slot = self._slot_of(servable)
        if slot is None:
            return True
        deadline = time.monotonic() + timeout_s
        with slot.drained:
            while slot.in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                slot.drained.wait(left)
        with self._lock:
            still_served = any(
                s is slot for versions in self._versions.values() for s in versions.values()
            )
        if close and not still_served:
            slot.chain.close()
        return True

    def _put(self, servable: Servable) -> None:
        versions = self._versions.setdefault(servable.name, {})
        versions[servable.version] = self._slot_for(versions, servable)

    @staticmethod
    def _slot_for(existing: dict[str, _Slot], servable: Servable) -> _Slot:
        slot = existing.get(servable.version)
        return slot if slot is not None and slot.servable is servable else _Slot(servable)

    def _slot_of(self, servable: Servable) -> _Slot | None:
        if isinstance(servable, _Tracked):
            return servable._slot
        with self._lock:
            for versions in self._versions.values():
                for slot in versions.values():
                    if slot.servable is servable:
                        return slot
        return None

    def _find(self, name: str, version: str | None) -> _Slot:
        versions = self._versions.get(name)
        if versions is None:
            if name in self._loading:
                raise ModelNotReadyError(f"model '{name}' is not loaded yet; retry shortly")
            known = sorted(self._default)
            raise ModelNotFoundError(
                f"model '{name}' is not served; models are {known}{did_you_mean(name, known)}"
            )
        key = self._default[name] if version is None else version
        if key not in versions:
            raise ModelNotFoundError(
                f"model '{name}' has no version '{version}'; versions are {list(versions)}"
            )
        return versions[key]
