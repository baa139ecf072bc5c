"""The database under the metadata store: the engine for a URL (SQLite pragmas, a
PostgreSQL connect timeout), the Alembic migration on first use, and write transactions
that turn a busy store or a driver's error into a ``MetadataError`` that says what to do.

One module for everything that differs between SQLite and PostgreSQL, so that the store,
the registry and the serving status are written once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lockgate.errors import ConfigError, MetadataError
from lockgate.metadata import tables as t


def now() -> datetime:
    return datetime.now(UTC)


#: How long a writer waits for another process's write transaction on SQLite.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: How long opening a connection to a database server may take before the store says it is
#: unreachable (a wrong host, a firewall that drops packets) instead of hanging.
CONNECT_TIMEOUT_S = 10
#: The key of the PostgreSQL advisory lock that serialises migrations (any constant will do;
#: this one spells "lockgate" in ASCII digits so that it is recognisable in pg_locks).
MIGRATION_LOCK_KEY = 108111099107


def check_store_url(url: str) -> sa.URL:
    """The parsed store URL, once it is known to name SQLite or PostgreSQL through a driver
    that is installed: a ``ConfigError`` that says how to fix it otherwise. Connects to
    nothing (``lockgate init --store`` checks a URL for a server that may not exist yet)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(
            f"the metadata store URL {url.split('@')[-1]!r} is not a database URL",
            hint=URL_HINT,
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"the metadata store URL {_shown(url)} names the database"
            f" '{parsed.get_backend_name()}'; the store runs on SQLite and PostgreSQL",
            hint=URL_HINT,
        )
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        raise missing_driver_error(url, exc) from exc
    except sa.exc.NoSuchModuleError as exc:
        raise ConfigError(
            f"the metadata store URL {_shown(url)} names the driver '{parsed.get_driver_name()}',"
            " which SQLAlchemy does not know",
            hint=URL_HINT,
        ) from exc
    return parsed


URL_HINT = (
    "write it as sqlite:///path/metadata.db or postgresql+psycopg://user@host:5432/database"
    " ([store] url in lockgate.toml, LOCKGATE_STORE_URL, or lockgate init --store URL)"
)
#: Drivers that take ``connect_timeout`` (seconds) as a connection argument.
_CONNECT_TIMEOUT_DRIVERS = ("psycopg", "psycopg2")


def create_engine(url: str) -> Engine:
    """The engine for a store URL (``check_store_url`` first). A server that does not
    answer within ``CONNECT_TIMEOUT_S`` (or the URL's own ``connect_timeout``) is an error,
    not a hang."""
    parsed = check_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
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
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() in _CONNECT_TIMEOUT_DRIVERS:
        connect_args["connect_timeout"] = int(
            parsed.query.get("connect_timeout", CONNECT_TIMEOUT_S)  # type: ignore[arg-type]
        )
    try:
        return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as exc:  # SQLAlchemy imports the URL's driver here (psycopg, ...)
        raise missing_driver_error(url, exc) from exc


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("@")[-1]


#: A database driver -> the lockgate extra that installs it.
DRIVER_EXTRAS = {"psycopg": "postgres"}


def missing_driver_error(url: str, exc: ImportError) -> ConfigError:
    """The error for a database URL whose driver is not installed: which extra to install
    (a metadata store or an ``ingest(query=..., url=...)``)."""
    module = (exc.name or str(exc)).split(".")[0]
    shown = _shown(url)
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
    with write_transaction(engine) as conn:
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
def write_transaction(engine: Engine) -> Iterator[Connection]:
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
