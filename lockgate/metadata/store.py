"""The metadata store: runs, executions, artifacts and the events that link them.

One SQLAlchemy code path for the embedded SQLite file and for PostgreSQL (``database.py``
holds what differs). The schema is migrated with Alembic when the store opens; opening an
up-to-date store costs one query. Every lookup a resolver makes is one indexed query, so a
step's cost does not grow with the store's history.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lockgate.core.artifacts import Artifact, artifact_class
from lockgate.core.component import canonical_params
from lockgate.core.records import ExecutionRecord, RunRecord
from lockgate.core.status import Status
from lockgate.errors import NotFoundError
from lockgate.metadata import tables as t
from lockgate.metadata.database import (
    create_engine,
    insert_or_ignore,
    inserted_id,
    migrate,
    missing_driver_error,
    now,
    upsert,
    write_transaction,
)

__all__ = [
    "ExecutionRecord",
    "RunRecord",
    "SqlMetadataStore",
    "Status",
    "artifact_columns",
    "artifact_from_row",
    "insert_or_ignore",
    "inserted_id",
    "missing_driver_error",
    "now",
    "process_alive",
    "upsert",
]

RUNNING, COMPLETE, CACHED, FAILED, BLOCKED, ABANDONED, SKIPPED = (
    Status.RUNNING,
    Status.COMPLETE,
    Status.CACHED,
    Status.FAILED,
    Status.BLOCKED,
    Status.ABANDONED,
    Status.SKIPPED,
)
#: The statuses of an execution that wrote its outputs itself (a blocked gate kept its
#: findings): the producer of an artifact is one of these, never a cached reuse.
_PRODUCED = (COMPLETE, BLOCKED)


class SqlMetadataStore:
    """Runs, executions, artifacts and events in SQLite or PostgreSQL (``MetadataStore``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = create_engine(url)
        self._write_lock = threading.Lock()
        migrate(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: all of it lands or none. Threads of this process queue on
        a lock (SQLite has one writer); other processes wait on the database's own lock.
        The registry and the serving status write their tables with its connection."""
        with self._write_lock, write_transaction(self._engine) as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (the registry's and the serving status's queries)."""
        with self._engine.connect() as conn:
            yield conn

    # --- runs -------------------------------------------------------------------------

    def start_run(self, pipeline: str, properties: dict[str, Any] | None = None) -> int:
        with self.transaction() as conn:
            insert_or_ignore(conn, t.pipelines, name=pipeline, created_at=now())
            pipeline_id = conn.execute(
                sa.select(t.pipelines.c.id).where(t.pipelines.c.name == pipeline)
            ).scalar_one()
            props = {"pid": os.getpid(), "host": socket.gethostname(), **(properties or {})}
            return inserted_id(
                conn.execute(
                    t.runs.insert().values(
                        pipeline_id=pipeline_id,
                        status=RUNNING.value,
                        properties=props,
                        started_at=now(),
                    )
                )
            )

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(status=Status(status).value, error=error, finished_at=now())
            )

    def _runs_query(self) -> sa.Select:
        return sa.select(t.runs, t.pipelines.c.name.label("pipeline")).join(
            t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id
        )

    def list_runs(self, limit: int = 20, pipeline: str | None = None) -> list[RunRecord]:
        query = self._runs_query()
        if pipeline:
            query = query.where(t.pipelines.c.name == pipeline)
        query = query.order_by(t.runs.c.id.desc()).limit(limit)
        with self.reading() as conn:
            return [self._run_record(row) for row in conn.execute(query)]

    def get_run(self, run_id: int) -> RunRecord:
        with self.reading() as conn:
            row = conn.execute(self._runs_query().where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"run {run_id} not found", hint="list runs with: lockgate runs")
        return self._run_record(row)

    @staticmethod
    def _run_record(row: Any) -> RunRecord:
        return RunRecord(
            id=row.id,
            pipeline=row.pipeline,
            status=Status(row.status),
            started_at=row.started_at,
            finished_at=row.finished_at,
            error=row.error,
            properties=row.properties or {},
        )

    # --- executions -------------------------------------------------------------------

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
        status: str = RUNNING,
        cache_parts: dict[str, Any] | None = None,
        miss_reason: str | None = None,
    ) -> int:
        """Record a step as started (or, with ``status=cached``, as reused) with its inputs,
        what its cache key was made of and, for a step that runs, why the cache missed.
        ``params`` are kept as their canonical JSON (``canonical_params``), the form the
        cache key is made of, and come back as a dict."""
        state = Status(status)
        stored_params = json.loads(canonical_params(dict(params)))
        with self.transaction() as conn:
            execution_id = inserted_id(
                conn.execute(
                    t.executions.insert().values(
                        run_id=run_id,
                        step_name=step,
                        component=component,
                        status=state.value,
                        cache_key=cache_key,
                        code_fingerprint=code_fingerprint,
                        params=stored_params,
                        cache_parts=cache_parts,
                        miss_reason=miss_reason,
                        pid=os.getpid(),
                        host=socket.gethostname(),
                        started_at=now(),
                        finished_at=None if state is RUNNING else now(),
                    )
                )
            )
            self._insert_events(conn, execution_id, "input", inputs)
        return execution_id

    def publish_execution(
        self,
        execution_id: int,
        outputs: Mapping[str, Artifact],
        *,
        within: Callable[[Connection], None] | None = None,
        status: str = COMPLETE,
        error: str | None = None,
    ) -> None:
        """Register the outputs and mark the execution complete, in one transaction.

        ``within`` runs in that transaction once the outputs have ids (push registers the
        model version there): either all of it is stored or none of it. ``status=blocked``
        (with the gate's ``error``) keeps the findings of a gate that closed: its outputs
        are registered, but a blocked execution is never a cache hit.
        """
        with self.transaction() as conn:
            inherited = _examples_span(conn, execution_id)
            for artifact in outputs.values():
                own = span_of(artifact)
                artifact.id = inserted_id(
                    conn.execute(
                        t.artifacts.insert().values(
                            type_name=artifact.type_name,
                            uri=artifact.uri,
                            fingerprint=artifact.fingerprint,
                            properties=artifact.properties,
                            span=inherited if own is None else own,
                            created_at=now(),
                        )
                    )
                )
            self._insert_events(conn, execution_id, "output", outputs)
            if within is not None:
                within(conn)
            conn.execute(
                t.executions.update()
                .where(t.executions.c.id == execution_id)
                .values(status=Status(status).value, error=error, finished_at=now())
            )

    def record_cached_execution(self, execution_id: int, outputs: Mapping[str, Artifact]) -> None:
        """Link the reused artifacts as this (cached) execution's outputs."""
        with self.transaction() as conn:
            self._insert_events(conn, execution_id, "output", outputs)

    def fail_execution(self, execution_id: int, error: str, status: str = FAILED) -> None:
        with self.transaction() as conn:
            conn.execute(
                t.executions.update()
                .where(t.executions.c.id == execution_id)
                .values(status=Status(status).value, error=error, finished_at=now())
            )

    @staticmethod
    def _insert_events(
        conn: Connection,
        execution_id: int,
        direction: str,
        artifacts: Mapping[str, Artifact | None],
    ) -> None:
        rows = [
            {"execution_id": execution_id, "artifact_id": a.id, "direction": direction, "name": n}
            for n, a in artifacts.items()
            if a is not None and a.id is not None
        ]
        if rows:
            conn.execute(t.events.insert(), rows)

    def find_cached_outputs(self, cache_key: str) -> dict[str, Artifact] | None:
        """Outputs of the newest complete execution with this key whose files still exist."""
        query = (
            sa.select(t.executions.c.id)
            .where(t.executions.c.cache_key == cache_key, t.executions.c.status == COMPLETE)
            .order_by(t.executions.c.id.desc())
        )
        with self.reading() as conn:
            for execution_id in conn.execute(query).scalars():
                outputs = self._event_artifacts(conn, execution_id, "output")
                # a URL's files are checked by the launcher, through its artifact store
                if all("://" in a.uri or Path(a.uri).exists() for a in outputs.values()):
                    return outputs
        return None

    def previous_execution(
        self, pipeline: str, step: str, *, before: int | None = None
    ) -> ExecutionRecord | None:
        """The newest execution of ``step`` in ``pipeline`` that ended (complete, cached,
        blocked or failed), before execution id ``before``: what a cache miss is explained
        against."""
        query = (
            sa.select(t.executions)
            .join(t.runs, t.runs.c.id == t.executions.c.run_id)
            .join(t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id)
            .where(
                t.pipelines.c.name == pipeline,
                t.executions.c.step_name == step,
                t.executions.c.status.in_((COMPLETE, CACHED, BLOCKED, FAILED)),
            )
            .order_by(t.executions.c.id.desc())
            .limit(1)
        )
        if before is not None:
            query = query.where(t.executions.c.id < before)
        with self.reading() as conn:
            row = conn.execute(query).first()
        return self._execution_record(row) if row is not None else None

    def execution_artifacts(self, execution_id: int, direction: str) -> dict[str, Artifact]:
        with self.reading() as conn:
            return self._event_artifacts(conn, execution_id, direction)

    def _event_artifacts(
        self, conn: Connection, execution_id: int, direction: str
    ) -> dict[str, Artifact]:
        rows = conn.execute(
            sa.select(t.events.c.name, t.artifacts)
            .join(t.artifacts, t.artifacts.c.id == t.events.c.artifact_id)
            .where(t.events.c.execution_id == execution_id, t.events.c.direction == direction)
        )
        return {row.name: self._artifact(row) for row in rows}

    def run_executions(self, run_id: int) -> list[ExecutionRecord]:
        with self.reading() as conn:
            rows = conn.execute(
                sa.select(t.executions)
                .where(t.executions.c.run_id == run_id)
                .order_by(t.executions.c.id)
            )
            return [self._execution_record(row) for row in rows]

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        with self.reading() as conn:
            row = conn.execute(
                sa.select(t.executions).where(t.executions.c.id == execution_id)
            ).first()
        if row is None:
            raise NotFoundError(f"execution {execution_id} not found")
        return self._execution_record(row)

    @staticmethod
    def _execution_record(row: Any) -> ExecutionRecord:
        return ExecutionRecord(
            id=row.id,
            run_id=row.run_id,
            step_name=row.step_name,
            component=row.component,
            status=Status(row.status),
            cache_key=row.cache_key,
            params=row.params or {},
            started_at=row.started_at,
            finished_at=row.finished_at,
            error=row.error,
            cache_parts=row.cache_parts,
            miss_reason=row.miss_reason,
        )

    def mark_abandoned(self) -> list[ExecutionRecord]:
        """Mark runs and executions left 'running' by a process on this host that is gone;
        return the executions so marked."""
        host = socket.gethostname()
        abandoned: list[ExecutionRecord] = []
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(t.executions).where(
                    t.executions.c.status == RUNNING, t.executions.c.host == host
                )
            ).all()
            for row in rows:
                if row.pid is not None and not process_alive(row.pid):
                    conn.execute(
                        t.executions.update()
                        .where(t.executions.c.id == row.id)
                        .values(status=ABANDONED.value, error="the process running it stopped")
                    )
                    record = self._execution_record(row)
                    record.status, record.error = ABANDONED, "the process running it stopped"
                    abandoned.append(record)
            runs = conn.execute(
                sa.select(t.runs.c.id, t.runs.c.properties).where(t.runs.c.status == RUNNING)
            ).all()
            for run in runs:
                props = run.properties or {}
                if props.get("host") == host and not process_alive(int(props.get("pid", 0))):
                    conn.execute(
                        t.runs.update()
                        .where(t.runs.c.id == run.id)
                        .values(status=ABANDONED.value, error="the process running it stopped")
                    )
        return abandoned

    def is_registered(self, uri: str) -> bool:
        """Whether an artifact with this URI is in the store (a folder without one is an
        orphan that a crash left behind)."""
        with self.reading() as conn:
            found = conn.execute(
                sa.select(t.artifacts.c.id).where(t.artifacts.c.uri == uri).limit(1)
            ).first()
        return found is not None

    # --- artifacts --------------------------------------------------------------------

    def get_artifact(self, artifact_id: int) -> Artifact:
        with self.reading() as conn:
            row = conn.execute(
                sa.select(t.artifacts).where(t.artifacts.c.id == artifact_id)
            ).first()
        if row is None:
            raise NotFoundError(f"artifact {artifact_id} not found")
        return self._artifact(row)

    def artifacts_of_type(
        self,
        type_name: str,
        *,
        properties: Mapping[str, str | int | bool] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Artifact]:
        """Artifacts of one type, oldest first unless ``newest_first``; with ``properties``,
        only those whose properties hold these values (compared in the database)."""
        query = sa.select(t.artifacts).where(t.artifacts.c.type_name == type_name)
        for name, value in (properties or {}).items():
            query = query.where(_property_equals(name, value))
        order = t.artifacts.c.id.desc() if newest_first else t.artifacts.c.id
        query = query.order_by(order).limit(limit)
        with self.reading() as conn:
            return [self._artifact(row) for row in conn.execute(query)]

    def producer(self, artifact_id: int) -> ExecutionRecord | None:
        """The execution that first wrote the artifact (not the cached reuses); a gate that
        closed but kept its findings (blocked) wrote them too."""
        query = sa.select(t.executions).where(t.executions.c.id == _producer_id(artifact_id))
        with self.reading() as conn:
            row = conn.execute(query).first()
        return self._execution_record(row) if row is not None else None

    def producer_inputs(
        self, artifact_id: int
    ) -> tuple[ExecutionRecord, dict[str, Artifact]] | None:
        """The producer and its inputs by name, in one query (a step of lineage)."""
        took = t.events.alias("took")
        given = t.artifacts.alias("given")
        query = (
            sa.select(
                t.executions,
                took.c.name.label("input_name"),
                *artifact_columns(given, "input_"),
            )
            .outerjoin(
                took,
                sa.and_(took.c.execution_id == t.executions.c.id, took.c.direction == "input"),
            )
            .outerjoin(given, given.c.id == took.c.artifact_id)
            .where(t.executions.c.id == _producer_id(artifact_id))
        )
        with self.reading() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return None
        inputs = {
            row.input_name: artifact_from_row(row, "input_")
            for row in rows
            if row.input_name is not None
        }
        return self._execution_record(rows[0]), inputs

    def consumers(self, artifact_id: int) -> list[ExecutionRecord]:
        """Every execution that took the artifact as an input (cached ones too), oldest
        first: where an artifact went, for lineage read forwards."""
        query = (
            sa.select(t.executions)
            .join(t.events, t.events.c.execution_id == t.executions.c.id)
            .where(t.events.c.artifact_id == artifact_id, t.events.c.direction == "input")
            .order_by(t.executions.c.id)
        )
        with self.reading() as conn:
            return [self._execution_record(row) for row in conn.execute(query)]

    def previous_span_statistics(self, statistics_id: int) -> Artifact | None:
        """The Statistics computed on the newest span before the span of the examples that
        ``statistics_id`` was computed on; None for the first span, or when those examples
        have no span. One query on the (type, span) index: statistics carry the span of the
        examples they were computed on (``publish_execution``)."""
        current_span = (
            sa.select(t.artifacts.c.span).where(t.artifacts.c.id == statistics_id).scalar_subquery()
        )
        query = (
            sa.select(t.artifacts)
            .where(t.artifacts.c.type_name == "Statistics", t.artifacts.c.span < current_span)
            .order_by(t.artifacts.c.span.desc(), t.artifacts.c.id.desc())
            .limit(1)
        )
        with self.reading() as conn:
            row = conn.execute(query).first()
        return self._artifact(row) if row is not None else None

    @staticmethod
    def _artifact(row: Any) -> Artifact:
        return artifact_from_row(row)


def span_of(artifact: Artifact) -> int | None:
    """The span an artifact holds (``Examples`` of span N); None when it has none. Kept in
    an indexed column, as is the span of the examples an output was computed from (its
    step's ``examples`` input), so that "the newest span before N" is one index lookup."""
    span = artifact.properties.get("span")
    if isinstance(span, bool) or span is None:
        return None
    try:
        return int(span)
    except (TypeError, ValueError):
        return None


def _examples_span(conn: Connection, execution_id: int) -> int | None:
    """The span of the examples an execution took (its input named ``examples``)."""
    return conn.execute(
        sa.select(t.artifacts.c.span)
        .join(t.events, t.events.c.artifact_id == t.artifacts.c.id)
        .where(
            t.events.c.execution_id == execution_id,
            t.events.c.direction == "input",
            t.events.c.name == "examples",
        )
        .limit(1)
    ).scalar()


def _producer_id(artifact_id: int) -> sa.ScalarSelect[Any]:
    """The id of the execution that first wrote the artifact (see ``producer``)."""
    return (
        sa.select(sa.func.min(t.events.c.execution_id))
        .join(t.executions, t.executions.c.id == t.events.c.execution_id)
        .where(
            t.events.c.artifact_id == artifact_id,
            t.events.c.direction == "output",
            t.executions.c.status.in_(_PRODUCED),
        )
        .scalar_subquery()
    )


def _property_equals(name: str, value: str | int | bool) -> sa.ColumnElement[bool]:
    """``properties[name] == value`` in SQL, on SQLite and PostgreSQL alike."""
    element = t.artifacts.c.properties[name]
    if isinstance(value, bool):
        return element.as_boolean() == value
    if isinstance(value, int):
        return element.as_integer() == value
    return element.as_string() == value


def artifact_from_row(row: Any, prefix: str = "") -> Artifact:
    """The artifact an ``artifacts`` row holds; ``prefix`` when its columns were selected
    under labels (``pushed_uri``), next to another table's."""
    values = row._mapping
    cls = artifact_class(values[f"{prefix}type_name"])
    return cls(
        uri=values[f"{prefix}uri"],
        properties=values[f"{prefix}properties"] or {},
        id=values[f"{prefix}id"],
        fingerprint=values[f"{prefix}fingerprint"],
    )


def artifact_columns(table: sa.Table | Any, prefix: str) -> list[sa.Label[Any]]:
    """An ``artifacts`` table's columns labelled with ``prefix``, for ``artifact_from_row``."""
    return [column.label(f"{prefix}{column.name}") for column in table.c]


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this id runs (someone else's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
