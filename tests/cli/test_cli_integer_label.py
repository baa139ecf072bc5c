"""A data set lockgate has never seen, as a new user brings it: scikit-learn's wine CSV
(13 numeric features, an integer ``target`` 0/1/2). ``lockgate run`` trains it as
classification and says why; ``lockgate serve`` answers integers to tritonclient's one
``[n, 13]`` tensor and to TF-Serving rows given as lists."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.csv as pacsv
import pytest
from support import LOCKGATE, free_port, lockgate, wait_until_ready

WINE = Path(__file__).parents[1] / "testdata" / "data" / "wine.csv"

PIPELINE = """
from lockgate import Pipeline
from lockgate.components import (
    compute_statistics, evaluate, fit_transform, infer_schema, ingest, production_baseline,
    push, train, validate_examples,
)


def pipeline() -> Pipeline:
    examples = ingest(path="data/wine.csv", eval_fraction=0.25)
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics)
    validation = validate_examples(
        statistics=statistics.outputs.statistics, schema=schema.outputs.schema
    )
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label="target"
    ).after(validation)
    model = train(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        trainer="lightgbm",
        params={"n_estimators": 50},
    )
    evaluation = evaluate(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        model=model.outputs.model,
        baseline=production_baseline("wine"),
        thresholds={"accuracy": {"lower_bound": 0.8}},
    )
    pushed = push(
        model=model.outputs.model,
        transform=transform.outputs.transform,
        blessing=evaluation.outputs.blessing,
        model_name="wine",
    )
    return Pipeline(
        "wine", [examples, statistics, schema, validation, transform, model, evaluation, pushed]
    )
"""


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project from `lockgate init`, pointed at the wine CSV, run once: (folder, output)."""
    parent = tmp_path_factory.mktemp("wine")
    created = lockgate("init", "wine", cwd=parent)
    assert created.returncode == 0, created.stdout + created.stderr
    folder = parent / "wine"
    shutil.copy(WINE, folder / "data" / "wine.csv")
    (folder / "pipeline.py").write_text(PIPELINE)
    result = lockgate("run", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, result.stdout


@pytest.fixture(scope="module")
def server(wine: tuple[Path, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [*LOCKGATE, "serve", "--port", str(port), "--model", "wine"],
        cwd=wine[0],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"127.0.0.1:{port}"
    wait_until_ready(process, f"http://{url}")
    yield url
    process.terminate()
    process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


def _rows() -> tuple[list[str], np.ndarray, np.ndarray]:
    """(feature names, X as float64 [n, 13], integer targets)."""
    table = pacsv.read_csv(WINE)
    names = [n for n in table.column_names if n != "target"]
    X = np.column_stack([table[n].to_numpy().astype(np.float64) for n in names])
    return names, X, table["target"].to_numpy()


def test_an_integer_label_is_classification_and_the_summary_says_why(
    wine: tuple[Path, str],
) -> None:
    _, output = wine
    assert (
        "Task: classification (multiclass, 3 classes) — label 'target' is integer with 3"
        " distinct values, at most 50;"
        " task= overrides"
    ) in output
    metrics = next(line for line in output.splitlines() if line.startswith("Model metrics"))
    assert "accuracy" in metrics and "rmse" not in metrics
    assert "Blessed: yes" in output
    transform = next((wine[0] / ".lockgate").rglob("transform.json"))
    assert json.loads(transform.read_text())["label_classes"] == [0, 1, 2]  # ints, not "0"


def test_tritonclient_sends_one_matrix_and_gets_integers(server: str) -> None:
    import tritonclient.http as triton

    names, X, y = _rows()
    client = triton.InferenceServerClient(server)
    metadata = client.get_model_metadata("wine")
    assert metadata["parameters"]["feature_order"] == names
    assert metadata["parameters"]["matrix_input"] == {"datatype": "FP64", "shape": [-1, 13]}
    outputs = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert outputs["predicted"] == "INT64"
    tensor = triton.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X)  # binary tensor data, tritonclient's default
    result = client.infer("wine", [tensor])
    predicted = result.as_numpy("predicted")
    assert predicted.dtype == np.int64 and set(predicted.tolist()) <= {0, 1, 2}
    assert np.mean(predicted == y) > 0.9
    assert result.as_numpy("probabilities").shape == (len(y), 3)


def test_tf_serving_rows_as_lists_and_the_label_route(server: str) -> None:
    names, X, y = _rows()
    base = f"http://{server}/v1/models/wine"
    with httpx.Client() as http:
        answer = http.post(f"{base}:predict", json={"instances": X[:20].tolist()})
        assert answer.status_code == 200, answer.text
        predicted = [p["predicted"] for p in answer.json()["predictions"]]
        assert all(type(p) is int for p in predicted)  # JSON numbers, not "0"
        assert np.mean(np.array(predicted) == y[:20]) > 0.9
        labelled = http.post(f"{base}/labels/production:predict", json={"inputs": X[:20].tolist()})
        assert labelled.status_code == 200, labelled.text
        assert labelled.json()["outputs"]["predicted"] == predicted
        assert (
            http.get(f"{base}/labels/production").json()["model_version_status"][0]["version"]
            == "1"
        )
        unknown = http.post(f"{base}/labels/staging:predict", json={"instances": X[:1].tolist()})
        assert unknown.status_code == 404
        assert "no label 'staging'" in unknown.json()["error"]
        assert "['production']" in unknown.json()["error"]
        narrow = http.post(f"{base}:predict", json={"instances": [X[0, :12].tolist()]})
        assert narrow.status_code == 400
        error = narrow.json()["error"]
        assert "has 12 values; expected 13" in error and str(names) in error
