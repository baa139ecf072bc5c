"""The ingest component through run_pipeline: spans, set-aside rows, SQL, and the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from lockgate import Pipeline, run_pipeline
from lockgate.components import ingest
from lockgate.core.artifacts import Artifact
from lockgate.errors import ConfigError
from lockgate.metadata.store import SqlMetadataStore


def _run(tmp_path: Path, step, name: str = "p"):  # -> RunResult
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        return run_pipeline(
            Pipeline(name, [step]), store=store, artifact_root=tmp_path / "a", project_dir=tmp_path
        )
    finally:
        store.close()


def _examples(result) -> Artifact:
    assert result.ok, result.error
    return result.steps["ingest"].outputs["examples"]


def _spans(tmp_path: Path) -> None:
    for span in (1, 2, 3):
        folder = tmp_path / "data" / f"span-{span}"
        folder.mkdir(parents=True)
        rows = "".join(f"{i},{span}\n" for i in range(40))
        (folder / "trips.csv").write_text("id,span\n" + rows)


def test_a_given_span_is_ingested_and_recorded(tmp_path: Path) -> None:
    _spans(tmp_path)
    examples = _examples(_run(tmp_path, ingest(path="data/span-{SPAN}/trips.csv", span=2)))
    assert examples.properties["span"] == 2
    assert examples.properties["source"].endswith("span-2/trips.csv")
    assert sum(examples.properties["splits"].values()) == 40
    assert examples.properties["rejected"] == 0
    assert examples.properties["source_fingerprint"]


def test_latest_span_is_cached_until_a_new_span_arrives(tmp_path: Path) -> None:
    _spans(tmp_path)
    step = ingest(path="data/span-{SPAN}/trips.csv")
    first = _run(tmp_path, step)
    assert _examples(first).properties["span"] == 3
    assert _run(tmp_path, step).steps["ingest"].status == "cached"
    (tmp_path / "data" / "span-4").mkdir()
    (tmp_path / "data" / "span-4" / "trips.csv").write_text("id,span\n1,4\n2,4\n")
    third = _run(tmp_path, step)
    assert third.steps["ingest"].status == "complete"
    assert _examples(third).properties["span"] == 4


def test_missing_span_fails_the_step_with_the_spans_listed(tmp_path: Path) -> None:
    _spans(tmp_path)
    result = _run(tmp_path, ingest(path="data/span-{SPAN}/trips.csv", span=9))
    assert not result.ok
    assert "span 9" in str(result.error) and "spans are [1, 2, 3]" in str(result.error)


def test_bad_rows_skip_reports_the_rejected_count(tmp_path: Path, testdata: Path) -> None:
    step = ingest(path=str(testdata / "stray_value.csv"), bad_rows="skip")
    examples = _examples(_run(tmp_path, step))
    assert examples.properties["rejected"] == 1
    assert examples.properties["rejected_reasons"] == [
        "line 11, column 'fare': expected double, got 'n/a?'"
    ]
    assert (Path(examples.uri) / "rejected" / "rejected.parquet").exists()
    failed = _run(
        tmp_path / "strict", ingest(path=str(testdata / "stray_value.csv"), bad_rows="error")
    )
    assert not failed.ok and "line 11, column 'fare'" in str(failed.error)


def test_csv_options_reach_the_reader(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("".join(f"{i};{i * 2}\n" for i in range(30)))
    step = ingest(path="x.csv", delimiter=";", header=False)
    assert _examples(_run(tmp_path, step)).properties["columns"] == ["column_0", "column_1"]


def test_a_query_step_is_never_cached(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:a)"), [{"a": i} for i in range(20)])
    engine.dispose()
    step = ingest(query="SELECT a FROM t", url=url)
    first = _examples(_run(tmp_path, step))
    assert first.properties["source_fingerprint"] is None
    assert first.properties["span"] is None
    assert first.properties["source"].endswith("SELECT a FROM t")
    assert _run(tmp_path, step).steps["ingest"].status == "complete"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"path": "x.csv", "query": "SELECT 1", "url": "sqlite://"}, {"query": "SELECT 1"}],
)
def test_exactly_one_source(tmp_path: Path, kwargs: dict) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    result = _run(tmp_path, ingest(**kwargs))
    assert not result.ok and isinstance(result.error, ConfigError)
    assert "either path=... or query=... with url=..." in str(result.error)
