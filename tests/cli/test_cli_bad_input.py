"""Bad input data stops the pipeline with a clear error and loses nothing already stored."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support import lockgate

from lockgate.core.fingerprint import path_fingerprint
from lockgate.metadata.store import SqlMetadataStore


@pytest.fixture
def project_after_one_good_run(penguins_project: Path) -> Path:
    """A project that ran once on good data; its inferred schema kept as a curated file."""
    result = lockgate("run", cwd=penguins_project)
    assert result.returncode == 0, result.stdout + result.stderr
    store = SqlMetadataStore(f"sqlite:///{penguins_project / '.lockgate' / 'metadata.db'}")
    (schema,) = store.artifacts_of_type("Schema")
    store.close()
    shutil.copy(Path(schema.uri) / "schema.yaml", penguins_project / "schema.yaml")
    return penguins_project


def stored_artifacts(project: Path) -> dict[int, str]:
    """{artifact id: fingerprint of its files now} for every registered artifact."""
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        found = {}
        for type_name in (
            "Examples",
            "Statistics",
            "Schema",
            "TransformGraph",
            "Model",
            "PushedModel",
        ):
            for artifact in store.artifacts_of_type(type_name):
                found[artifact.id] = path_fingerprint(artifact.uri)
        return found
    finally:
        store.close()


def latest_run_executions(project: Path) -> dict[str, tuple[str, dict]]:
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        run = store.list_runs()[0]
        return {
            e.step_name: (e.status, store.execution_artifacts(e.id, "output"))
            for e in store.run_executions(run.id)
        }
    finally:
        store.close()


def edit_csv(project: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = project / "data" / "penguins.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def test_a_malformed_row_names_file_and_line_and_registers_nothing(
    project_after_one_good_run: Path,
) -> None:
    project = project_after_one_good_run
    before = stored_artifacts(project)

    def add_a_field(lines: list[str]) -> list[str]:
        lines[9] = lines[9] + ",surplus"
        return lines

    edit_csv(project, add_a_field)
    result = lockgate("run", cwd=project)
    assert result.returncode == 1
    assert "Step 'ingest' failed" in result.stderr
    assert "penguins.csv" in result.stderr and "line 10" in result.stderr
    executions = latest_run_executions(project)
    assert executions["ingest"] == ("failed", {})
    assert set(executions) == {"ingest"}  # nothing after it started
    assert "train" in result.stdout and "skipped" in result.stdout
    assert stored_artifacts(project) == before  # nothing new, nothing changed


def test_a_missing_required_column_is_stopped_by_the_data_gate(
    project_after_one_good_run: Path,
) -> None:
    project = project_after_one_good_run
    before = stored_artifacts(project)

    def drop_bill_depth(lines: list[str]) -> list[str]:
        return [",".join(v for i, v in enumerate(line.split(",")) if i != 3) for line in lines]

    edit_csv(project, drop_bill_depth)
    result = lockgate("run", "--set", "infer_schema.schema_file=schema.yaml", cwd=project)
    assert result.returncode == 1
    assert "Step 'validate_examples' gate closed" in result.stderr
    assert "bill_depth_mm" in result.stderr and "missing" in result.stderr
    assert "skipped" in result.stdout  # nothing was trained on it
    executions = latest_run_executions(project)
    status, outputs = executions["validate_examples"]
    assert status == "blocked" and list(outputs) == ["anomalies"]  # its findings are kept
    assert "fit_transform" not in executions
    after = stored_artifacts(project)
    assert {k: v for k, v in after.items() if k in before} == before


def test_a_column_whose_type_changed_is_named(project_after_one_good_run: Path) -> None:
    project = project_after_one_good_run

    def body_mass_as_text(lines: list[str]) -> list[str]:
        fields = lines[5].split(",")
        fields[5] = "heavy"
        lines[5] = ",".join(fields)
        return lines

    edit_csv(project, body_mass_as_text)
    result = lockgate("run", "--set", "infer_schema.schema_file=schema.yaml", cwd=project)
    assert result.returncode == 1
    assert "body_mass_g" in result.stderr and "line 6" in result.stderr and "heavy" in result.stderr
    executions = latest_run_executions(project)  # an anomaly of the data: the gate stops it
    assert executions["ingest"][0] == "complete"
    assert executions["validate_examples"][0] == "blocked"


# -- input that used to end in a traceback or a misleading message ---------------------------

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "data"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's contract for bad input: exit status 2, one `error:` line and one `hint:`
    line, printable ASCII (no raw bytes of the file), no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert result.stderr.isascii() and all(line.isprintable() for line in lines), result.stderr
    return lines[0]


def test_a_csv_line_of_512_mib_names_its_line_and_the_limit(tmp_path: Path) -> None:
    with (tmp_path / "huge.csv").open("wb") as fh:  # sparse: 512 MiB that take no disk
        fh.write(b"id,text\n1,short\n2,")
        fh.truncate(fh.tell() + (512 << 20))
        fh.seek(0, 2)
        fh.write(b"\n3,short\n")
    line = one_error_line(lockgate("stats", "huge.csv", cwd=tmp_path))
    assert line == (
        "error: line 3 of huge.csv is 536,870,914 bytes long; a CSV line must be shorter "
        "than 512 MiB (536,870,912 bytes)"
    )


def test_random_bytes_in_a_csv_file_are_one_printable_line(tmp_path: Path) -> None:
    shutil.copy(TESTDATA / "random_bytes.csv", tmp_path / "random.csv")
    (tmp_path / "schema.yaml").write_text("features:\n  a: {type: string}\n")
    for args in (["stats", "random.csv"], ["validate", "random.csv", "--schema", "schema.yaml"]):
        result = lockgate(*args, cwd=tmp_path)
        line = one_error_line(result)
        assert re.fullmatch(
            r"error: data file random\.csv is not valid UTF-8 in its header \(field \d+\) at "
            r"line 1: byte 0x[0-9a-f]{2} in b.*",
            line,
        ), line
        assert "binary file" in result.stderr


def test_random_bytes_stop_a_run_at_ingest_without_a_traceback(penguins_project: Path) -> None:
    shutil.copy(TESTDATA / "random_bytes.csv", penguins_project / "data" / "penguins.csv")
    result = lockgate("run", cwd=penguins_project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Step 'ingest' failed: data file " in result.stderr
    assert "penguins.csv is not valid UTF-8 in its header" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr.isascii() and all(
        line.isprintable() for line in result.stderr.splitlines()
    )


def test_invalid_utf8_names_the_files_own_line_and_the_column(tmp_path: Path) -> None:
    shutil.copy(TESTDATA / "not_utf8_after_quoted_lines.csv", tmp_path / "cities.csv")
    line = one_error_line(lockgate("stats", "cities.csv", cwd=tmp_path))
    assert line == (
        "error: data file cities.csv is not valid UTF-8 in column 'city' at line 7: "
        r"byte 0xfc in b'3,plain,M\xfcnchen'"
    )


def test_a_nested_parquet_column_stops_ingest_as_stats_names_it(penguins_project: Path) -> None:
    shutil.copy(TESTDATA / "nested_struct.parquet", penguins_project / "data" / "nested.parquet")
    message = (
        "column 'dims' of {}data/nested.parquet has the nested type "
        "struct<length: double, depth: double>; lockgate reads flat columns"
    )
    stats = lockgate("stats", "data/nested.parquet", cwd=penguins_project)
    assert one_error_line(stats).startswith("error: " + message.format(""))
    run = lockgate("run", "--set", 'ingest.path="data/nested.parquet"', cwd=penguins_project)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"Step 'ingest' failed: {message.format(f'{penguins_project}/')}" in run.stderr
    assert "flatten it into one column per field" in run.stderr
    assert "Unsupported cast" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("name", ["header_only.csv", "zero_rows.parquet"])
def test_a_file_without_rows_is_no_rows_not_every_column_missing(tmp_path: Path, name: str) -> None:
    shutil.copy(TESTDATA / name, tmp_path / name)
    (tmp_path / "schema.yaml").write_text(
        "features:\n  id: {type: int}\n  island: {type: string}\n  mass: {type: float}\n"
    )
    validate = lockgate("validate", name, "--schema", "schema.yaml", cwd=tmp_path)
    assert validate.returncode == 1, validate.stdout + validate.stderr
    assert "no_rows" in validate.stdout and "missing_column" not in validate.stdout
    as_json = lockgate("validate", name, "--schema", "schema.yaml", "--json", cwd=tmp_path)
    [anomaly] = json.loads(as_json.stdout)["anomalies"]
    assert anomaly["kind"] == "no_rows" and "saw 0 rows of 3 columns" in anomaly["message"]
    stats = lockgate("stats", name, "--json", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert f"note: {name} has no rows, only its 3 columns" in stats.stderr
    assert json.loads(stats.stdout)["num_rows"] == 0
    infer = lockgate("schema", "infer", name, cwd=tmp_path)
    assert one_error_line(infer) == (
        f"error: {name} has no rows to infer a schema from (3 columns, 0 rows)"
    )
