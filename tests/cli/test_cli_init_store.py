"""PostgreSQL for teams: ``lockgate init --store URL --artifacts URL`` writes the settings,
``LOCKGATE_STORE_URL`` overrides them, and two project folders (two machines) pointed at one
PostgreSQL store and one artifact root run and see one registry."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest
from support import lockgate

from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.settings import Settings

TEAM_URL = "postgresql+psycopg://team@db.example:5432/lockgate"


def test_init_writes_the_store_and_artifact_settings_and_keeps_the_comments(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared" / "artifacts"
    result = lockgate("init", "proj", "--store", TEAM_URL, "--artifacts", str(shared), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    toml = (tmp_path / "proj" / "lockgate.toml").read_text()
    assert tomllib.loads(toml)["store"] == {"url": TEAM_URL, "artifact_root": str(shared)}
    assert "# The embedded default: a SQLite file in this folder." in toml
    assert tomllib.loads(toml)["serve"]["models"] == ["penguins"]  # the rest is untouched
    settings = Settings.load(tmp_path / "proj", environ={})
    assert settings.resolved_store_url == TEAM_URL
    assert settings.resolved_artifact_root == shared
    other = "postgresql+psycopg://other@db.example/lockgate"
    assert (
        Settings.load(tmp_path / "proj", environ={"LOCKGATE_STORE_URL": other}).store_url == other
    )


def test_init_for_your_own_data_writes_the_store_too(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "lockgate" / "templates" / "penguins" / "data"
    result = lockgate(
        "init", "mine", "--data", str(data / "penguins.csv"), "--label", "species",
        "--store", TEAM_URL, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Settings.load(tmp_path / "mine", environ={}).store_url == TEAM_URL


def test_init_refuses_a_bad_store_url_before_writing_anything(tmp_path: Path) -> None:
    for url, message in (
        ("mysql://u@h/d", "names the database 'mysql'; the store runs on SQLite and PostgreSQL"),
        ("not a url", "is not a database URL"),
        ("postgresql+pg8000://u@h/d", "needs the driver 'pg8000', which is not installed"),
    ):
        result = lockgate("init", "proj", "--store", url, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "hint: " in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "proj").exists()


def test_init_warns_when_the_password_goes_into_the_file(tmp_path: Path) -> None:
    url = "postgresql+psycopg://team:secret@db.example/lockgate"
    result = lockgate("init", "proj", "--store", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "holds the database password" in result.stdout
    assert "LOCKGATE_STORE_URL" in result.stdout


def test_two_machines_share_one_postgresql_store_and_artifact_root(
    tmp_path: Path, empty_postgres: str
) -> None:
    """Alice inits and runs; Bob, on a project folder of his own with the same settings,
    sees her model in the registry and runs from her cache (the artifacts are shared)."""
    shared = tmp_path / "shared"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    alice = lockgate(
        "init", "alice", "--store", empty_postgres, "--artifacts", str(shared), cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert alice.returncode == 0, alice.stderr
    shutil.copytree(tmp_path / "alice", tmp_path / "bob")
    first = lockgate("run", cwd=tmp_path / "alice", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert not (tmp_path / "alice" / ".lockgate" / "metadata.db").exists()  # all in PostgreSQL
    listed = lockgate("models", "list", cwd=tmp_path / "bob", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "penguins" in listed.stdout
    second = lockgate("run", cwd=tmp_path / "bob", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    store = SqlMetadataStore(empty_postgres)
    try:
        runs = store.list_runs()
        assert [r.status for r in runs] == ["complete", "complete"]
        steps = {e.step_name: e.status for e in store.run_executions(runs[0].id)}
        assert steps["train"] == "cached"  # Bob reused Alice's model: same store, same files
        pushed = Registry(store).get("penguins").artifact
        assert Path(pushed.uri).is_relative_to(shared)
    finally:
        store.close()


@pytest.mark.parametrize("args", [("runs",), ("models", "list")])
def test_an_unreachable_team_store_is_one_line_and_a_hint(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    assert lockgate("init", "proj", "--store", url, cwd=tmp_path).returncode == 0
    result = lockgate(*args, cwd=tmp_path / "proj")
    assert result.returncode != 0
    assert "cannot open the metadata store" in result.stderr
    assert "hint: " in result.stderr and "Traceback" not in result.stderr
