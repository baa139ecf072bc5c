"""Bad input to the training pipeline: each case stops the run at the step that meets it,
with an error naming what and where, and registers no transform or model from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv
import pytest
from support import lockgate

from lockgate.cli.project import apply_overrides, load_pipeline
from lockgate.core.run import run_pipeline
from lockgate.errors import ColumnNotFoundError, ConfigError, DataError
from lockgate.metadata.store import SqlMetadataStore


def run(project: Path, store: SqlMetadataStore, *overrides: str) -> Any:
    pipeline = apply_overrides(load_pipeline(project / "pipeline.py"), list(overrides))
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


def rewrite_data(project: Path, column: str, value: Any) -> None:
    """Set every value of ``column`` in the project's CSV to ``value`` (None: missing)."""
    path = project / "data" / "penguins.csv"
    options = pyarrow.csv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    table = pyarrow.csv.read_csv(path, convert_options=options)
    index = table.column_names.index(column)
    kind = table.schema.field(column).type
    filled = pa.nulls(table.num_rows, kind) if value is None else pa.array([value] * table.num_rows)
    pyarrow.csv.write_csv(table.set_column(index, column, filled), path)


def assert_stopped_at(result: Any, step: str, error: type, store: SqlMetadataStore) -> str:
    assert result.failed_step == step, (result.status, result.error)
    assert isinstance(result.error, error), repr(result.error)
    assert store.artifacts_of_type("Model") == []
    assert store.artifacts_of_type("PushedModel") == []
    return str(result.error)


def test_a_missing_label_column_is_named_with_a_suggestion(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    result = run(penguins_project, store, "fit_transform.label=specis")
    message = assert_stopped_at(result, "fit_transform", ColumnNotFoundError, store)
    assert "specis" in message and "species" in message
    assert store.artifacts_of_type("TransformGraph") == []


def test_a_label_missing_in_every_row_is_named(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    rewrite_data(penguins_project, "species", None)
    result = run(penguins_project, store)
    message = assert_stopped_at(result, "fit_transform", DataError, store)
    assert "label 'species' is missing in all" in message and "train split" in message


def test_a_constant_regression_label_is_named(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    rewrite_data(penguins_project, "body_mass_g", 4000.0)
    result = run(
        penguins_project,
        store,
        "fit_transform.label=body_mass_g",
        "fit_transform.task=regression",
        'evaluate.thresholds={"rmse": {"upper_bound": 1000}}',
    )
    message = assert_stopped_at(result, "fit_transform", DataError, store)
    assert "single value 4000" in message and "body_mass_g" in message


def test_a_single_class_label_is_named(penguins_project: Path, store: SqlMetadataStore) -> None:
    rewrite_data(penguins_project, "species", "Adelie")
    result = run(penguins_project, store)
    message = assert_stopped_at(result, "fit_transform", DataError, store)
    assert "1 distinct value(s) ['Adelie']" in message


def test_a_string_label_for_regression_is_refused(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    result = run(penguins_project, store, "fit_transform.task=regression")
    message = assert_stopped_at(result, "fit_transform", ConfigError, store)
    assert "regression needs a numeric label; 'species'" in message


def test_an_unknown_trainer_parameter_is_named_with_a_suggestion(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    result = run(
        penguins_project, store, "train.trainer=random_forest", 'train.params={"n_estimator": 5}'
    )
    message = assert_stopped_at(result, "train", ConfigError, store)
    assert "unknown parameter 'n_estimator'" in message and "n_estimators" in message


def test_bad_training_input_on_the_command_line_is_one_clear_message(
    penguins_project: Path,
) -> None:
    done = lockgate("run", "--set", "fit_transform.label=specis", cwd=penguins_project)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "specis" in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("module", "trainer", "extra"),
    [("xgboost", "xgboost", "lockgate[xgboost]")],
)
def test_a_framework_that_is_not_installed_names_the_extra(
    module: str, trainer: str, extra: str
) -> None:
    """The library is hidden from a fresh interpreter (as if not installed)."""
    code = f"""
import sys
sys.modules[{module!r}] = None  # import {module} now raises ImportError
import numpy as np
from lockgate.errors import LockgateError
from lockgate.training.trainers import train_model
try:
    train_model(np.zeros((4, 2)), np.array([0, 1, 0, 1]), spec={trainer!r}, task="classification")
except LockgateError as exc:
    print(type(exc).__name__, exc.message, "|", exc.hint)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f'pip install "{extra}"' in done.stdout, done.stdout


def test_a_label_missing_in_every_row_is_named_with_library_transforms_too(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    rewrite_data(penguins_project, "species", None)
    pipeline_file = penguins_project / "pipeline.py"
    source = pipeline_file.read_text()
    source = source.replace(
        'schema=schema.outputs.schema, label="species"',
        'schema=schema.outputs.schema, label="species", transforms=[zscore("bill_length_mm")]',
    )
    assert "transforms=[zscore" in source
    pipeline_file.write_text("from lockgate.transforms import zscore\n" + source)
    result = run(penguins_project, store)
    message = assert_stopped_at(result, "fit_transform", DataError, store)
    assert "label 'species' is missing in all" in message
