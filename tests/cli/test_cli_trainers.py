"""Trainers named on the command line, through the real `lockgate run`: XGBoost, PyTorch and
a scikit-learn estimator by import path are trained, evaluated, pushed and served; a path
outside scikit-learn stops the run with one line."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import version
from pathlib import Path

import httpx
import numpy as np
import pyarrow.csv as pacsv
import pytest
from support import lockgate, served


def run_with(project: Path, trainer: str, params: str) -> subprocess.CompletedProcess[str]:
    return lockgate(
        "run", "--set", f"train.trainer={trainer}", "--set", f"train.params={params}", cwd=project
    )


def served_accuracy(project: Path) -> float:
    """`lockgate serve` started on the project; the V2 answers for 40 known penguins."""
    table = pacsv.read_csv(
        project / "data" / "penguins.csv",
        convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True),
    ).drop_null()
    rows = table.slice(0, 40).to_pydict()
    truth = rows.pop("species")
    inputs = [
        {
            "name": name,
            "shape": [len(truth)],
            "datatype": "BYTES" if isinstance(values[0], str) else "FP64",
            "data": values,
        }
        for name, values in rows.items()
    ]
    with served(project) as url:
        answer = httpx.post(f"{url}/v2/models/penguins/infer", json={"inputs": inputs}, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    probabilities = np.asarray(outputs["probabilities"]["data"]).reshape(len(truth), -1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    predicted = outputs["predicted"]["data"]
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


@pytest.mark.parametrize(
    ("trainer", "params", "framework", "library", "file"),
    [
        ("xgboost", '{"n_estimators": 50, "max_depth": 3}', "xgboost", "xgboost", "model.xgb.json"),
        (  # stops early on the eval split
            "lightgbm",
            '{"n_estimators": 400, "learning_rate": 0.3, "early_stopping_rounds": 5}',
            "lightgbm",
            "lightgbm",
            "model.txt",
        ),
        (  # PyTorch: an MLP saved as safetensors, stopping early on the eval split
            "torch_mlp",
            '{"epochs": 200, "learning_rate": 0.01, "early_stopping_rounds": 10}',
            "pytorch",
            "torch",
            "model.safetensors",
        ),
        (
            "sklearn:sklearn.ensemble.ExtraTreesClassifier",
            '{"n_estimators": 50}',
            "sklearn",
            "scikit-learn",
            "model.skops",
        ),
    ],
)
def test_trainer_is_trained_evaluated_pushed_and_served(
    penguins_project: Path, trainer: str, params: str, framework: str, library: str, file: str
) -> None:
    result = run_with(penguins_project, trainer, params)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Blessed: yes" in result.stdout
    assert "Pushed: yes, model 'penguins' version 1" in result.stdout
    listed = lockgate("models", "list", "penguins", cwd=penguins_project)
    assert listed.returncode == 0, listed.stderr
    from lockgate.training.frameworks import get_framework

    description = get_framework(framework).description
    assert f"{description} ({framework} {version(library)})" in listed.stdout
    [row] = json.loads(
        lockgate("models", "list", "penguins", "--json", cwd=penguins_project).stdout
    )
    assert (row["framework"], row["framework_version"]) == (framework, version(library))
    assert row["framework_description"] == description
    assert list(penguins_project.rglob(file)), f"no {file} written"
    lineage = lockgate("lineage", "penguins", cwd=penguins_project).stdout
    assert ("stopped early at round" in lineage) == ("early_stopping_rounds" in params)
    assert served_accuracy(penguins_project) > 0.9


def test_a_trainer_path_outside_scikit_learn_stops_the_run(penguins_project: Path) -> None:
    result = run_with(penguins_project, "sklearn:os.system", "{}")
    assert result.returncode != 0
    assert "must name a class inside the sklearn package" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_weights_through_the_pipeline(penguins_project: Path) -> None:
    features = '["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "sex"]'
    weighted = ["--set", "train.class_weight=balanced", "--set", "train.sample_weight_column=year"]
    result = lockgate("run", *weighted, cwd=penguins_project)
    assert result.returncode != 0  # year is a feature unless fit_transform leaves it out
    assert "'year' is also a feature of the transform" in result.stdout + result.stderr
    result = lockgate(
        "run", *weighted, "--set", f"fit_transform.features={features}", cwd=penguins_project
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Pushed: yes, model 'penguins' version 1" in result.stdout
