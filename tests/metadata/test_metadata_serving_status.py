"""What servers serve (serving_status), the migration that adds it, and the registry's
verification hook, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import publish_pushed_model

from lockgate import PushedModel
from lockgate.errors import ModelIntegrityError
from lockgate.metadata import serving_status as ss
from lockgate.metadata import tables
from lockgate.metadata.registry import CANARY, PRODUCTION, ModelVersion, Registry
from lockgate.metadata.store import SqlMetadataStore, now


def pushed(store: SqlMetadataStore, tmp_path: Path, name: str) -> PushedModel:
    folder = tmp_path / name
    folder.mkdir()
    artifact = PushedModel(uri=str(folder), properties={})
    return publish_pushed_model(store, artifact)


def test_a_store_at_revision_0001_upgrades_and_keeps_its_data(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(Path(tables.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO registered_models (name, created_at) VALUES ('m', :t)"),
            {"t": now()},
        )
        assert not sa.inspect(conn).has_table("serving_status")
    engine.dispose()
    store = SqlMetadataStore(store_url)  # migrates to the newest revision
    try:
        assert Registry(store).models() == ["m"]
        assert ss.reports(store) == []
        with store.reading() as conn:
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            assert sa.inspect(conn).has_table("serving_status")
        assert revision == tables.SCHEMA_REVISION
    finally:
        store.close()


def test_a_server_replaces_its_rows_and_a_silent_one_turns_stale(store: SqlMetadataStore) -> None:
    server = ss.ServerId("web-1", 8080, 4242)
    other = ss.ServerId("web-2", 8080, 77)
    started = now()
    failed = ss.ServingRow(
        "penguins", ss.PRIMARY, PRODUCTION, 3, 2, 3, "integrity", "model file x has sha256 y"
    )
    ss.report(store, server, [failed], heartbeat_s=30.0, started_at=started)
    ss.report(
        store,
        other,
        [ss.ServingRow("birds", ss.PRIMARY, PRODUCTION, 1, 1)],
        heartbeat_s=5.0,
        started_at=started,
    )
    [row] = ss.reports(store, "penguins")
    assert (str(row.server), row.row, row.stale) == ("web-1:8080", failed, False)
    assert row.disagrees_with(3) and not row.disagrees_with(2)
    fixed = ss.ServingRow("penguins", ss.PRIMARY, PRODUCTION, 3, 3)
    canary = ss.ServingRow("penguins", ss.CANARY, CANARY, 4, 4)
    ss.report(store, server, [fixed, canary], heartbeat_s=30.0, started_at=started)
    assert [r.row for r in ss.reports(store, "penguins")] == [canary, fixed]
    # web-2 beats every 5 s: after 3 beats and the grace it is stale, web-1 is not yet
    later = now() + timedelta(seconds=3 * 5 + ss.STALE_GRACE_S + 1)
    stale = {str(r.server): r.stale for r in ss.reports(store, at=later)}
    assert stale == {"web-1:8080": False, "web-2:8080": True}
    [gone] = ss.reports(store, "birds", at=later)
    assert not gone.disagrees_with(7)  # a stale row is not a disagreement
    ss.forget(store, server)
    assert [str(r.server) for r in ss.reports(store)] == ["web-2:8080"]


def test_a_server_starting_where_a_dead_one_listened_removes_its_rows(
    store: SqlMetadataStore,
) -> None:
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    here = ss.ServerId.here(9000)
    dead = ss.ServerId(here.host, 9000, int(dead_pid))
    elsewhere = ss.ServerId(here.host, 9001, int(dead_pid))
    row = ss.ServingRow("penguins", ss.PRIMARY, PRODUCTION, 1, 1)
    for server in (dead, elsewhere, here):
        ss.report(store, server, [row], heartbeat_s=30.0, started_at=now())
    assert ss.forget_gone(store, here) == 1
    assert {str(r.server) for r in ss.reports(store)} == {f"{here.host}:9000", f"{here.host}:9001"}
    assert str(ss.ServerId(here.host, 0, 5)) == f"{here.host} (pid 5)"


def test_the_registry_runs_its_check_before_any_alias_moves(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    plain = Registry(store)
    for name in ("a", "b", "c"):
        plain.register("penguins", pushed(store, tmp_path, name), blessed=True)
    plain.set_alias("penguins", PRODUCTION, 1, reason="first")
    plain.set_alias("penguins", PRODUCTION, 2, reason="second")
    checked: list[int] = []

    def verify(version: ModelVersion) -> None:
        checked.append(version.version)
        if version.version != 2:
            raise ModelIntegrityError(f"version {version.version} does not load")

    registry = Registry(store, verify=verify)
    history = registry.alias_history("penguins")
    with pytest.raises(ModelIntegrityError, match="version 3 does not load"):
        registry.set_alias("penguins", PRODUCTION, 3)
    with pytest.raises(ModelIntegrityError, match="version 1 does not load"):
        registry.rollback("penguins", reason="back")
    with pytest.raises(ModelIntegrityError, match="version 3 does not load"):
        registry.start_canary("penguins", 3, percent=5)
    assert registry.aliases("penguins") == {PRODUCTION: 2}
    assert registry.alias_history("penguins") == history
    assert registry.alias_history("penguins", CANARY) == []
    registry.start_canary("penguins", 2, percent=5)
    assert checked == [3, 1, 3, 2]
    assert registry.aliases("penguins") == {PRODUCTION: 2, CANARY: 2}
