"""``lockgate show ID`` of a ModelEvaluation: its report in the terminal or as HTML, from a
real project's store, for an evaluation.json of format 2 and of format 1, and of the one the
demo's evaluate step wrote."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from evaluation_fixtures import (
    HOSTILE,
    classification_evaluation,
    format_1_evaluation,
    regression_evaluation,
)
from support import lockgate

from lockgate.cli.demo import create_project
from lockgate.cli.main import cli
from lockgate.cli.project import load_settings, open_store
from lockgate.core.artifacts import ModelEvaluation


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return create_project(tmp_path / "proj", "penguins")


def publish_evaluation(project: Path, evaluation: Any, *, report_html: str | None = None) -> int:
    """A ModelEvaluation registered as the launcher does: an evaluate execution publishes
    the folder holding evaluation.json (and report.html)."""
    folder = project / "artifacts" / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    text = evaluation if isinstance(evaluation, str) else json.dumps(evaluation, indent=1)
    (folder / "evaluation.json").write_text(text)
    if report_html is not None:
        (folder / "report.html").write_text(report_html)
    store = open_store(load_settings(project))
    try:
        run_id = store.start_run("penguins")
        execution = store.start_execution(
            run_id,
            step="evaluate",
            component="evaluate",
            cache_key=None,
            code_fingerprint=None,
            params={},
            inputs={},
        )
        artifact = ModelEvaluation(uri=str(folder))
        store.publish_execution(execution, {"evaluation": artifact})
        store.finish_run(run_id, "complete")
    finally:
        store.close()
    assert artifact.id is not None
    return artifact.id


def show(project: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["show", *args, "--project", str(project)], env={"COLUMNS": "200"}
    )


def test_show_renders_the_report_in_the_terminal(project: Path) -> None:
    artifact_id = publish_evaluation(project, classification_evaluation(baseline=True))
    result = show(project, str(artifact_id))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"ModelEvaluation #{artifact_id} from step 'evaluate' of run 1"
    assert lines[1] == "Model evaluation: NOT BLESSED"
    assert "FAIL  island=Dream · f1_macro" in result.output
    assert result.output.index("FAIL") < result.output.index("SKIP") < result.output.index("pass")
    assert "0.912 [0.883, 0.941]" in result.output and "Δ -0.030" in result.output
    assert f"island={HOSTILE}" in result.output  # printed as text, not taken as markup


def test_show_metrics_option(project: Path) -> None:
    artifact_id = publish_evaluation(project, regression_evaluation(baseline=True))
    result = show(project, str(artifact_id), "--metrics", "r2, residual_p50")
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index(" slice ") :]
    assert "residual_p50" in table and "r2" in table and "rmse" not in table
    result = show(project, str(artifact_id), "--metrics", "rsme")
    assert result.exit_code == 2
    assert "error: metric 'rsme' is not in this evaluation" in result.output
    assert "did you mean 'rmse'?" in result.output


def test_show_html_draws_the_report_or_copies_the_one_written(
    project: Path, tmp_path: Path
) -> None:
    artifact_id = publish_evaluation(project, regression_evaluation(baseline=False))
    out = tmp_path / "report.html"
    result = show(project, str(artifact_id), "--html", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "NOT BLESSED" in html and "<svg " in html
    assert "Model evaluation:" not in result.output  # no terminal tables with --html

    written = "<!doctype html><title>the evaluate step's own report</title>"
    artifact_id = publish_evaluation(
        project, regression_evaluation(baseline=False), report_html=written
    )
    result = show(project, str(artifact_id), "--html", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == written


def test_show_json_is_the_record(project: Path) -> None:
    artifact_id = publish_evaluation(project, classification_evaluation(baseline=False))
    result = show(project, str(artifact_id), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["type"] == "ModelEvaluation" and record["step"] == "evaluate"


def test_show_a_format_1_evaluation(project: Path) -> None:
    artifact_id = publish_evaluation(project, format_1_evaluation())
    result = show(project, str(artifact_id))
    assert result.exit_code == 0, result.output
    assert "no verdict recorded (format 1; see the Blessing artifact)" in result.output
    assert "island=Biscoe" in result.output and "0.950" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"format_version": 7}), "format_version 7; this lockgate reads 1 and 2"),
    ],
)
def test_show_a_broken_evaluation_says_what_is_wrong(
    project: Path, content: str, message: str
) -> None:
    artifact_id = publish_evaluation(project, content)
    result = show(project, str(artifact_id))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("demo")
    result = lockgate("demo", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir / "lockgate-demo"


def test_show_the_demos_evaluation(demo: Path, tmp_path: Path) -> None:
    store = open_store(load_settings(demo))
    try:
        (evaluation,) = store.artifacts_of_type("ModelEvaluation")
    finally:
        store.close()
    shown = lockgate("show", str(evaluation.id), cwd=demo, env={**os.environ, "COLUMNS": "160"})
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"ModelEvaluation #{evaluation.id} from step 'evaluate' of run 1"
    assert lines[1] == "Model evaluation: BLESSED"  # format 1: from the Blessing beside it
    assert re.search(r"pass +Overall · accuracy", shown.stdout)
    assert re.search(r"island=Biscoe +\d+ +[01]\.\d{3}", shown.stdout)
    assert "sex=null" in shown.stdout
    out = tmp_path / "demo.html"
    shown = lockgate("show", str(evaluation.id), "--html", str(out), cwd=demo)
    assert shown.returncode == 0, shown.stderr
    html = out.read_text()
    assert "BLESSED" in html and "<td>island=Biscoe" in html
    assert "http://" not in html and "https://" not in html
