"""The servables the server answers with, swapped atomically while requests run.

A request takes its servable once from ``get`` and keeps it to the end, so ``set`` (a hot
reload) never changes the model under a request that is already running.
"""

from __future__ import annotations

import threading

from lockgate.errors import ModelNotFoundError, ModelNotReadyError, did_you_mean
from lockgate.serving.servable import Servable


class ModelRepository:
    """Servables by name and version; the last one ``set`` for a name is its default."""

    def __init__(self, servables: list[Servable] | None = None) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, dict[str, Servable]] = {}
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

    def expect(self, name: str) -> None:
        """Announce a model that is still loading: requests get 503, not 404, meanwhile."""
        with self._lock:
            self._loading.add(name)

    def set(self, servable: Servable) -> None:
        """Add (or replace) a version and make it the name's default, atomically."""
        with self._lock:
            self._versions.setdefault(servable.name, {})[servable.version] = servable
            self._default[servable.name] = servable.version
            self._loading.discard(servable.name)

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

    def get(self, name: str, version: str | None = None) -> Servable:
        """Return the servable, or raise 404 (unknown) / 503 (still loading)."""
        with self._lock:
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
