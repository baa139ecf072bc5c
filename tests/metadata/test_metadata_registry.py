"""The model registry and the schema migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support import publish_pushed_model

from lockgate import PushedModel
from lockgate.errors import NotBlessedError, NotFoundError
from lockgate.metadata import tables
from lockgate.metadata.registry import PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore


def pushed_artifact(
    store: SqlMetadataStore, tmp_path: Path, name: str, model_fingerprint: str
) -> PushedModel:
    """A PushedModel registered the way the launcher does it: an execution publishes it."""
    folder = tmp_path / name
    folder.mkdir()
    artifact = PushedModel(uri=str(folder), properties={"model_fingerprint": model_fingerprint})
    return publish_pushed_model(store, artifact)


def test_versions_are_numbered_and_aliases_move_only_to_blessed_versions(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    registry = Registry(store)
    first = registry.register(
        "penguins",
        pushed_artifact(store, tmp_path, "a", "m1"),
        blessed=True,
        properties={"model_fingerprint": "m1"},
    )
    second = registry.register(
        "penguins",
        pushed_artifact(store, tmp_path, "b", "m2"),
        blessed=False,
        properties={"model_fingerprint": "m2"},
    )
    assert (first.version, second.version) == (1, 2)
    registry.set_alias("penguins", PRODUCTION, 1, reason="first push")
    assert registry.get("penguins").version == 1
    assert registry.get("penguins", "production").aliases == ["production"]
    with pytest.raises(NotBlessedError, match="version 2 is not blessed"):
        registry.set_alias("penguins", PRODUCTION, 2)
    with pytest.raises(NotBlessedError, match="needs a reason"):
        registry.set_alias("penguins", PRODUCTION, 2, force=True)
    registry.set_alias("penguins", PRODUCTION, 2, force=True, reason="hotfix approved by ops")
    assert registry.get("penguins").version == 2
    history = registry.alias_history("penguins")
    assert [(h["version"], h["forced"], h["reason"]) for h in history] == [
        (2, True, "hotfix approved by ops"),
        (1, False, "first push"),
    ]
    assert [v.version for v in registry.versions("penguins")] == [1, 2]
    assert registry.models() == ["penguins"]


def test_unknown_models_versions_and_aliases_are_clear_errors(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    registry = Registry(store)
    registry.register("penguins", pushed_artifact(store, tmp_path, "a", "m1"), blessed=True)
    with pytest.raises(NotFoundError, match="no model named 'pinguins'.*did you mean 'penguins'"):
        registry.get("pinguins")
    with pytest.raises(NotFoundError, match="has no version 7"):
        registry.get("penguins", 7)
    with pytest.raises(NotFoundError, match="has no alias 'production'"):
        registry.get("penguins")


def test_the_baseline_is_production_unless_production_is_the_candidate(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    registry = Registry(store)
    assert registry.baseline_for("penguins", "m1") is None  # nothing registered yet
    for index, fingerprint in enumerate(["m1", "m2"], start=1):
        registry.register(
            "penguins",
            pushed_artifact(store, tmp_path, fingerprint, fingerprint),
            blessed=True,
            properties={"model_fingerprint": fingerprint},
        )
        registry.set_alias("penguins", PRODUCTION, index)
    assert registry.baseline_for("penguins", "m3").version == 2  # a new candidate: production
    assert registry.baseline_for("penguins", "m2").version == 1  # production is the candidate
    registry.set_alias("penguins", PRODUCTION, 1, reason="rollback")
    assert registry.baseline_for("penguins", "m2").version == 1


def test_migrations_create_every_table_and_reopening_is_a_no_op(store_url: str) -> None:
    SqlMetadataStore(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert set(tables.metadata.tables) <= names
    assert revision == tables.SCHEMA_REVISION
    reopened = SqlMetadataStore(store_url)  # already at head: nothing to migrate
    assert reopened.list_runs() == []
    reopened.close()


def test_schema_revision_is_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(tables.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == tables.SCHEMA_REVISION


def test_the_tables_match_the_migrations(store_url: str) -> None:
    """A table changed without a migration would make this comparison non-empty."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    SqlMetadataStore(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    engine.dispose()
    assert diff == []


def test_an_unreachable_store_is_a_metadata_error() -> None:
    from lockgate.errors import MetadataError

    with pytest.raises(MetadataError, match="cannot open the metadata store"):
        SqlMetadataStore("postgresql+psycopg://nobody@127.0.0.1:1/none")
