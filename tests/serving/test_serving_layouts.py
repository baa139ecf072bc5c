"""The input layouts clients send beside one tensor per feature: one V2 ``[n, N]`` tensor
(MLServer's scikit-learn runtime, tritonclient examples) and TF-Serving rows as lists, in
the order the model metadata gives; classes served in their own type; the label route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from sklearn.linear_model import LogisticRegression

from lockgate.serving.app import create_app
from lockgate.serving.canary import CanaryServable
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable
from lockgate.training.model_files import load_model, save_model
from lockgate.training.transform import TransformGraph

WINE = Path(__file__).parents[1] / "testdata" / "data" / "wine.csv"


def _servable(
    table: pa.Table, label: str, name: str, version: str, folder: Path
) -> PipelineServable:
    transform = TransformGraph.fit(table, label=label, task="classification")
    estimator = LogisticRegression(max_iter=2000).fit(
        transform.apply(table), transform.encode_label(table)
    )
    info = save_model(estimator, folder)
    return PipelineServable(name, version, transform, load_model(folder, sha256=info.sha256))


@pytest.fixture(scope="module")
def wine() -> pa.Table:
    return pacsv.read_csv(WINE)


@pytest.fixture(scope="module")
def features(wine: pa.Table) -> list[str]:
    return [name for name in wine.column_names if name != "target"]


@pytest.fixture(scope="module")
def matrix(wine: pa.Table, features: list[str]) -> np.ndarray:
    return np.column_stack([wine[n].to_numpy().astype(np.float64) for n in features])


@pytest.fixture(scope="module")
def wine_servables(
    wine: pa.Table, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PipelineServable, PipelineServable]:
    """Versions 1 and 2 of 'wine' (integer label 0/1/2), as a pipeline trains them."""
    return (
        _servable(wine, "target", "wine", "1", tmp_path_factory.mktemp("wine1")),
        _servable(wine, "target", "wine", "2", tmp_path_factory.mktemp("wine2")),
    )


@pytest.fixture(scope="module")
def flag_servable(tmp_path_factory: pytest.TempPathFactory) -> PipelineServable:
    """A bool label: is x positive."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    table = pa.table({"x": x, "z": rng.normal(size=200), "positive": (x > 0).tolist()})
    return _servable(table, "positive", "flag", "1", tmp_path_factory.mktemp("flag"))


@pytest.fixture
def url(
    serve_app: Callable[[Any], str],
    wine_servables: tuple[PipelineServable, PipelineServable],
    flag_servable: PipelineServable,
    penguin_servable: PipelineServable,
) -> str:
    """wine 1 with 2 as its canary; flag; penguins."""
    return serve_app(create_app(_repository(wine_servables, flag_servable, penguin_servable)))


def _repository(wine: Any, *others: PipelineServable) -> ModelRepository:
    repository = ModelRepository(list(others))
    repository.replace("wine", [CanaryServable(wine[0], wine[1], 0), wine[1]], default="1")
    return repository


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as client:
        yield client


def _per_feature(features: list[str], X: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "datatype": "FP64", "shape": [len(X)], "data": X[:, j].tolist()}
            for j, n in enumerate(features)
        ]
    }


def _predicted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return next(o for o in response.json()["outputs"] if o["name"] == "predicted")


def test_metadata_gives_the_feature_order_and_the_output_types(
    http: httpx.Client, features: list[str]
) -> None:
    wine = http.get("/v2/models/wine").json()
    assert wine["parameters"] == {
        "feature_order": features,
        "matrix_input": {"datatype": "FP64", "shape": [-1, 13]},
    }
    assert [i["name"] for i in wine["inputs"]] == features
    assert {o["name"]: o["datatype"] for o in wine["outputs"]}["predicted"] == "INT64"
    flag = http.get("/v2/models/flag").json()
    assert {o["name"]: o["datatype"] for o in flag["outputs"]}["predicted"] == "BOOL"
    penguins = http.get("/v2/models/penguins").json()  # a text feature: no matrix layout
    assert penguins["parameters"] == {
        "feature_order": ["bill_length_mm", "flipper_length_mm", "island"]
    }
    assert {o["name"]: o["datatype"] for o in penguins["outputs"]}["predicted"] == "BYTES"
    signature = http.get("/v1/models/wine/metadata").json()["metadata"]["signature_def"]
    assert signature["signature_def"]["serving_default"]["outputs"]["predicted"]["dtype"] == (
        "DT_INT64"
    )


@pytest.mark.parametrize(
    ("name", "datatype"), [("input-0", "FP64"), ("input__0", "FP32"), ("x", "INT64")]
)
def test_one_matrix_answers_as_one_tensor_per_feature(
    http: httpx.Client, features: list[str], matrix: np.ndarray, name: str, datatype: str
) -> None:
    X = matrix[::20]
    values = X.astype(np.int64) if datatype == "INT64" else X
    body = {
        "inputs": [
            {"name": name, "datatype": datatype, "shape": list(X.shape), "data": values.tolist()}
        ]
    }
    got = _predicted(http.post("/v2/models/wine/versions/1/infer", json=body))
    columns = values.astype(np.float64).astype(np.float32 if datatype == "FP32" else np.float64)
    want = _predicted(
        http.post("/v2/models/wine/versions/1/infer", json=_per_feature(features, columns))
    )
    assert got == want
    assert got["datatype"] == "INT64" and all(type(v) is int for v in got["data"])


def test_tritonclient_binary_matrix_gets_integers(
    url: str, wine: pa.Table, wine_servables: Any, matrix: np.ndarray
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url.removeprefix("http://"))
    tensor = triton.InferInput("input__0", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix)
    predicted = client.infer("wine", [tensor], model_version="1").as_numpy("predicted")
    oracle = wine_servables[0].model.predict(wine_servables[0].transform.apply(wine))
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, oracle)
    assert np.mean(predicted == wine["target"].to_numpy()) > 0.9


def test_a_wrong_width_or_a_text_feature_is_a_400_that_says_what_to_send(
    http: httpx.Client, features: list[str], matrix: np.ndarray
) -> None:
    narrow = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [2, 12]}]}
    narrow["inputs"][0]["data"] = matrix[:2, :12].tolist()
    response = http.post("/v2/models/wine/infer", json=narrow)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "input 'input-0': shape [2, 12] has 12 values per row; expected 13" in error
    assert str(features) in error
    text = {"inputs": [{"name": "m", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}
    response = http.post("/v2/models/penguins/infer", json=text)
    assert response.status_code == 400
    assert "text features ['island']" in response.json()["error"]
    assert "one tensor per feature" in response.json()["error"]
    words = {"inputs": [{"name": "m", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}]}
    response = http.post("/v2/models/flag/infer", json=words)
    assert response.status_code == 400 and "must hold numbers" in response.json()["error"]


def test_bool_classes_are_served_as_bools(http: httpx.Client) -> None:
    body = {"inputs": [{"name": "m", "datatype": "FP64", "shape": [2, 2], "data": [2, 0, -2, 0]}]}
    predicted = _predicted(http.post("/v2/models/flag/infer", json=body))
    assert predicted == {
        "name": "predicted",
        "datatype": "BOOL",
        "shape": [2],
        "data": [True, False],
    }
    rows = http.post("/v1/models/flag:predict", json={"instances": [[2.0, 0.0], [-2.0, 0.0]]})
    assert [p["predicted"] for p in rows.json()["predictions"]] == [True, False]


def test_tf_serving_rows_as_lists_in_both_forms(
    http: httpx.Client, features: list[str], matrix: np.ndarray
) -> None:
    X = matrix[::30]
    objects = [dict(zip(features, row, strict=True)) for row in X.tolist()]
    want = http.post("/v1/models/wine/versions/1:predict", json={"instances": objects}).json()
    lists = http.post("/v1/models/wine/versions/1:predict", json={"instances": X.tolist()})
    assert lists.status_code == 200, lists.text
    assert lists.json() == want
    assert all(type(p["predicted"]) is int for p in want["predictions"])
    columns = http.post("/v1/models/wine/versions/1:predict", json={"inputs": X.tolist()}).json()
    assert columns["outputs"]["predicted"] == [p["predicted"] for p in want["predictions"]]
    penguin = http.post(
        "/v1/models/penguins:predict", json={"instances": [[38.0, 190.0, "Biscoe"]]}
    ).json()
    assert penguin["predictions"][0]["predicted"] == "Adelie"  # text features ride in lists


def test_tf_serving_rows_of_the_wrong_width_are_a_400(
    http: httpx.Client, features: list[str], matrix: np.ndarray
) -> None:
    rows = [matrix[0].tolist(), matrix[1, :11].tolist()]
    response = http.post("/v1/models/wine:predict", json={"instances": rows})
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"instance 1 has 11 values; expected 13, the features {features} in this order" in error
    mixed = http.post("/v1/models/wine:predict", json={"instances": [matrix[0].tolist(), {}]})
    assert mixed.status_code == 400 and "instance 1 is not a list" in mixed.json()["error"]
    wide = http.post("/v1/models/wine:predict", json={"inputs": [matrix[0].tolist() + [1.0]]})
    assert wide.status_code == 400 and "row 0 has 14 values" in wide.json()["error"]


def test_the_label_route_resolves_aliases(
    serve_app: Callable[[Any], str], wine_servables: Any, matrix: np.ndarray
) -> None:
    aliases = {"wine": {"production": 1, "staging": 2, "canary": 2, "old": 7}}
    app = create_app(_repository(wine_servables), labels=lambda name: aliases.get(name, {}))
    http = httpx.Client(base_url=serve_app(app))
    body = {"instances": matrix[:3].tolist()}
    for label, version in (("production", "1"), ("staging", "2"), ("canary", "2"), ("2", "2")):
        status = http.get(f"/v1/models/wine/labels/{label}")
        assert status.status_code == 200, status.text
        assert status.json()["model_version_status"][0]["version"] == version
        assert http.post(f"/v1/models/wine/labels/{label}:predict", json=body).status_code == 200
        metadata = http.get(f"/v1/models/wine/labels/{label}/metadata").json()
        assert metadata["model_spec"]["version"] == version
    unknown = http.post("/v1/models/wine/labels/stagin:predict", json=body)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == (
        "model 'wine' has no label 'stagin'; its labels are ['canary', 'old', 'production',"
        " 'staging'] and its served versions ['1', '2']; did you mean 'staging'?"
    )
    unserved = http.post("/v1/models/wine/labels/old:predict", json=body)
    assert unserved.status_code == 404
    assert "label 'old' is version 7, which this server does not serve" in unserved.json()["error"]
    assert http.post("/v1/models/nope/labels/production:predict", json=body).status_code == 404
    http.close()


def test_a_canary_without_a_registry_is_labelled_canary(
    serve_app: Callable[[Any], str], wine_servables: Any, matrix: np.ndarray
) -> None:
    with httpx.Client(base_url=serve_app(create_app(_repository(wine_servables)))) as http:
        status = http.get("/v1/models/wine/labels/canary").json()
        assert status["model_version_status"][0]["version"] == "2"
        missing = http.get("/v1/models/wine/labels/production")
        assert missing.status_code == 404 and "its labels are ['canary']" in missing.text
