"""The protocols that the layers above core implement.

Core states them so that a runner never imports SQLAlchemy and a Ray worker needs nothing
but the accumulator it was handed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import pyarrow as pa


@runtime_checkable
class Accumulator(Protocol):
    """A mergeable summary of data: update with batches anywhere, merge the shards, read once.

    Implementations must be picklable so that shards can be computed in another process
    or on a Ray worker and merged on the driver. ``merge`` must be associative so that the
    order in which shards come back does not matter.
    """

    def update(self, batch: pa.RecordBatch | pa.Table) -> None: ...

    def merge(self, other: Self) -> Self: ...

    def result(self) -> dict[str, Any]: ...


class MetadataStore(Protocol):
    """What the launcher needs from a metadata store (``lockgate.metadata`` implements it)."""

    #: the database URL (a component that keeps its own tables there, ``tune``, opens it)
    url: str

    def start_run(self, pipeline: str, properties: dict[str, Any] | None = None) -> int: ...

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None: ...

    def start_execution(
        self,
        run_id: int,
        *,
        step: str,
        component: str,
        cache_key: str | None,
        code_fingerprint: str | None,
        params: str,
        inputs: dict[str, Any],
        status: str = "running",
        cache_parts: dict[str, Any] | None = None,
        miss_reason: str | None = None,
    ) -> int: ...

    def publish_execution(
        self,
        execution_id: int,
        outputs: dict[str, Any],
        *,
        within: Callable[[Any], None] | None = None,
        status: str = "complete",
        error: str | None = None,
    ) -> None:
        """Register the outputs and complete the execution in one transaction; ``within``
        gets that transaction (opaque here) for a step's own writes to the store.
        ``status="blocked"`` keeps a closed gate's findings (never a cache hit)."""
        ...

    def record_cached_execution(self, execution_id: int, outputs: dict[str, Any]) -> None: ...

    def fail_execution(self, execution_id: int, error: str, status: str = "failed") -> None: ...

    def find_cached_outputs(self, cache_key: str) -> dict[str, Any] | None: ...

    def previous_execution(self, pipeline: str, step: str, *, before: int | None = None) -> Any:
        """The newest earlier execution of the step that ended (its ``status``,
        ``cache_key``, ``cache_parts`` and ``params``), or None: what a cache miss is
        explained against."""
        ...

    def mark_abandoned(self) -> list[Any]:
        """Mark what dead processes of this host left running; return those executions."""
        ...

    def is_registered(self, uri: str) -> bool: ...


class Runner(Protocol):
    """Decides *where* work runs; the launcher and the metadata store stay on the driver.

    ``execute`` runs one step's component function (``execute_component``) and returns its
    plain-data result; ``map`` runs a function over data shards (statistics per file, say).
    The local runner uses threads in this process; a Ray runner would send both to Ray tasks
    (``ray.remote(fn).remote(...)``) without any component changing, because components
    only see artifact folders and plain parameters.
    """

    max_parallel_steps: int

    def execute(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def map(self, fn: Any, items: list[Any]) -> list[Any]: ...


class ArtifactStore(Protocol):
    """Where artifact files live, and the one way they get there (``core.publish`` drives it).

    Stage (``staging_dir``: a local folder the component writes into), fingerprint, then
    ``publish`` to a URI made by ``uri_for``: all or nothing, so that a reader never sees
    half an artifact; the metadata store registers it after that. What a crash left between
    publication and registration, ``sweep`` removes. Components read a published artifact
    through ``local_copy``: a local, read-only folder (the folder itself on a local store, a
    cached download for a remote one). The local folder is the default; ``FsspecArtifactStore``
    takes any fsspec URL.
    """

    #: the root: a local folder path or a URL (``s3://bucket/prefix``)
    root: str

    def uri_for(self, *parts: str) -> str:
        """The URI of the artifact at ``root/part/part/...``."""
        ...

    def staging_dir(self, step: str, output: str) -> Path:
        """A fresh, empty local folder to write one output into."""
        ...

    def publish(self, staging: Path, uri: str, *, fingerprint: str) -> str:
        """Make the finished ``staging`` folder the artifact at ``uri``, atomically or
        marked-last; ``staging`` is consumed. Returns ``uri``."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether a whole, published artifact is at ``uri`` (what the cache reuses)."""
        ...

    def local_copy(self, uri: str, fingerprint: str | None = None) -> Path:
        """A local folder holding the published artifact at ``uri``, for reading only."""
        ...

    def discard(self, target: Path | str) -> None:
        """Remove a staging folder or a published, unregistered artifact."""
        ...

    def sweep(self, store: MetadataStore) -> list[str]:
        """Remove what dead writers left (staging, published but never registered)."""
        ...

    def close(self) -> None: ...
