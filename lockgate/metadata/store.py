"""The metadata store: runs, executions, artifacts and the events that link them.

One SQLAlchemy code path for the embedded SQLite file and for PostgreSQL. The schema is
migrated with Alembic when the store opens; opening an up-to-date store costs one query.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lockgate.core.artifacts import Artifact, artifact_class
from lockgate.errors import ConfigError, MetadataError, NotFoundError
from lockgate.metadata import tables as t

RUNNING, COMPLETE, CACHED, FAILED, BLOCKED, ABANDONED, SKIPPED = (
    "running",
    "complete",
    "cached",
    "failed",
    "blocked",
    "abandoned",
    "skipped",
)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunRecord:
    id: int
    pipeline: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class ExecutionRecord:
    id: int
    run_id: int
    step_name: str
    component: str
    status: str
    cache_key: str | None
    params: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    cache_parts: dict[str, Any] | None = None
    miss_reason: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


#: How long a writer waits for another process's write transaction on SQLite.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: The key of the PostgreSQL advisory lock that serialises migrations (any constant will do;
#: this one spells "lockgate" in ASCII digits so that it is recognisable in pg_locks).
MIGRATION_LOCK_KEY = 108111099107


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite would begin transactions itself, lazily and deferred: a deferred
            # transaction that reads and then writes cannot wait for another writer (SQLite
            # answers "database is locked" at once). We begin them ourselves (below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            _use_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # A write transaction takes the write lock when it starts (waiting up to the busy
            # timeout), so its reads (the next version number, say) hold until it commits.
            writes = conn.get_execution_options().get(_WRITES, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ImportError as exc:  # SQLAlchemy imports the URL's driver here (psycopg, ...)
        raise missing_driver_error(url, exc) from exc


#: A database driver -> the lockgate extra that installs it.
DRIVER_EXTRAS = {"psycopg": "postgres"}


def missing_driver_error(url: str, exc: ImportError) -> ConfigError:
    """The error for a database URL whose driver is not installed: which extra to install
    (a metadata store or an ``ingest(query=..., url=...)``)."""
    module = (exc.name or str(exc)).split(".")[0]
    try:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        shown = url.split("@")[-1]
    if module in DRIVER_EXTRAS:
        hint = f'pip install "lockgate[{DRIVER_EXTRAS[module]}]"'
    elif module == "psycopg2":
        hint = (
            "lockgate uses psycopg 3: write the URL as postgresql+psycopg://... and pip install "
            '"lockgate[postgres]"'
        )
    else:
        hint = f"install the database driver: pip install {module}"
    return ConfigError(
        f"the database URL {shown} needs the driver '{module}', which is not installed", hint=hint
    )


_WRITES = "lockgate_writes"


def _use_wal(cursor: Any) -> None:
    """Switch a new database file to write-ahead logging (readers never wait for a writer).
    The switch is kept in the file; while another process holds the file, SQLite refuses it
    at once instead of waiting, so it is tried again until the busy timeout."""
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _store_name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; cheap when it already is there.

    Two processes opening a new store at once must not both create the tables: the upgrade
    runs under a lock (SQLite's write lock, a PostgreSQL advisory lock) and looks at the
    revision again once it holds it.
    """
    try:
        with engine.connect() as conn:
            if _revision(conn) == t.SCHEMA_REVISION:
                return
    except sa.exc.OperationalError as exc:
        raise MetadataError(
            f"cannot open the metadata store at {_store_name(engine)}: {exc.orig}",
            hint="check store_url in lockgate.toml or LOCKGATE_STORE_URL",
        ) from exc
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with _write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        if _revision(conn) == t.SCHEMA_REVISION:
            return  # another process migrated while we waited for the lock
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction; a store that stays busy, or a conflict that the locks did not
    prevent, becomes a MetadataError that says what to do instead of a driver's traceback."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITES: True})
            with conn.begin():
                yield conn
    except sa.exc.OperationalError as exc:
        if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
            raise
        raise MetadataError(
            f"the metadata store at {_store_name(engine)} stayed busy for over"
            f" {SQLITE_BUSY_TIMEOUT_S:g} s: another process held a write transaction",
            hint="try again; a team whose runs often overlap should use PostgreSQL",
        ) from exc
    except sa.exc.IntegrityError as exc:
        raise MetadataError(
            f"the metadata store at {_store_name(engine)} refused a write that conflicts with"
            f" another process's: {exc.orig}",
            hint="try again; if it repeats, report it with the output of --verbose",
        ) from exc


def insert_or_ignore(conn: Connection, table: sa.Table, **values: Any) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, for rows that two processes may create at once."""
    conn.execute(_dialect_insert(conn, table).values(**values).on_conflict_do_nothing())


def upsert(conn: Connection, table: sa.Table, keys: list[str], **values: Any) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE: a row that moves (an alias) in one statement."""
    statement = _dialect_insert(conn, table).values(**values)
    changes = {name: value for name, value in values.items() if name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the one row an INSERT wrote."""
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every table here has an integer primary key
        raise MetadataError("the database returned no id for an inserted row")
    return int(key[0])


def _dialect_insert(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the store supports SQLite and PostgreSQL
        raise MetadataError(f"unsupported database {conn.dialect.name!r}")
    return insert(table)


class SqlMetadataStore:
    """Runs, executions, artifacts and events in SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self._write_lock = threading.Lock()
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction. Threads of this process queue on a lock (SQLite has one
        writer); other processes wait on the database's own lock."""
        with self._write_lock, _write_transaction(self.engine) as conn:
            yield conn

    # --- runs -------------------------------------------------------------------------

    def start_run(self, pipeline: str, properties: dict[str, Any] | None = None) -> int:
        with self._write() as conn:
            insert_or_ignore(conn, t.pipelines, name=pipeline, created_at=now())
            pipeline_id = conn.execute(
                sa.select(t.pipelines.c.id).where(t.pipelines.c.name == pipeline)
            ).scalar_one()
            props = {"pid": os.getpid(), "host": socket.gethostname(), **(properties or {})}
            return inserted_id(
                conn.execute(
                    t.runs.insert().values(
                        pipeline_id=pipeline_id, status=RUNNING, properties=props, started_at=now()
                    )
                )
            )

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(status=status, error=error, finished_at=now())
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
        with self.engine.connect() as conn:
            return [self._run_record(row) for row in conn.execute(query)]

    def get_run(self, run_id: int) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(self._runs_query().where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"run {run_id} not found", hint="list runs with: lockgate runs")
        return self._run_record(row)

    @staticmethod
    def _run_record(row: Any) -> RunRecord:
        return RunRecord(
            id=row.id,
            pipeline=row.pipeline,
            status=row.status,
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
        params: str,
        inputs: dict[str, Artifact | None],
        status: str = RUNNING,
        cache_parts: dict[str, Any] | None = None,
        miss_reason: str | None = None,
    ) -> int:
        """Record a step as started (or, with ``status=cached``, as reused) with its inputs,
        what its cache key was made of and, for a step that runs, why the cache missed."""
        with self._write() as conn:
            execution_id = inserted_id(
                conn.execute(
                    t.executions.insert().values(
                        run_id=run_id,
                        step_name=step,
                        component=component,
                        status=status,
                        cache_key=cache_key,
                        code_fingerprint=code_fingerprint,
                        params=json.loads(params),
                        cache_parts=cache_parts,
                        miss_reason=miss_reason,
                        pid=os.getpid(),
                        host=socket.gethostname(),
                        started_at=now(),
                        finished_at=None if status == RUNNING else now(),
                    )
                )
            )
            self._insert_events(conn, execution_id, "input", inputs)
        return execution_id

    def publish_execution(
        self,
        execution_id: int,
        outputs: dict[str, Artifact],
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
        with self._write() as conn:
            for artifact in outputs.values():
                artifact.id = inserted_id(
                    conn.execute(
                        t.artifacts.insert().values(
                            type_name=artifact.type_name,
                            uri=artifact.uri,
                            fingerprint=artifact.fingerprint,
                            properties=artifact.properties,
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
                .values(status=status, error=error, finished_at=now())
            )

    def record_cached_execution(self, execution_id: int, outputs: dict[str, Artifact]) -> None:
        """Link the reused artifacts as this (cached) execution's outputs."""
        with self._write() as conn:
            self._insert_events(conn, execution_id, "output", outputs)

    def fail_execution(self, execution_id: int, error: str, status: str = FAILED) -> None:
        with self._write() as conn:
            conn.execute(
                t.executions.update()
                .where(t.executions.c.id == execution_id)
                .values(status=status, error=error, finished_at=now())
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
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return self._execution_record(row) if row is not None else None

    def execution_artifacts(self, execution_id: int, direction: str) -> dict[str, Artifact]:
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.executions)
                .where(t.executions.c.run_id == run_id)
                .order_by(t.executions.c.id)
            )
            return [self._execution_record(row) for row in rows]

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        with self.engine.connect() as conn:
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
            status=row.status,
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
        with self._write() as conn:
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
                        .values(status=ABANDONED, error="the process running it stopped")
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
                        .values(status=ABANDONED, error="the process running it stopped")
                    )
        return abandoned

    def is_registered(self, uri: str) -> bool:
        """Whether an artifact with this URI is in the store (a folder without one is an
        orphan that a crash left behind)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(t.artifacts.c.id).where(t.artifacts.c.uri == uri).limit(1)
            ).first()
        return found is not None

    # --- artifacts --------------------------------------------------------------------

    def get_artifact(self, artifact_id: int) -> Artifact:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.artifacts).where(t.artifacts.c.id == artifact_id)
            ).first()
        if row is None:
            raise NotFoundError(f"artifact {artifact_id} not found")
        return self._artifact(row)

    def artifacts_of_type(self, type_name: str) -> list[Artifact]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.artifacts)
                .where(t.artifacts.c.type_name == type_name)
                .order_by(t.artifacts.c.id)
            )
            return [self._artifact(row) for row in rows]

    def producer(self, artifact_id: int) -> ExecutionRecord | None:
        """The execution that first wrote the artifact (not the cached reuses); a gate that
        closed but kept its findings (blocked) wrote them too."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.executions)
                .join(t.events, t.events.c.execution_id == t.executions.c.id)
                .where(
                    t.events.c.artifact_id == artifact_id,
                    t.events.c.direction == "output",
                    t.executions.c.status.in_((COMPLETE, BLOCKED)),
                )
                .order_by(t.executions.c.id)
            ).first()
        return self._execution_record(row) if row is not None else None

    @staticmethod
    def _artifact(row: Any) -> Artifact:
        cls = artifact_class(row.type_name)
        return cls(
            uri=row.uri, properties=row.properties or {}, id=row.id, fingerprint=row.fingerprint
        )


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
