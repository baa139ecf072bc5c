"""A value that does not parse as its column's type is an anomaly of the data (issue 8): ingest
keeps the row (the value as null) and records the value and its line; the statistics carry
it; validation reports one ``type_mismatch`` with the count and examples, error by default;
``bad_rows="skip"`` and ``"error"`` keep their meaning."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lockgate import Pipeline, run_pipeline
from lockgate.components import compute_statistics, infer_schema, ingest, validate_examples
from lockgate.data.ingest import ingest_to_folder
from lockgate.data.schema import FeatureSpec, Schema
from lockgate.data.validate import find_anomalies
from lockgate.errors import DataFileError
from lockgate.metadata.store import SqlMetadataStore

BAD_LINES = {12: "two", 40: "seven", 41: "n/a?", 60: "x", 70: "y", 90: "z"}


def _csv(path: Path, bad: dict[int, str] | None = None) -> Path:
    """200 rows of (n int, c string); ``bad`` puts text in n at those file lines."""
    lines = ["n,c"] + [f"{i},{'ab'[i % 2]}" for i in range(200)]
    for line, value in (bad or {}).items():
        lines[line - 1] = f"{value},{'ab'[line % 2]}"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ingest_keeps_the_rows_and_records_the_values_with_their_lines(tmp_path: Path) -> None:
    source = _csv(tmp_path / "d.csv", BAD_LINES)
    report = ingest_to_folder(source, tmp_path / "out", bad_rows="keep")
    assert sum(report.splits.values()) == 200 and report.rejected == 0
    found = report.invalid_values["n"]
    assert found["expected"] == "int" and found["count"] == 6
    assert found["examples"] == [
        {"line": 12, "value": "two"},
        {"line": 40, "value": "seven"},
        {"line": 41, "value": "n/a?"},
        {"line": 60, "value": "x"},
        {"line": 70, "value": "y"},
    ]  # the first five
    assert json.loads((tmp_path / "out" / "invalid_values.json").read_text()) == {"n": found}
    table = pq.ParquetDataset(
        [tmp_path / "out" / s / "part-0.parquet" for s in ("train", "eval")]
    ).read()
    assert str(table.schema.field("n").type) == "int64"
    assert table.column("n").null_count == 6
    assert any("kept as nulls" in w for w in report.warnings)


def test_skip_and_error_keep_their_meaning(tmp_path: Path) -> None:
    source = _csv(tmp_path / "d.csv", {12: "two"})
    skipped = ingest_to_folder(source, tmp_path / "skip", bad_rows="skip")
    assert sum(skipped.splits.values()) == 199 and skipped.rejected == 1
    assert skipped.invalid_values == {}
    with pytest.raises(DataFileError, match=r"line 12, column 'n': expected int64, got 'two'"):
        ingest_to_folder(source, tmp_path / "error", bad_rows="error")


def test_a_malformed_row_still_stops_a_keeping_ingest(tmp_path: Path) -> None:
    source = _csv(tmp_path / "d.csv")
    source.write_text(source.read_text().replace("5,b\n", "5,b,extra\n", 1))
    with pytest.raises(DataFileError, match=r"malformed row in .* at line 7: expected 2 fields"):
        ingest_to_folder(source, tmp_path / "out", bad_rows="keep")


def test_the_anomaly_names_feature_count_and_lines_with_error_severity() -> None:
    stats = {
        "num_rows": 100,
        "features": {"n": {"type": "int", "count": 98, "missing": 2}},
        "invalid_values": {
            "n": {
                "expected": "int",
                "count": 2,
                "examples": [{"line": 12, "value": "two"}, {"line": 40, "value": "seven"}],
            }
        },
    }
    schema = Schema({"n": FeatureSpec("int", 1.0, nullable=False)})
    (anomaly,) = find_anomalies(stats, schema)  # the two nulls are not also "missing"
    assert anomaly.kind == "type_mismatch" and anomaly.severity == "error"
    assert anomaly.feature == "n" and anomaly.count == 2
    assert "'two' at line 12" in anomaly.message and "'seven' at line 40" in anomaly.message
    warned = Schema({"n": FeatureSpec("int", severity={"type_mismatch": "warning"})})
    assert [a.severity for a in find_anomalies(stats, warned)] == ["warning"]


def _pipeline(bad_rows: str) -> Pipeline:
    examples = ingest(path="d.csv", bad_rows=bad_rows)
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics, schema_file="schema.yaml")
    validation = validate_examples(
        statistics=statistics.outputs.statistics, schema=schema.outputs.schema
    )
    return Pipeline("types", [examples, statistics, schema, validation])


def _run(project: Path, pipeline: Pipeline):  # -> RunResult
    store = SqlMetadataStore(f"sqlite:///{project / 'm.db'}")
    try:
        return run_pipeline(pipeline, store=store, artifact_root=project / "a", project_dir=project)
    finally:
        store.close()


def test_in_a_pipeline_ingest_passes_and_the_data_gate_stops_the_run(tmp_path: Path) -> None:
    _csv(tmp_path / "d.csv")
    assert _run(tmp_path, _pipeline("keep")).ok  # writes schema.yaml (n: int)
    _csv(tmp_path / "d.csv", {12: "two"})
    result = _run(tmp_path, _pipeline("keep"))
    assert result.steps["ingest"].status == "complete"
    assert result.status == "blocked" and result.failed_step == "validate_examples"
    assert "feature 'n'" in str(result.error) and "'two' at line 12" in str(result.error)
    statistics = result.steps["compute_statistics"].outputs["statistics"]
    all_stats = json.loads(Path(statistics.uri, "all.json").read_text())
    assert all_stats["invalid_values"]["n"]["count"] == 1
    anomalies = result.steps["validate_examples"].outputs["anomalies"]  # kept when blocked
    found = json.loads(Path(anomalies.uri, "anomalies.json").read_text())
    assert [a["kind"] for a in found["all"]] == ["type_mismatch"]
    assert Path(anomalies.uri, "report.html").exists()


def test_the_fixed_value_is_a_new_input(tmp_path: Path) -> None:
    """'two' read as null and an empty field are the same Parquet; the recorded value keeps
    the cache from reusing statistics (with the bad value) that no longer hold."""
    _csv(tmp_path / "d.csv")
    assert _run(tmp_path, _pipeline("keep")).ok
    _csv(tmp_path / "d.csv", {12: "two"})
    assert _run(tmp_path, _pipeline("keep")).status == "blocked"
    _csv(tmp_path / "d.csv", {12: ""})  # now missing, which the schema does not allow
    result = _run(tmp_path, _pipeline("keep"))
    assert result.steps["compute_statistics"].status == "complete"
    assert result.status == "blocked"
    assert "expected no missing value" in str(result.error)
    assert "did not parse" not in str(result.error)


def test_skip_in_a_pipeline_counts_the_row_and_the_gate_passes(tmp_path: Path) -> None:
    _csv(tmp_path / "d.csv")
    assert _run(tmp_path, _pipeline("skip")).ok
    _csv(tmp_path / "d.csv", {12: "two"})
    result = _run(tmp_path, _pipeline("skip"))
    assert result.ok, result.error
    examples = result.steps["ingest"].outputs["examples"]
    assert examples.properties["rejected"] == 1
