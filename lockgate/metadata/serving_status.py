"""What each running model server serves, next to what the registry says.

A server's registry follower writes one row per model and role (``primary``, ``canary``)
when it loads a version, when a load fails, and every ``heartbeat_s`` seconds, so that
``lockgate models list`` can show where a server disagrees with the registry: a promoted
version that did not load, a start-up that fell back to an earlier version. A row whose
heartbeat stopped (a server killed without cleaning up) is *stale*: shown as such, never as
a disagreement. A server that stops cleanly removes its rows; one that starts where a dead
one listened removes the dead one's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from lockgate.metadata import tables as t
from lockgate.metadata.store import SqlMetadataStore, now, process_alive

PRIMARY = "primary"
CANARY = "canary"
#: A row is stale once this many heartbeats (plus a grace) went by without one.
STALE_AFTER_BEATS = 3
STALE_GRACE_S = 10.0
#: Rows nobody refreshed for this long are deleted when a server starts.
FORGET_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class ServerId:
    """One server process: the host it runs on, the port it listens on (0: not known)
    and its pid (two servers may share a host and, in turn, a port)."""

    host: str
    port: int
    pid: int

    @classmethod
    def here(cls, port: int | None = None) -> ServerId:
        return cls(socket.gethostname(), port or 0, os.getpid())

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.port else f"{self.host} (pid {self.pid})"


@dataclass(frozen=True)
class ServingRow:
    """What one server says about one model and role: the version the registry names
    (``wanted_version``), the one answering requests, and the last version that failed."""

    model_name: str
    role: str
    alias: str
    wanted_version: int | None
    served_version: int | None
    failed_version: int | None = None
    failure_reason: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class ServerReport:
    """A row as read back, with who wrote it and whether its heartbeat is still fresh."""

    server: ServerId
    row: ServingRow
    updated_at: datetime
    stale: bool

    def disagrees_with(self, registry_version: int | None) -> bool:
        """True when a live server serves something else than the registry's version."""
        return not self.stale and self.row.served_version != registry_version


def report(
    store: SqlMetadataStore,
    server: ServerId,
    rows: Sequence[ServingRow],
    *,
    heartbeat_s: float,
    started_at: datetime,
) -> None:
    """Replace everything ``server`` reported before with ``rows``, in one transaction."""
    stamp = now()
    with store.transaction() as conn:
        conn.execute(t.serving_status.delete().where(_is(server)))
        if rows:
            conn.execute(
                t.serving_status.insert(),
                [
                    {
                        "host": server.host,
                        "port": server.port,
                        "pid": server.pid,
                        **row.__dict__,
                        "heartbeat_s": heartbeat_s,
                        "started_at": started_at,
                        "updated_at": stamp,
                    }
                    for row in rows
                ],
            )


def forget(store: SqlMetadataStore, server: ServerId) -> None:
    """Remove ``server``'s rows (it stops cleanly)."""
    with store.transaction() as conn:
        conn.execute(t.serving_status.delete().where(_is(server)))


def forget_gone(store: SqlMetadataStore, server: ServerId) -> int:
    """Remove rows that a dead process left on ``server``'s host and port, and rows nobody
    refreshed for ``FORGET_AFTER``; return how many went."""
    s = t.serving_status.c
    with store.transaction() as conn:
        dead = [
            row.id
            for row in conn.execute(
                sa.select(s.id, s.pid).where(
                    s.host == server.host, s.port == server.port, s.pid != server.pid
                )
            )
            if not process_alive(row.pid)
        ]
        old = s.updated_at < now() - FORGET_AFTER
        return int(conn.execute(t.serving_status.delete().where(s.id.in_(dead) | old)).rowcount)


def reports(
    store: SqlMetadataStore, model_name: str | None = None, *, at: datetime | None = None
) -> list[ServerReport]:
    """Every server's rows (for one model), oldest server first; ``stale`` as of ``at``."""
    s = t.serving_status.c
    query = sa.select(t.serving_status).order_by(s.started_at, s.host, s.port, s.pid, s.role)
    if model_name is not None:
        query = query.where(s.model_name == model_name)
    at = at or now()
    with store.reading() as conn:
        rows = conn.execute(query).all()
    result = []
    for r in rows:
        updated = r.updated_at if r.updated_at.tzinfo else r.updated_at.replace(tzinfo=UTC)
        limit = timedelta(seconds=STALE_AFTER_BEATS * r.heartbeat_s + STALE_GRACE_S)
        row = ServingRow(
            model_name=r.model_name,
            role=r.role,
            alias=r.alias,
            wanted_version=r.wanted_version,
            served_version=r.served_version,
            failed_version=r.failed_version,
            failure_reason=r.failure_reason,
            last_error=r.last_error,
        )
        result.append(
            ServerReport(ServerId(r.host, r.port, r.pid), row, updated, at - updated > limit)
        )
    return result


def _is(server: ServerId) -> sa.ColumnElement[bool]:
    s = t.serving_status.c
    return sa.and_(s.host == server.host, s.port == server.port, s.pid == server.pid)
