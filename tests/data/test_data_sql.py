"""read_sql_batches on SQLite and PostgreSQL: streamed, typed, errors without passwords."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from lockgate.data.ingest import ingest_query
from lockgate.data.sql import read_sql_batches, redact_url
from lockgate.errors import DataError, DataFileError


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'd.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS trips"))
        conn.execute(
            sa.text(
                "CREATE TABLE trips (id INTEGER, fare NUMERIC(6, 2), city VARCHAR(20), note TEXT)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO trips VALUES (:id, :fare, :city, NULL)"),
            [{"id": i, "fare": i * 1.25, "city": f"c{i % 3}"} for i in range(250)],
        )
    engine.dispose()
    yield url


def test_batches_are_streamed_and_typed(db_url: str) -> None:
    batches = list(read_sql_batches(db_url, "SELECT * FROM trips ORDER BY id", batch_size=100))
    assert [b.num_rows for b in batches] == [100, 100, 50]
    schema = batches[0].schema
    assert all(b.schema == schema for b in batches)
    assert schema.field("id").type == pa.int64()
    assert schema.field("fare").type == pa.float64()
    assert schema.field("city").type == pa.string()
    assert schema.field("note").type == pa.string()
    table = pa.Table.from_batches(batches)
    assert table.column("fare").to_pylist()[:3] == [0.0, 1.25, 2.5]


def test_ingest_query_writes_splits(db_url: str, tmp_path: Path) -> None:
    report = ingest_query(db_url, "SELECT id, city FROM trips", tmp_path / "o", batch_size=64)
    assert sum(report.splits.values()) == 250
    assert pq.read_table(tmp_path / "o" / "eval").num_rows == report.splits["eval"]


def test_bad_sql_names_the_query(db_url: str) -> None:
    with pytest.raises(DataError, match=r"query 'SELECT nope FROM trips' on .* failed"):
        list(read_sql_batches(db_url, "SELECT nope FROM trips"))


def test_duplicate_result_columns_named(db_url: str) -> None:
    with pytest.raises(DataFileError, match="column 'id' appears more than once"):
        list(read_sql_batches(db_url, "SELECT id, id FROM trips"))


def test_bad_url_hides_the_password() -> None:
    with pytest.raises(DataError, match=r"cannot use the database URL") as info:
        list(read_sql_batches("nosuchdb://user:s3cret@host/db", "SELECT 1"))
    assert "s3cret" not in str(info.value)
    with pytest.raises(DataError) as info:
        list(read_sql_batches("postgresql+psycopg://u:s3cret@127.0.0.1:1/db", "SELECT 1"))
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    assert redact_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_sqlite_type_change_mid_query_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (v)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:v)"), [{"v": 1}, {"v": 2}, {"v": "x"}])
    engine.dispose()
    with pytest.raises(DataError, match=r"column 'v' changes type after row 2: expected int64"):
        list(read_sql_batches(url, "SELECT v FROM t", batch_size=2))
