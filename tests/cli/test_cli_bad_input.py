"""Bad input data stops the pipeline with a clear error and loses nothing already stored."""

from __future__ import annotations

import shutil
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
    assert executions["validate_examples"] == ("blocked", {})
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
    assert latest_run_executions(project)["ingest"][0] == "failed"
