"""The protocols that the layers above core implement.

Core states them so that a runner never imports SQLAlchemy and a Ray worker needs nothing
but the accumulator it was handed.
"""

from __future__ import annotations

from collections.abc import Callable
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
    plain-data result; ``map`` runs a function over data shards (statistics per file, say)
    and returns the results in order, for the caller to merge. The local runner uses
    threads in this process; the Ray runner (``lockgate.core.runners.ray``) sends both to
    Ray tasks without any component changing, because components only see artifact
    folders and plain parameters. A runner that holds a cluster may also have ``start()``
    and ``shutdown()``, which the CLI calls around a run.
    """

    max_parallel_steps: int

    def execute(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def map(self, fn: Any, items: list[Any]) -> list[Any]: ...
