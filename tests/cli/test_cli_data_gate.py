"""The data gate through the real `lockgate` command (issue 8): the shipped demo given five
penguins from an island it never saw stops before training, says why and keeps its report,
and production does not move; `lockgate schema update` accepts the change on request; a
value of the wrong type is an anomaly of the data, from `lockgate validate` and in a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import lockgate

from lockgate.metadata.store import SqlMetadataStore

ATLANTIS = [f"Adelie,Atlantis,40.{i},18.1,190,3700,male,2009" for i in range(5)]


def step_statuses(output: str) -> dict[str, str]:
    """{step: status} from the run summary's step table."""
    statuses = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[1] in {"complete", "cached", "failed", "blocked", "skipped"}:
            statuses[parts[0]] = parts[1]
    return statuses


def open_store(project: Path) -> SqlMetadataStore:
    return SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")


def append_rows(project: Path, rows: list[str]) -> None:
    path = project / "data" / "penguins.csv"
    path.write_text(path.read_text() + "\n".join(rows) + "\n")


def production_version(project: Path) -> str:
    listed = lockgate("models", "list", cwd=project)
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("penguins")]
    return line.split()[-1]  # production=N


@pytest.fixture()
def demo(tmp_path: Path) -> Path:
    """`lockgate demo` once: it writes the curated schema.yaml from the shipped data."""
    result = lockgate("demo", "--dir", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    project = tmp_path / "demo"
    assert "domain: [Biscoe, Dream, Torgersen]" in (project / "schema.yaml").read_text()
    return project


def test_first_run_writes_the_curated_schema_and_says_so(tmp_path: Path) -> None:
    result = lockgate("demo", "--dir", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "Schema: wrote demo/schema.yaml from this data; review it and keep it in version control"
        in result.stdout
    )
    assert "Anomalies: none" in result.stdout
    again = lockgate("run", cwd=tmp_path / "demo")
    assert again.returncode == 0, again.stderr
    assert "Schema: wrote" not in again.stdout  # read from now on, never written again


def test_an_unseen_island_stops_the_run_before_training_with_the_report_kept(
    demo: Path,
) -> None:
    assert production_version(demo) == "production=1"
    append_rows(demo, ATLANTIS)
    result = lockgate("run", cwd=demo)
    assert result.returncode == 1
    statuses = step_statuses(result.stdout)
    assert statuses["validate_examples"] == "blocked"
    assert statuses["fit_transform"] == statuses["train"] == statuses["push"] == "skipped"
    assert "Anomalies: none" not in result.stdout
    assert "stopped the run at validate_examples" in result.stdout
    (finding,) = [line for line in result.stdout.splitlines() if "<- stopped the run" in line]
    assert "feature 'island'" in finding and "'Atlantis'" in finding and "[error]" in finding
    (report_line,) = [line for line in result.stdout.splitlines() if "report:" in line]
    report = demo / report_line.split("report:")[1].strip()
    assert report.name == "report.html" and "Atlantis" in report.read_text()
    store = open_store(demo)
    try:
        run = store.list_runs()[0]
        (execution,) = [
            e for e in store.run_executions(run.id) if e.step_name == "validate_examples"
        ]
        assert execution.status == "blocked"
        anomalies = store.execution_artifacts(execution.id, "output")["anomalies"]
        assert anomalies.type_name == "Anomalies" and anomalies.id is not None
        assert Path(anomalies.uri, "report.html") == report.resolve()
        found = json.loads(Path(anomalies.uri, "anomalies.json").read_text())
        assert [a["kind"] for a in found["train"] + found["eval"]].count("unexpected_value") >= 1
    finally:
        store.close()
    assert production_version(demo) == "production=1"  # production unchanged


def test_schema_update_shows_the_change_and_writes_it_only_when_asked(demo: Path) -> None:
    append_rows(demo, ATLANTIS)
    before = (demo / "schema.yaml").read_text()
    shown = lockgate("schema", "update", cwd=demo)
    assert shown.returncode == 1, shown.stderr
    assert "feature 'island': domain values added: 'Atlantis'" in shown.stdout
    assert "--write" in shown.stdout
    assert (demo / "schema.yaml").read_text() == before  # nothing written
    written = lockgate("schema", "update", "--write", cwd=demo)
    assert written.returncode == 0, written.stderr
    assert "wrote schema.yaml" in written.stdout
    after = (demo / "schema.yaml").read_text()
    assert "domain: [Biscoe, Dream, Torgersen, Atlantis]" in after
    assert "severity: {out_of_range: warning}" in after  # what nobody asked about stays
    same = lockgate("schema", "update", cwd=demo)
    assert same.returncode == 0 and "no changes" in same.stdout
    result = lockgate("run", cwd=demo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "version 2, now in production" in result.stdout


def two_in_an_int_column(folder: Path) -> tuple[Path, Path]:
    """A schema inferred from 100 good rows, and the same file with "two" and "three"."""
    rows = ["a,b"] + [f"{i},x{i % 3}" for i in range(100)]
    good = folder / "good.csv"
    good.write_text("\n".join(rows) + "\n")
    rows[51], rows[80] = "two,x1", "three,x2"
    bad = folder / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    schema = lockgate("schema", "infer", "good.csv", cwd=folder)
    assert schema.returncode == 0, schema.stderr
    (folder / "schema.yaml").write_text(schema.stdout)
    return bad, folder / "schema.yaml"


def test_validate_reports_a_value_of_the_wrong_type_as_an_anomaly(tmp_path: Path) -> None:
    two_in_an_int_column(tmp_path)
    result = lockgate("validate", "bad.csv", "--schema", "schema.yaml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # a finding, not "could not run"
    (line,) = [line for line in result.stdout.splitlines() if "type_mismatch" in line]
    assert line.split()[:4] == ["error", "a", "type_mismatch", "2"]
    assert "'two' (line 52)" in line and "'three' (line 81)" in line
    as_json = lockgate("validate", "bad.csv", "--schema", "schema.yaml", "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    (anomaly,) = json.loads(as_json.stdout)["anomalies"]  # the nulls are not also "missing"
    assert anomaly["kind"] == "type_mismatch" and anomaly["count"] == 2
    assert anomaly["seen"] == [{"line": 52, "value": "two"}, {"line": 81, "value": "three"}]


def test_validate_reads_a_column_as_the_schema_types_it(tmp_path: Path) -> None:
    """Where most of the column is text, the schema still says int: each value is reported."""
    rows = ["a"] + [str(i) for i in range(10)] + ["many", "few"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "schema.yaml").write_text("features:\n  a: {type: int}\n")
    result = lockgate("validate", "d.csv", "--schema", "schema.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 1
    (anomaly,) = json.loads(result.stdout)["anomalies"]
    assert anomaly["count"] == 2 and anomaly["seen"][0] == {"line": 12, "value": "many"}


def test_a_value_of_the_wrong_type_stops_the_run_at_the_data_gate(demo: Path) -> None:
    path = demo / "data" / "penguins.csv"
    lines = path.read_text().splitlines()
    fields = lines[5].split(",")
    fields[5] = "heavy"  # body_mass_g at line 6
    lines[5] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    result = lockgate("run", cwd=demo)
    assert result.returncode == 1
    statuses = step_statuses(result.stdout)
    assert statuses["ingest"] == "complete" and statuses["validate_examples"] == "blocked"
    assert statuses["train"] == "skipped"
    (finding,) = [line for line in result.stdout.splitlines() if "<- stopped the run" in line]
    assert "feature 'body_mass_g'" in finding and "'heavy' at line 6" in finding
    assert "could not run" not in result.stderr
    assert production_version(demo) == "production=1"


def test_bad_rows_skip_sets_the_row_aside_and_the_run_passes(demo: Path) -> None:
    path = demo / "data" / "penguins.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[5], "heavy", 1)
    path.write_text("\n".join(lines) + "\n")
    pipeline = demo / "pipeline.py"
    pipeline.write_text(
        pipeline.read_text().replace("eval_fraction=0.25)", 'eval_fraction=0.25, bad_rows="skip")')
    )
    result = lockgate("run", cwd=demo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Anomalies: none" in result.stdout
    assert (
        "Rows set aside by ingest: 1 (bad_rows='skip'; rejected/rejected.parquet): line 6, "
        "column 'body_mass_g': expected int64, got 'heavy'" in result.stdout
    )
    store = open_store(demo)
    try:
        examples = store.artifacts_of_type("Examples")[-1]
        assert examples.properties["rejected"] == 1
        assert examples.properties["rejected_reasons"] == [
            "line 6, column 'body_mass_g': expected int64, got 'heavy'"
        ]
        assert sum(examples.properties["splits"].values()) == 343  # of 344 rows
    finally:
        store.close()
