"""Every built-in trainer on every task, end to end: a project made for a data set the
project never saw (scikit-learn's breast cancer, binary; penguins, multiclass; diabetes,
regression), trained, evaluated, pushed, loaded as the server loads the production
version, served by a real uvicorn, and asked over HTTP; the answers are the offline
predictions of the same rows."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
import uvicorn
from support import free_port

from lockgate.cli.project import apply_overrides, load_pipeline
from lockgate.cli.project_from_data import create_project_from_data
from lockgate.core.run import run_pipeline
from lockgate.data.components import read_split
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.app import create_app
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable
from lockgate.training.transform import drop_missing_label

TEMPLATES = Path(__file__).resolve().parents[2] / "lockgate" / "templates"
TRAINERS = {
    "binary": [
        "lightgbm",
        "xgboost",
        "random_forest",
        "gradient_boosting",
        "logistic_regression",
        "sklearn:sklearn.ensemble.ExtraTreesClassifier",
        "torch_mlp",
    ],
    "multiclass": [
        "lightgbm",
        "xgboost",
        "random_forest",
        "gradient_boosting",
        "logistic_regression",
        "sklearn:sklearn.ensemble.ExtraTreesClassifier",
        "torch_mlp",
    ],
    "regression": [
        "lightgbm",
        "xgboost",
        "random_forest",
        "gradient_boosting",
        "linear_regression",
        "sklearn:sklearn.ensemble.ExtraTreesRegressor",
        "torch_mlp",
    ],
}
PARAMS = {
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
    "random_forest": {"n_estimators": 30},
    "gradient_boosting": {"max_iter": 30},
    "logistic_regression": {"max_iter": 2000},
    "torch_mlp": {"epochs": 60},
}
THRESHOLDS = {
    "binary": {"accuracy": {"lower_bound": 0.85}},
    "multiclass": {"accuracy": {"lower_bound": 0.85}},
    "regression": {"r2": {"lower_bound": 0.1}},
}


def data_file(task: str, folder: Path) -> tuple[Path, str]:
    """(CSV, label) of the task's data set."""
    if task == "multiclass":
        return TEMPLATES / "penguins/data/penguins.csv", "species"
    if task == "regression":
        return TEMPLATES / "diabetes/data/diabetes.csv", "progression"
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["diagnosis"] = np.where(frame.pop("target") == 1, "benign", "malignant")
    path = folder / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path, "diagnosis"


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = {}
    for task in TRAINERS:
        folder = tmp_path_factory.mktemp(task)
        data, label = data_file(task, folder)
        create_project_from_data(folder / "project", data, label)
        made[task] = folder / "project"
    return made


def served_answers(servable: PipelineServable, rows: pa.Table, name: str) -> list[Any]:
    """The V1 ``instances`` answer of a real server for ``rows``."""
    repository = ModelRepository([servable])

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(repository), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        instances = rows.to_pylist()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/models/{name}:predict",
            json={"instances": instances},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["predictions"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("task", "trainer"), [(task, trainer) for task, names in TRAINERS.items() for trainer in names]
)
def test_each_trainer_and_task_is_trained_blessed_pushed_served_and_answers(
    task: str, trainer: str, projects: dict[str, Path], tmp_path: Path
) -> None:
    project = projects[task]
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        framework_params = PARAMS.get(trainer, {})
        pipeline = apply_overrides(
            load_pipeline(project / "pipeline.py"),
            [
                f"train.trainer={trainer}",
                f"train.params={json.dumps(framework_params)}",
                f"evaluate.thresholds={json.dumps(THRESHOLDS[task])}",
            ],
        )
        result = run_pipeline(
            pipeline, store=store, artifact_root=tmp_path / "artifacts", project_dir=project
        )
        assert result.ok, result.error
        transform = result.steps["fit_transform"].outputs["transform"]
        expected_task = "regression" if task == "regression" else "classification"
        assert transform.properties["task"] == expected_task
        model = result.steps["train"].outputs["model"]
        assert model.properties["framework_description"]
        name = pipeline.name
        version = Registry(store).get(name)
        pushed = version.artifact
        servable = PipelineServable.load(
            name,
            str(version.version),
            pushed.uri,
            model_sha256=pushed.properties["model_sha256"],
            fingerprint=pushed.fingerprint,
            trusted_types=pushed.properties.get("trusted_types"),
        )
        examples = result.steps["ingest"].outputs["examples"]
        label = servable.transform.label
        rows = drop_missing_label(read_split(examples, "eval"), label).slice(0, 7)
        offline = servable.model.predict(servable.transform.apply(rows))
        features = rows.drop_columns([label])
        answers = served_answers(servable, features, name)
        assert len(answers) == rows.num_rows
        if expected_task == "regression":
            got = [a if not isinstance(a, dict) else next(iter(a.values())) for a in answers]
            np.testing.assert_allclose(np.asarray(got, dtype=float), offline, rtol=1e-6)
        else:
            predicted = [a["predicted"] if isinstance(a, dict) else a for a in answers]
            assert predicted == servable.transform.decode_label(offline)
            proba = [a["probabilities"] for a in answers]
            classes = len(servable.transform.label_classes)
            assert np.asarray(proba).shape == (rows.num_rows, classes)
            np.testing.assert_allclose(np.asarray(proba).sum(axis=1), 1.0, atol=1e-6)
    finally:
        store.close()
