"""The curated schema (issue 8): inferred once and written into the project, then read from
there (its content in the cache key) so that new data is checked against it rather than
against itself; ``update_schema`` changes only what new data contradicts."""

from __future__ import annotations

from pathlib import Path

import yaml

from lockgate import Pipeline, run_pipeline
from lockgate.components import compute_statistics, infer_schema, ingest, validate_examples
from lockgate.data.schema import FeatureSpec, Schema, diff_schemas
from lockgate.data.statistics import statistics_of_table
from lockgate.metadata.store import SqlMetadataStore

ROWS = [f"{i},{'ab'[i % 2]},{i % 7}.5" for i in range(200)]


def _write(project: Path, rows: list[str]) -> None:
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "d.csv").write_text("id,c,x\n" + "\n".join(rows) + "\n")


def _pipeline() -> Pipeline:
    examples = ingest(path="data/d.csv")
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics, schema_file="schema.yaml")
    validation = validate_examples(
        statistics=statistics.outputs.statistics, schema=schema.outputs.schema
    )
    return Pipeline("curated", [examples, statistics, schema, validation])


def _run(project: Path):  # -> RunResult
    store = SqlMetadataStore(f"sqlite:///{project / 'm.db'}")
    try:
        return run_pipeline(
            _pipeline(), store=store, artifact_root=project / "a", project_dir=project
        )
    finally:
        store.close()


def test_the_first_run_writes_the_schema_into_the_project(tmp_path: Path) -> None:
    _write(tmp_path, ROWS)
    result = _run(tmp_path)
    assert result.ok, result.error
    schema = result.steps["infer_schema"].outputs["schema"]
    assert schema.properties["source"] == "inferred"
    assert schema.properties["written_to"] == str(tmp_path / "schema.yaml")
    written = (tmp_path / "schema.yaml").read_text()
    assert written == Path(schema.uri, "schema.yaml").read_text()
    assert yaml.safe_load(written)["features"]["c"]["domain"] == ["a", "b"]


def test_later_runs_check_new_data_against_the_written_schema(tmp_path: Path) -> None:
    _write(tmp_path, ROWS)
    assert _run(tmp_path).ok
    _write(tmp_path, ROWS + [f"{i},z,1.5" for i in range(200, 210)])  # a new category
    result = _run(tmp_path)
    assert result.status == "blocked" and result.failed_step == "validate_examples"
    schema = result.steps["infer_schema"].outputs["schema"]
    assert schema.properties["source"] == str(tmp_path / "schema.yaml")
    assert "written_to" not in schema.properties
    assert "'z'" in str(result.error)
    assert yaml.safe_load((tmp_path / "schema.yaml").read_text())["features"]["c"]["domain"] == [
        "a",
        "b",
    ]


def test_an_edit_to_the_schema_file_reruns_the_step(tmp_path: Path) -> None:
    _write(tmp_path, ROWS)
    assert _run(tmp_path).ok
    assert _run(tmp_path).steps["infer_schema"].status == "complete"  # now read from the file
    assert _run(tmp_path).steps["infer_schema"].status == "cached"
    path = tmp_path / "schema.yaml"
    path.write_text(path.read_text().replace("domain: [a, b]", "domain: [a]"))
    result = _run(tmp_path)
    assert result.steps["infer_schema"].status == "complete"
    assert result.status == "blocked"  # 'b' is now outside the curated domain


def test_a_deleted_schema_is_written_again(tmp_path: Path) -> None:
    _write(tmp_path, ROWS)
    assert _run(tmp_path).ok
    (tmp_path / "schema.yaml").unlink()
    result = _run(tmp_path)
    assert result.ok and result.steps["infer_schema"].status == "complete"
    assert (tmp_path / "schema.yaml").exists()


def test_update_changes_only_what_the_data_contradicts() -> None:
    import pyarrow as pa

    from lockgate.data.schema_inference import update_schema

    curated = Schema(
        {
            "c": FeatureSpec("string", 1.0, ["a", "b"], severity="warning"),
            "x": FeatureSpec("float", 1.0, range=(0.0, 10.0), drift_threshold=0.2),
            "gone": FeatureSpec("int"),
        }
    )
    table = pa.table(
        {
            "c": ["a", "b", "z"] * 40,
            "x": [1.0, 2.0, 30.0] * 40,
            "new": [1, 2, 3] * 40,
        }
    )
    proposed = update_schema(curated, statistics_of_table(table))
    assert proposed.features["c"].domain == ["a", "b", "z"]
    assert proposed.features["c"].severity == "warning"  # kept
    low, high = proposed.features["x"].range or (None, None)
    assert low == 0.0 and high >= 30.0
    assert proposed.features["x"].drift_threshold == 0.2  # kept
    assert "gone" not in proposed.features and "new" in proposed.features
    kinds = [change.kind for change in diff_schemas(curated, proposed)]
    assert sorted(kinds) == [
        "domain_values_added",
        "feature_added",
        "feature_removed",
        "range_changed",
    ]


def test_update_of_a_schema_the_data_fits_is_no_change() -> None:
    import pyarrow as pa

    from lockgate.data.schema_inference import update_schema

    table = pa.table({"c": ["a", "b"] * 50, "x": [1.0, 2.0] * 50})
    stats = statistics_of_table(table)
    curated = Schema.from_statistics(stats)
    assert diff_schemas(curated, update_schema(curated, stats)) == []
