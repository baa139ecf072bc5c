"""The protocols that the layers above core implement.

Core states them so that a runner never imports SQLAlchemy and a Ray worker needs nothing
but the accumulator it was handed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from lockgate.core.artifact_store import ArtifactStoreAddress
from lockgate.core.artifacts import Artifact
from lockgate.core.records import ExecutionRecord, RunRecord
from lockgate.core.status import Status

if TYPE_CHECKING:
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
    """Where runs, executions, artifacts and their lineage live (``lockgate.metadata``
    implements it on SQLite and PostgreSQL): every query the launcher, the resolvers, the
    registry, the CLI and a UI make, so that none of them reaches past it.

    Statuses are ``Status`` members (a plain string with the same value is accepted).
    Writes that must land together (outputs, a model version, its alias) go through
    ``transaction()``, whose handle is opaque here: only the implementation's own layer
    (the registry, the serving status) writes with it.
    """

    #: the database URL (a component that keeps its own tables there, ``tune``, opens it)
    url: str

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[Any]:
        """One write transaction: everything written with its handle lands, or nothing."""
        ...

    # --- runs -----------------------------------------------------------------------------

    def start_run(self, pipeline: str, properties: dict[str, Any] | None = None) -> int: ...

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None: ...

    def list_runs(self, limit: int = 20, pipeline: str | None = None) -> list[RunRecord]:
        """The newest runs first."""
        ...

    def get_run(self, run_id: int) -> RunRecord:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def run_executions(self, run_id: int) -> list[ExecutionRecord]:
        """The run's executions in the order they started."""
        ...

    # --- executions -----------------------------------------------------------------------

    def start_execution(
        self,
        run_id: int,
        *,
        step: str,
        component: str,
        cache_key: str | None,
        code_fingerprint: str | None,
        params: Mapping[str, Any],
        inputs: Mapping[str, Artifact | None],
        status: str = Status.RUNNING,
        cache_parts: dict[str, Any] | None = None,
        miss_reason: str | None = None,
    ) -> int:
        """Record a step as started; ``params`` are the step's parameters as given (the
        store keeps their canonical JSON and gives them back as a dict)."""
        ...

    def publish_execution(
        self,
        execution_id: int,
        outputs: Mapping[str, Artifact],
        *,
        within: Callable[[Any], None] | None = None,
        status: str = Status.COMPLETE,
        error: str | None = None,
    ) -> None:
        """Register the outputs and complete the execution in one transaction; ``within``
        gets that transaction (opaque here) for a step's own writes to the store.
        ``status="blocked"`` keeps a closed gate's findings (never a cache hit)."""
        ...

    def record_cached_execution(
        self, execution_id: int, outputs: Mapping[str, Artifact]
    ) -> None: ...

    def fail_execution(
        self, execution_id: int, error: str, status: str = Status.FAILED
    ) -> None: ...

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def execution_artifacts(self, execution_id: int, direction: str) -> dict[str, Artifact]:
        """The artifacts an execution took (``"input"``) or gave (``"output"``), by name."""
        ...

    def find_cached_outputs(self, cache_key: str) -> dict[str, Artifact] | None: ...

    def previous_execution(
        self, pipeline: str, step: str, *, before: int | None = None
    ) -> ExecutionRecord | None:
        """The newest earlier execution of the step that ended (its ``status``,
        ``cache_key``, ``cache_parts`` and ``params``), or None: what a cache miss is
        explained against."""
        ...

    def mark_abandoned(self) -> list[ExecutionRecord]:
        """Mark what dead processes of this host left running; return those executions."""
        ...

    # --- artifacts and lineage --------------------------------------------------------------

    def get_artifact(self, artifact_id: int) -> Artifact:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def is_registered(self, uri: str) -> bool: ...

    def artifacts_of_type(
        self,
        type_name: str,
        *,
        properties: Mapping[str, str | int | bool] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Artifact]:
        """Artifacts of one type (oldest first unless ``newest_first``), those whose
        ``properties`` hold the given values only when ``properties`` is given."""
        ...

    def producer(self, artifact_id: int) -> ExecutionRecord | None:
        """The execution that first wrote the artifact (not the cached reuses)."""
        ...

    def producer_inputs(
        self, artifact_id: int
    ) -> tuple[ExecutionRecord, dict[str, Artifact]] | None:
        """The producer and the artifacts it took, by input name, in one query: one step of
        lineage (None: the artifact was imported, not produced by a step)."""
        ...

    def consumers(self, artifact_id: int) -> list[ExecutionRecord]:
        """Every execution that took the artifact as an input, oldest first."""
        ...

    def previous_span_statistics(self, statistics_id: int) -> Artifact | None:
        """The Statistics computed on the newest span before the span of ``statistics_id``'s
        examples (None for the first span): one indexed query whatever the history."""
        ...


class Runner(Protocol):
    """Decides *where* work runs; the launcher and the metadata store stay on the driver.

    ``execute`` runs one step (``core.step_task.run_step``: working copies of its inputs,
    the component, publication of its outputs, all on the node it lands on) and returns
    its plain-data result for the driver to register; ``map`` runs a function over data
    shards (statistics per file, say) and returns the results in order, for the caller to
    merge. The local runner uses threads in this process; the Ray runner
    (``lockgate.core.runners.ray``) sends both to Ray tasks without any component
    changing, because components only see local folders and plain parameters, and a step
    reopens the artifact store by its address. A runner that holds a cluster may also
    have ``start()`` and ``shutdown()``, which the CLI calls around a run.
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

    def address(self) -> ArtifactStoreAddress:
        """The store as it travels to a worker, which reopens it there (``.open()``)."""
        ...

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
