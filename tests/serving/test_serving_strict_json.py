"""NaN and Infinity are not JSON: a body that holds them is a 400 naming the input, as a
strict parser (orjson, JavaScript's JSON.parse, Go's encoding/json) would refuse it, on every
decode path: orjson's, and the json module's that takes bodies orjson cannot (big integers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from lockgate.errors import InferenceRequestError
from lockgate.serving import oip_v2

LITERALS = ["NaN", "Infinity", "-Infinity"]
#: An id past 64 bits sends the body down the json module's path instead of orjson's.
BIG_ID = ', "id": 123456789012345678901234567890'


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url) as client:
        yield client


def _v2_body(literal: str, tail: str = "") -> bytes:
    return (
        '{"inputs": ['
        '{"name": "island", "datatype": "BYTES", "shape": [1], "data": ["Dream"]}, '
        '{"name": "bill_length_mm", "datatype": "FP64", "shape": [2], '
        f'"data": [43.0, {literal}]}}, '
        '{"name": "flipper_length_mm", "datatype": "FP64", "shape": [1], "data": [200.0]}'
        f"]{tail}}}"
    ).encode()


@pytest.mark.parametrize("literal", LITERALS)
@pytest.mark.parametrize("tail", ["", BIG_ID], ids=["orjson", "json"])
def test_v2_infer_refuses_a_non_finite_literal_naming_the_input(
    http: httpx.Client, literal: str, tail: str
) -> None:
    response = http.post("/v2/models/penguins/infer", content=_v2_body(literal, tail))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(f"request body is not valid JSON: {literal} in input 'bill_length_mm'")
    assert "inputs[1].data[1]" in error and "no NaN or Infinity" in error
    assert "null" in response.json()["hint"]


@pytest.mark.parametrize("literal", LITERALS)
@pytest.mark.parametrize("tail", ["", BIG_ID], ids=["orjson", "json"])
def test_tf_serving_predict_refuses_a_non_finite_literal_naming_the_feature(
    http: httpx.Client, literal: str, tail: str
) -> None:
    rows = (
        '{"island": "Dream", "bill_length_mm": 43.0, "flipper_length_mm": 200.0}, '
        f'{{"island": "Dream", "bill_length_mm": 43.0, "flipper_length_mm": {literal}}}'
    )
    row_form = f'{{"instances": [{rows}]{tail}}}'.encode()
    response = http.post("/v1/models/penguins:predict", content=row_form)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(
        f"request body is not valid JSON: {literal} in instance 1, feature 'flipper_length_mm'"
    )
    column_form = (
        '{"inputs": {"island": ["Dream"], "bill_length_mm": [43.0], '
        f'"flipper_length_mm": [{literal}]}}{tail}}}'
    ).encode()
    response = http.post("/v1/models/penguins:predict", content=column_form)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(
        f"request body is not valid JSON: {literal} in feature 'flipper_length_mm'"
    )


def test_a_literal_outside_the_inputs_is_refused_by_its_position(http: httpx.Client) -> None:
    body = _v2_body("43.5", ', "parameters": {"threshold": NaN}')
    response = http.post("/v2/models/penguins/infer", content=body)
    assert response.status_code == 400, response.text
    assert "NaN at parameters.threshold" in response.json()["error"]


def test_the_words_nan_and_infinity_in_strings_are_fine(http: httpx.Client) -> None:
    doc = {
        "id": "NaN Infinity",
        "inputs": [
            {"name": "island", "datatype": "BYTES", "shape": [1], "data": ["NaN"]},
            {"name": "bill_length_mm", "datatype": "FP64", "shape": [1], "data": [None]},
            {"name": "flipper_length_mm", "datatype": "FP64", "shape": [1], "data": [200.0]},
        ],
    }
    response = http.post("/v2/models/penguins/infer", content=json.dumps(doc))
    assert response.status_code == 200, response.text


def test_the_json_module_path_refuses_too_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oip_v2, "orjson", None)
    with pytest.raises(InferenceRequestError, match=r"Infinity in input 'bill_length_mm'"):
        oip_v2.decode_request(_v2_body("Infinity"))


def test_a_body_broken_after_the_literal_is_still_a_400() -> None:
    with pytest.raises(InferenceRequestError, match=r"not valid JSON: NaN; JSON has no NaN"):
        oip_v2.decode_request(b'{"inputs": [NaN, ]}')
