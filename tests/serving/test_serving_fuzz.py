"""Hostile bodies against a real server: every answer is a 4xx (or 200) in JSON, never a 500,
and the server still answers a good request correctly afterwards.

Model overflow on extreme but valid numbers (1e308) is numpy's RuntimeWarning, not a server
fault; the suite turns warnings into errors (in the server thread too), so it is ignored here.
"""

from __future__ import annotations

import gzip
import json
import os
import string
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockgate.serving import oip_v2

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: Modest by default (~10 s in all); LOCKGATE_FUZZ_EXAMPLES=5000 for a long hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("LOCKGATE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = ["bill_length_mm", "flipper_length_mm", "island", "x", "predicted", "probabilities"]
V2_PATHS = [
    "/v2/models/penguins/infer",
    "/v2/models/penguins/versions/2/infer",
    "/v2/models/double/infer",
]
V1_PATHS = [
    "/v1/models/penguins:predict",
    "/v1/models/penguins/labels/2:predict",
    "/v1/models/double:predict",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["Dream", "Biscoe", "\ud800", ""])
)
values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=5)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=25,
)
names = st.sampled_from(NAMES) | st.text(max_size=6)
tensor = st.fixed_dictionaries(
    {
        "name": names | values,
        "datatype": st.sampled_from(sorted(oip_v2.DTYPES)) | values,
        "shape": st.lists(st.integers(-2, 6) | st.integers(), max_size=3) | values,
    },
    optional={
        "data": st.lists(scalars, max_size=8) | values,
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_size", "binary_data"]) | st.text(max_size=4),
            st.integers(-4, 80) | values,
            max_size=2,
        ),
    },
)
v2_doc = st.fixed_dictionaries(
    {"inputs": st.lists(tensor, max_size=4) | values},
    optional={
        "id": values,
        "parameters": st.dictionaries(st.just("binary_data_output") | names, values, max_size=2),
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": names}, optional={"parameters": st.dictionaries(names, values)}
            ),
            max_size=3,
        )
        | values,
    },
)
row = st.dictionaries(st.sampled_from(NAMES[:4]) | st.text(max_size=4), values, max_size=4)
v1_doc = st.fixed_dictionaries(
    {},
    optional={
        "instances": st.lists(row | scalars, max_size=4) | values,
        "inputs": st.dictionaries(
            st.sampled_from(NAMES[:3]), st.lists(scalars, max_size=4) | values
        )
        | values,
        "signature_name": st.just("serving_default") | values,
        "output_filter": st.lists(names, max_size=2) | values,
    },
)
header_text = st.text(alphabet=string.printable.strip(), max_size=12)

# Near-valid requests: a model's own input names, mostly the right types, so fuzzing reaches
# the model and the encoders, not only the first check of the parser.
MODELS = {
    "penguins": {"bill_length_mm": "FP64", "flipper_length_mm": "FP64", "island": "BYTES"},
    "double": {"x": "FP64"},
}
DATATYPES = sorted(oip_v2.DTYPES)
numbers = st.floats(width=64) | st.integers(-(2**70), 2**70) | st.none()
texts = st.sampled_from(["Dream", "Biscoe", "Torgersen", "", "\ud800"]) | st.text(max_size=6)
cell = numbers | texts | st.booleans()


def _mostly(right: Any, others: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from([right] * (2 * len(others)) + others)


def _features(draw: st.DrawFn, model: str) -> list[str]:
    """The model's own inputs three times in four, else a mix with strangers and repeats."""
    own = list(MODELS[model])
    if draw(st.integers(0, 3)):
        return own
    return draw(st.lists(st.sampled_from(own + ["x", "island", "bill"]), max_size=4))


@st.composite
def near_valid_v2(draw: st.DrawFn) -> tuple[str, bytes, int | None]:
    model = draw(st.sampled_from(sorted(MODELS)))
    n = draw(_mostly(3, [0, 1, 4]))
    tensors = []
    for name in _features(draw, model):
        right = MODELS[model].get(name, "FP64")
        datatype = draw(_mostly(right, DATATYPES))
        if datatype == "BYTES":
            data = draw(st.lists(texts.filter(lambda t: t != "\ud800"), min_size=n, max_size=n))
            array = np.array(data, dtype=object)
        else:
            dtype = oip_v2.DTYPES[datatype]
            raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
            array = np.frombuffer(raw, dtype=dtype)
        shape = draw(_mostly([n], [[n, 1], [1, n], [n, 2]]))
        if np.prod(shape) != n:
            shape = [n]
        tensors.append(oip_v2.Tensor(name, datatype, shape, array.reshape(shape)))
    outputs = draw(
        st.none()
        | st.lists(
            st.builds(
                oip_v2.RequestedOutput,
                st.sampled_from(["predicted", "probabilities", "y", "nope"]),
                st.none() | st.booleans(),
            ),
            max_size=3,
        )
    )
    body, header = oip_v2.encode_request(
        tensors,
        binary=draw(st.booleans()),
        outputs=outputs,
        request_id=draw(st.none() | st.text(max_size=5)),
        parameters=draw(st.none() | st.fixed_dictionaries({"binary_data_output": st.booleans()})),
    )
    if not draw(st.integers(0, 4)):  # a truncated or corrupted body
        body = body[: draw(st.integers(0, len(body)))] + draw(st.binary(max_size=8))
    return f"/v2/models/{model}/infer", body, header


@st.composite
def near_valid_v1(draw: st.DrawFn) -> tuple[str, dict]:
    model = draw(st.sampled_from(sorted(MODELS)))
    features = _features(draw, model)
    value = draw(
        _mostly(None, ["cell", "b64"]).map(
            lambda kind: {
                None: numbers | texts,
                "cell": cell,
                "b64": st.builds(lambda t: {"b64": t}, st.text(max_size=8)),
            }[kind]
        )
    )
    typed = {f: (texts if MODELS[model].get(f) == "BYTES" else numbers) for f in features}
    n = draw(_mostly(2, [0, 1, 4]))
    doc: dict[str, Any]
    if draw(st.booleans()):
        doc = {"instances": [{f: draw(typed[f] | value) for f in features} for _ in range(n)]}
    else:
        doc = {
            "inputs": {
                f: draw(st.lists(typed[f] | value, min_size=n, max_size=n)) for f in features
            }
        }
    if not draw(st.integers(0, 3)):
        doc["output_filter"] = draw(
            st.lists(st.sampled_from(["predicted", "probabilities", "y", "z"]), max_size=2)
        )
    return f"/v1/models/{model}:predict", doc


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # NaN and Infinity as Python writes them, on purpose


@pytest.fixture(scope="module")
def http(fuzz_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server_url, timeout=10) as client:
        yield client


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    kind = response.headers["content-type"]
    if kind == "application/octet-stream":
        assert response.status_code == 200
        length = int(response.headers[oip_v2.HEADER])
        oip_v2.decode_response(response.content, length)
        return
    assert kind == "application/json", kind
    json.loads(response.content, parse_constant=_no_constants)


def _no_constants(name: str) -> None:
    raise AssertionError(f"response JSON has {name}, which strict JSON parsers refuse")


def _still_serving(http: httpx.Client) -> None:
    row = {"bill_length_mm": 48.0, "flipper_length_mm": 214.0, "island": "Torgersen"}
    response = http.post("/v1/models/penguins:predict", json={"instances": [row]})
    assert response.json()["predictions"][0]["predicted"] == "Gentoo"


@FUZZ
@given(path=st.sampled_from(V2_PATHS + V1_PATHS), body=st.binary(max_size=200) | values.map(_dumps))
def test_arbitrary_bodies(http: httpx.Client, path: str, body: bytes) -> None:
    _check(http.post(path, content=body))


@FUZZ
@given(path=st.sampled_from(V2_PATHS), doc=v2_doc)
def test_v2_json(http: httpx.Client, path: str, doc: dict) -> None:
    _check(http.post(path, content=_dumps(doc)))


@FUZZ
@given(request=near_valid_v2())
def test_v2_near_valid(http: httpx.Client, request: tuple[str, bytes, int | None]) -> None:
    path, body, header = request
    headers = {} if header is None else {oip_v2.HEADER: str(header)}
    _check(http.post(path, content=body, headers=headers))


@FUZZ
@given(
    path=st.sampled_from(V2_PATHS),
    doc=v2_doc,
    blob=st.binary(max_size=80),
    header=st.none() | st.integers(-3, 400).map(str) | header_text,
)
def test_v2_binary_header(
    http: httpx.Client, path: str, doc: dict, blob: bytes, header: str | None
) -> None:
    head = _dumps(doc)
    value = str(len(head)) if header is None else header
    _check(http.post(path, content=head + blob, headers={oip_v2.HEADER: value}))


@FUZZ
@given(
    request=st.tuples(st.sampled_from(V1_PATHS), v1_doc) | near_valid_v1(),
    gzipped=st.booleans(),
)
def test_tfserving_v1(http: httpx.Client, request: tuple[str, dict], gzipped: bool) -> None:
    path, doc = request
    body = _dumps(doc)
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    _check(http.post(path, content=gzip.compress(body) if gzipped else body, headers=headers))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"instances": [' + b"9" * 5_000 + b"]}",
        b'{"inputs": {"island": ["\\ud800"], "bill_length_mm": [1], "flipper_length_mm": [1]}}',
    ],
)
def test_known_hostile_bodies(http: httpx.Client, body: bytes) -> None:
    for path in V2_PATHS[:1] + V1_PATHS[:1]:
        response = http.post(path, content=body)
        _check(response)
        assert response.status_code in (400, 413)


def test_server_still_answers_after_fuzzing(http: httpx.Client) -> None:
    _still_serving(http)
