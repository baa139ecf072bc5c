"""A SQLite store that another process keeps busy past the busy timeout: a clear
MetadataError that says what happened and what to do, not a driver's traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lockgate.errors import MetadataError
from lockgate.metadata import database
from lockgate.metadata.store import SqlMetadataStore


def test_a_store_busy_past_the_timeout_is_a_metadata_error_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metadata.db"
    SqlMetadataStore(f"sqlite:///{path}").close()
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    store = SqlMetadataStore(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(
            MetadataError, match="stayed busy for over 0.3 s: another process held a write"
        ) as caught:
            store.start_run("p")
        assert caught.value.hint is not None and "PostgreSQL" in caught.value.hint
        other.execute("ROLLBACK")
        run_id = store.start_run("p")  # once the other writer is done, the write goes through
        assert store.get_run(run_id).pipeline == "p"
    finally:
        other.close()
        store.close()
