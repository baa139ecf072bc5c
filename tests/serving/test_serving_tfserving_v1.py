"""The TensorFlow-Serving REST API over real HTTP: predict in row and column form, status,
metadata, and a 400 that names the feature for every bad request."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

from lockgate.serving import tfserving_v1
from lockgate.serving.servable import PipelineServable

ROWS: dict[str, list[Any]] = {
    "bill_length_mm": [38.0, 43.0, 48.0, 38.5],
    "flipper_length_mm": [190.0, 202.0, 214.0, 191.0],
    "island": ["Biscoe", "Dream", "Torgersen", "Biscoe"],
}
EXPECTED = ["Adelie", "Chinstrap", "Gentoo", "Adelie"]
INSTANCES = [{name: ROWS[name][i] for name in ROWS} for i in range(4)]


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url) as client:
        yield client


def _oracle_proba(servable: PipelineServable) -> np.ndarray:
    return servable.model.predict_proba(servable.transform.apply(pa.table(ROWS)))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/penguins:predict",
        "/v1/models/penguins/versions/1:predict",
        "/v1/models/penguins/labels/2:predict",
    ],
)
def test_row_form_has_label_and_probabilities(
    http: httpx.Client, penguin_servable: PipelineServable, path: str
) -> None:
    response = http.post(path, json={"signature_name": "serving_default", "instances": INSTANCES})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["predicted"] for p in predictions] == EXPECTED
    np.testing.assert_allclose(
        [p["probabilities"] for p in predictions], _oracle_proba(penguin_servable)
    )


def test_column_form_answers_outputs_by_name(
    http: httpx.Client, penguin_servable: PipelineServable
) -> None:
    response = http.post("/v1/models/penguins:predict", json={"inputs": ROWS})
    outputs = response.json()["outputs"]
    assert outputs["predicted"] == EXPECTED
    np.testing.assert_allclose(outputs["probabilities"], _oracle_proba(penguin_servable))


def test_one_output_is_returned_bare(http: httpx.Client) -> None:
    body = {"instances": INSTANCES, "output_filter": ["predicted"]}
    assert http.post("/v1/models/penguins:predict", json=body).json() == {"predictions": EXPECTED}
    body = {"inputs": ROWS, "output_filter": ["predicted"]}
    assert http.post("/v1/models/penguins:predict", json=body).json() == {"outputs": EXPECTED}


def test_one_input_model_takes_bare_values(http: httpx.Client) -> None:
    rows = http.post("/v1/models/flipper:predict", json={"instances": [38.0, 48.0]}).json()
    columns = http.post("/v1/models/flipper:predict", json={"inputs": [38.0, 48.0]}).json()
    objects = http.post(
        "/v1/models/flipper:predict", json={"instances": [{"bill_length_mm": 38.0}]}
    ).json()
    low, high = rows["predictions"]
    assert 185 < low < 195 < 205 < high
    assert columns["outputs"] == rows["predictions"]
    assert objects["predictions"] == [low]


def test_b64_string_values(http: httpx.Client) -> None:
    island = {"b64": base64.b64encode(b"Biscoe").decode()}
    body = {"instances": [dict(INSTANCES[0], island=island)], "output_filter": ["predicted"]}
    response = http.post("/v1/models/penguins:predict", json=body)
    assert response.json() == {"predictions": ["Adelie"]}


def _without(row: dict, name: str) -> dict:
    return {k: v for k, v in row.items() if k != name}


BAD = [
    (
        {"instances": [INSTANCES[0], _without(INSTANCES[1], "island")]},
        "instance 1 is missing feature 'island'",
    ),
    (
        {"instances": [dict(INSTANCES[0], bill_length_mm="long")]},
        "feature 'bill_length_mm'.*cannot hold 'long'",
    ),
    (
        {"instances": [dict(INSTANCES[0], island=3)]},
        "feature 'island'.*BYTES expects strings, got 3",
    ),
    (
        {"instances": [dict(INSTANCES[0], bill_length_mm=True)]},
        "feature 'bill_length_mm'.*cannot hold True",
    ),
    (
        {"instances": [dict(INSTANCES[0], islnd="Dream")]},
        "unexpected feature 'islnd'.*did you mean 'island'",
    ),
    (
        {"instances": [dict(INSTANCES[0], island=["Dream"])]},
        "feature 'island': expected one value per row",
    ),
    ({"instances": [dict(INSTANCES[0], island={"b64": "***"})]}, "'b64' is not base64"),
    ({"instances": INSTANCES, "inputs": ROWS}, "exactly one of 'instances'"),
    ({"signature_name": "serving_default"}, "exactly one of 'instances'"),
    ({"instances": []}, "non-empty list"),
    ({"instances": [1.0, 2.0]}, "must be an object"),
    ({"inputs": _without(ROWS, "island")}, "missing feature 'island'"),
    ({"inputs": ROWS | {"bill_length_mm": [1.0]}}, "different numbers of rows"),
    ({"inputs": {k: [] for k in ROWS}}, "no rows"),
    ({"inputs": ROWS, "signature_name": "classify"}, "unknown signature_name 'classify'"),
    ({"inputs": ROWS, "output_filter": ["proba"]}, "unknown output 'proba'"),
    ({"inputs": ROWS, "output_filter": "predicted"}, "'output_filter' must be"),
]


@pytest.mark.parametrize(("body", "match"), BAD)
def test_bad_requests_are_400_naming_the_feature(
    http: httpx.Client, body: dict, match: str
) -> None:
    response = http.post("/v1/models/penguins:predict", content=json.dumps(body))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert re.search(match, response.json()["error"]), response.json()


def test_unknown_model_version_and_label_are_404(http: httpx.Client) -> None:
    body = {"instances": INSTANCES}
    assert http.post("/v1/models/pengiuns:predict", json=body).status_code == 404
    assert http.post("/v1/models/penguins/versions/9:predict", json=body).status_code == 404
    missing = http.post("/v1/models/penguins/labels/canary:predict", json=body)
    assert missing.status_code == 404 and "no label 'canary'" in missing.json()["error"]


def test_model_status(http: httpx.Client) -> None:
    available = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert http.get("/v1/models/penguins").json() == {
        "model_version_status": [{"version": "1", **available}, {"version": "2", **available}]
    }
    assert http.get("/v1/models/penguins/versions/1").json() == {
        "model_version_status": [{"version": "1", **available}]
    }
    assert (
        http.get("/v1/models/penguins/labels/2").json()["model_version_status"][0]["version"] == "2"
    )
    assert http.get("/v1/models/nope").status_code == 404
    assert http.get("/v1/models/loading").status_code == 503


def test_model_metadata_is_a_signature_def(http: httpx.Client) -> None:
    doc = http.get("/v1/models/penguins/metadata").json()
    assert doc["model_spec"] == {"name": "penguins", "signature_name": "", "version": "2"}
    signature = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert list(signature["inputs"]) == list(ROWS)
    assert signature["inputs"]["island"] == {
        "dtype": "DT_STRING",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
        "name": "island",
    }
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_DOUBLE"
    assert [d["size"] for d in signature["outputs"]["probabilities"]["tensor_shape"]["dim"]] == [
        "-1",
        "3",
    ]
    pinned = http.get("/v1/models/penguins/versions/1/metadata").json()
    assert pinned["model_spec"]["version"] == "1"


def test_encode_writes_null_for_non_finite_and_str_for_bytes() -> None:
    body = tfserving_v1.encode_predict(
        {
            "y": np.array([1.0, np.nan, np.inf]),
            "label": np.array([b"a", "b", None], dtype=object),
        },
        row_format=True,
    )
    assert json.loads(body) == {
        "predictions": [
            {"y": 1.0, "label": "a"},
            {"y": None, "label": "b"},
            {"y": None, "label": None},
        ]
    }
