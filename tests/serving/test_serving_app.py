"""The V2 server over real HTTP: httpx for the JSON API, tritonclient as the protocol oracle."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator

import httpx
import numpy as np
import pyarrow as pa
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

import lockgate
from lockgate.serving import oip_v2
from lockgate.serving.servable import PipelineServable

ROWS = {
    "bill_length_mm": [38.0, 43.0, 48.0, 38.5],
    "flipper_length_mm": [190.0, 202.0, 214.0, 191.0],
    "island": ["Biscoe", "Dream", "Torgersen", "Biscoe"],
}
EXPECTED = ["Adelie", "Chinstrap", "Gentoo", "Adelie"]


def _json_body(rows: dict = ROWS, **extra: object) -> dict:
    n = len(rows["island"])
    inputs = [
        {
            "name": "bill_length_mm",
            "datatype": "FP64",
            "shape": [n],
            "data": rows["bill_length_mm"],
        },
        {
            "name": "flipper_length_mm",
            "datatype": "FP64",
            "shape": [n, 1],
            "data": [[v] for v in rows["flipper_length_mm"]],
        },
        {"name": "island", "datatype": "BYTES", "shape": [n], "data": rows["island"]},
    ]
    return {"inputs": inputs, **extra}


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url) as client:
        yield client


@pytest.fixture
def client(server_url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server_url.removeprefix("http://"))


def _oracle_proba(servable: PipelineServable) -> np.ndarray:
    features = servable.transform.apply(pa.table(ROWS))
    return servable.model.predict_proba(features)


def test_health_and_server_metadata(http: httpx.Client) -> None:
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.get("/v2").json() == {
        "name": "lockgate",
        "version": lockgate.__version__,
        "extensions": ["binary_tensor_data"],
    }


def test_model_metadata_and_ready(http: httpx.Client) -> None:
    meta = http.get("/v2/models/penguins").json()
    assert meta["name"] == "penguins" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "lockgate_pipeline"
    assert meta["inputs"][2] == {"name": "island", "datatype": "BYTES", "shape": [-1]}
    assert meta["outputs"][1] == {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]}
    assert http.get("/v2/models/penguins/versions/1").json()["versions"] == ["1"]
    assert http.get("/v2/models/penguins/ready").status_code == 200
    assert http.get("/v2/models/penguins/versions/7/ready").status_code == 404
    loading = http.get("/v2/models/loading/ready")
    assert loading.status_code == 503 and "not loaded yet" in loading.json()["error"]


@pytest.mark.parametrize(
    "path", ["/v2/models/penguins/infer", "/v2/models/penguins/versions/1/infer"]
)
def test_json_infer(http: httpx.Client, penguin_servable: PipelineServable, path: str) -> None:
    response = http.post(path, json=_json_body(id="req-1"))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["model_name"] == "penguins" and doc["id"] == "req-1"
    assert doc["model_version"] == ("1" if "versions" in path else "2")
    out = {o["name"]: o for o in doc["outputs"]}
    assert out["predicted"] == {
        "name": "predicted",
        "datatype": "BYTES",
        "shape": [4],
        "data": EXPECTED,
    }
    assert out["probabilities"]["shape"] == [4, 3]
    proba = np.array(out["probabilities"]["data"]).reshape(4, 3)
    np.testing.assert_allclose(proba, _oracle_proba(penguin_servable))


def test_json_infer_selected_output_and_gzip(http: httpx.Client) -> None:
    body = json.dumps(_json_body(outputs=[{"name": "predicted"}])).encode()
    response = http.post(
        "/v2/models/penguins/infer",
        content=gzip.compress(body),
        headers={"Content-Encoding": "gzip"},
    )
    assert [o["name"] for o in response.json()["outputs"]] == ["predicted"]


def test_protocol_servable_regression(http: httpx.Client) -> None:
    body = {
        "inputs": [
            {"name": "bill_length_mm", "datatype": "FP32", "shape": [2], "data": [38.0, 48.0]}
        ]
    }
    [out] = http.post("/v2/models/flipper/infer", json=body).json()["outputs"]
    assert out["datatype"] == "FP64" and 185 < out["data"][0] < 195 < 205 < out["data"][1]


def _triton_inputs(binary: bool) -> list[triton.InferInput]:
    inputs = []
    for name, dtype in [
        ("bill_length_mm", "FP64"),
        ("flipper_length_mm", "FP64"),
        ("island", "BYTES"),
    ]:
        array = np.array(ROWS[name], dtype=np.float64 if dtype == "FP64" else object)
        tensor = triton.InferInput(name, [len(array), 1], dtype)
        tensor.set_data_from_numpy(array.reshape(-1, 1), binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_tritonclient_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("penguins") and not client.is_model_ready("nope")
    assert client.get_server_metadata()["name"] == "lockgate"
    meta = client.get_model_metadata("penguins", "1")
    assert [i["name"] for i in meta["inputs"]] == list(ROWS)


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False, None])
def test_tritonclient_infer(
    client: triton.InferenceServerClient,
    penguin_servable: PipelineServable,
    binary_in: bool,
    binary_out: bool | None,
) -> None:
    outputs = (
        None
        if binary_out is None
        else [
            triton.InferRequestedOutput("predicted", binary_data=binary_out),
            triton.InferRequestedOutput("probabilities", binary_data=not binary_out),
        ]
    )
    result = client.infer("penguins", _triton_inputs(binary_in), outputs=outputs, request_id="t1")
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predicted")]
    assert labels == EXPECTED
    np.testing.assert_allclose(result.as_numpy("probabilities"), _oracle_proba(penguin_servable))
    assert result.get_response()["id"] == "t1"


BAD = [
    (b'{"inputs": [', "not valid JSON"),
    (
        json.dumps({"inputs": _json_body()["inputs"][:2]}).encode(),
        r"missing input 'island'; the model's inputs are",
    ),
    (
        json.dumps(_json_body(rows=ROWS | {"bill_length_mm": ["a", 1, 2, 3]})).encode(),
        "input 'bill_length_mm': datatype FP64 cannot hold 'a'",
    ),
    (
        json.dumps(
            {
                "inputs": [
                    dict(i, datatype="BYTES") if i["name"] == "bill_length_mm" else i
                    for i in _json_body()["inputs"]
                ]
            }
        ).encode(),
        "BYTES expects strings",
    ),
    (
        json.dumps(
            {
                "inputs": [
                    dict(i, datatype="FP64", data=[1, 2, 3, 4]) if i["name"] == "island" else i
                    for i in _json_body()["inputs"]
                ]
            }
        ).encode(),
        "input 'island': expected datatype BYTES, got FP64",
    ),
    (
        json.dumps(
            {
                "inputs": [
                    dict(i, shape=[3]) if i["name"] == "island" else i
                    for i in _json_body()["inputs"]
                ]
            }
        ).encode(),
        r"input 'island': shape \[3\] holds 3 elements but data has 4",
    ),
    (json.dumps(_json_body(outputs=[{"name": "proba"}])).encode(), "unknown output 'proba'"),
]


@pytest.mark.parametrize(("body", "match"), BAD)
def test_bad_requests_are_400_json(http: httpx.Client, body: bytes, match: str) -> None:
    response = http.post("/v2/models/penguins/infer", content=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert re.search(match, response.json()["error"])


def test_header_longer_than_body_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/v2/models/penguins/infer",
        content=b"{}",
        headers={"Inference-Header-Content-Length": "50"},
    )
    assert response.status_code == 400
    assert "is 50 but the body has only 2 bytes" in response.json()["error"]


def test_unknown_model_and_route_are_404_json(http: httpx.Client) -> None:
    response = http.post("/v2/models/pengiuns/infer", json=_json_body())
    assert response.status_code == 404
    assert "did you mean 'penguins'" in response.json()["error"]
    assert http.get("/v2/nothing/here").json() == {"error": "Not Found"}


def test_tritonclient_sees_errors(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="missing input 'island'"):
        client.infer("penguins", _triton_inputs(True)[:2])
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("nope")


def test_model_crash_is_500_logged_and_server_keeps_serving(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
    with caplog.at_level(logging.ERROR, logger="lockgate.serving"):
        response = http.post("/v2/models/broken/infer", json=body)
    assert response.status_code == 500
    assert "RuntimeError: the model fell over" in response.json()["error"]
    assert any(r.exc_info and "fell over" in r.getMessage() for r in caplog.records)
    for bad, _ in BAD:
        assert http.post("/v2/models/penguins/infer", content=bad).status_code == 400
    good = http.post("/v2/models/penguins/infer", json=_json_body())
    assert good.status_code == 200 and good.json()["outputs"][0]["data"] == EXPECTED


def test_json_request_may_ask_for_binary_outputs(http: httpx.Client) -> None:
    body = _json_body(id="b1", parameters={"binary_data_output": True})
    response = http.post("/v2/models/penguins/infer", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    assert json.loads(response.content[:length])["id"] == "b1"
    outputs = oip_v2.decode_response(response.content, length)
    assert outputs["predicted"].data.tolist() == EXPECTED
    assert outputs["probabilities"].data.shape == (4, 3)


def test_request_parameters_are_checked_and_unknown_ones_ignored(http: httpx.Client) -> None:
    bad = http.post(
        "/v2/models/penguins/infer", json=_json_body(parameters={"binary_data_output": "yes"})
    )
    assert bad.status_code == 400 and "must be true or false" in bad.json()["error"]
    ok = http.post("/v2/models/penguins/infer", json=_json_body(parameters={"priority": 2}))
    assert ok.status_code == 200


def test_model_ready_per_version(http: httpx.Client, client: triton.InferenceServerClient) -> None:
    assert http.get("/v2/models/penguins/versions/1/ready").json() == {
        "name": "penguins",
        "ready": True,
    }
    assert client.is_model_ready("penguins", "1") and client.is_model_ready("penguins", "2")
    assert not client.is_model_ready("penguins", "9")
    assert client.get_model_metadata("penguins", "2")["versions"] == ["2"]


def test_error_messages_echoing_a_lone_surrogate_are_still_json(http: httpx.Client) -> None:
    """Starlette's JSONResponse writes UTF-8 and cannot encode a lone surrogate echoed from
    the request: the error answer itself used to fail with a 500."""
    body = b'{"inputs": [{"name": "\\ud800", "datatype": "FP64", "shape": [1], "data": [1]}]}'
    response = http.post("/v2/models/penguins/infer", content=body)
    assert response.status_code == 400 and "unexpected input" in response.json()["error"]
