"""The V2 codec: round trips through JSON and binary tensor data, and every malformed body."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from tritonclient.http import InferInput, InferRequestedOutput, InferResult
from tritonclient.http._utils import _get_inference_request

from lockgate.errors import InferenceRequestError
from lockgate.serving import oip_v2
from lockgate.serving.oip_v2 import RequestedOutput, Tensor

NUMERIC = [
    "BOOL",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "FP16",
    "FP32",
    "FP64",
]


def _tensor(datatype: str) -> Tensor:
    dtype = oip_v2.DTYPES[datatype]
    if datatype == "BOOL":
        data = np.array([[True, False], [False, True], [True, True]])
    elif datatype == "BYTES":
        data = np.array([["a", "ü"], ["", "long text"], ["x", "y"]], dtype=object)
    else:
        data = np.arange(6, dtype=dtype).reshape(3, 2)
    return Tensor(f"t_{datatype.lower()}", datatype, [3, 2], data)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("datatype", [*NUMERIC, "BYTES"])
def test_request_round_trip(datatype: str, binary: bool) -> None:
    tensor = _tensor(datatype)
    body, header = oip_v2.encode_request([tensor], binary=binary, request_id="r1")
    assert (header is not None) == binary
    request = oip_v2.decode_request(body, header)
    [got] = request.inputs
    assert request.id == "r1"
    assert (got.name, got.datatype, got.shape) == (tensor.name, datatype, [3, 2])
    np.testing.assert_array_equal(got.data, tensor.data)
    if datatype != "BYTES":
        assert got.data.dtype == oip_v2.DTYPES[datatype]


@pytest.mark.parametrize("binary", [False, True])
def test_response_round_trip(binary: bool) -> None:
    request = oip_v2.InferRequest(inputs=[], id="7", parameters={"binary_data_output": binary})
    outputs = [_tensor("BYTES"), _tensor("FP64")]
    body, header = oip_v2.encode_response("m", "3", outputs, request)
    assert (header is not None) == binary
    assert json.loads(body[:header])["id"] == "7"
    got = oip_v2.decode_response(body, header)
    for tensor in outputs:
        np.testing.assert_array_equal(got[tensor.name].data, tensor.data)


def test_a_lone_surrogate_in_a_binary_bytes_output_is_encoded_not_a_crash() -> None:
    request = oip_v2.InferRequest(inputs=[], parameters={"binary_data_output": True})
    label = oip_v2.Tensor("label", "BYTES", [2], np.array(["ok", "bad\udc80"], dtype=object))
    body, header = oip_v2.encode_response("m", "1", [label], request)
    assert header is not None
    assert body.endswith(b"bad\xed\xb2\x80")  # the surrogate's code point, as bytes


def test_reads_what_tritonclient_writes() -> None:
    """The oracle for the binary layout is the real client's serializer."""
    names = InferInput("island", [2, 1], "BYTES")
    names.set_data_from_numpy(np.array([["Dream"], ["Biscoe"]], dtype=object))
    bills = InferInput("bill", [2], "FP64")
    bills.set_data_from_numpy(np.array([39.5, 47.25]), binary_data=False)
    counts = InferInput("n", [2], "INT32")
    counts.set_data_from_numpy(np.array([1, -2], dtype=np.int32))
    outputs = [InferRequestedOutput("y", binary_data=True)]
    body, header = _get_inference_request(
        [names, bills, counts], "id9", outputs, 0, False, False, 0, None, None
    )
    request = oip_v2.decode_request(body, header)
    assert request.id == "id9" and request.wants_binary("y")
    assert request.inputs[0].data.tolist() == [["Dream"], ["Biscoe"]]
    assert request.inputs[1].data.tolist() == [39.5, 47.25]
    assert request.inputs[2].data.tolist() == [1, -2]


def test_tritonclient_reads_what_we_write() -> None:
    request = oip_v2.InferRequest(
        inputs=[], outputs=[RequestedOutput("label", True), RequestedOutput("p", False)]
    )
    outputs = [
        Tensor("label", "BYTES", [2], np.array(["Adelie", "Gentoo"], dtype=object)),
        Tensor("p", "FP64", [2, 2], np.array([[0.25, 0.75], [1.0, 0.0]])),
    ]
    body, header = oip_v2.encode_response("m", "1", outputs, request)
    result = InferResult.from_response_body(body, header_length=header)
    assert result.as_numpy("label").tolist() == [b"Adelie", b"Gentoo"]
    assert result.as_numpy("p").tolist() == [[0.25, 0.75], [1.0, 0.0]]


def test_nested_data_null_and_column_shapes() -> None:
    body = json.dumps(
        {
            "inputs": [
                {"name": "a", "datatype": "FP64", "shape": [3, 1], "data": [[1], [None], [2.5]]},
                {"name": "b", "datatype": "BYTES", "shape": [3], "data": ["x", None, "z"]},
            ]
        }
    ).encode()
    a, b = oip_v2.decode_request(body).inputs
    assert a.data.shape == (3, 1) and np.isnan(a.data[1, 0])
    assert b.data.tolist() == ["x", None, "z"]


def test_output_binary_flag_overrides_request_default() -> None:
    request = oip_v2.InferRequest(
        inputs=[],
        parameters={"binary_data_output": True},
        outputs=[RequestedOutput("a", False), RequestedOutput("b")],
    )
    assert not request.wants_binary("a") and request.wants_binary("b")


def _json_input(**item: object) -> bytes:
    base = {"name": "bill_length_mm", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]}
    return json.dumps({"inputs": [base | item]}).encode()


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b'{"id": "1"}', None, "no 'inputs' list"),
        (_json_input(datatype="FLOAT"), None, "unknown datatype 'FLOAT'"),
        (
            _json_input(shape=[2], data=[1, 2, 3]),
            None,
            r"input 'bill_length_mm': shape \[2\] holds 2 elements but data has 3",
        ),
        (_json_input(shape="2"), None, "'shape' must be a list"),
        (_json_input(data=["a", "b"]), None, "FP64 cannot hold 'a'"),
        (_json_input(datatype="INT64", data=[1.5, 2]), None, "INT64 cannot hold 1.5"),
        (_json_input(datatype="INT8", data=[1, 300]), None, "out of range for INT8"),
        (_json_input(datatype="BOOL", data=[1, 0]), None, "BOOL cannot hold 1"),
        (_json_input(datatype="BYTES", data=[1, 2]), None, "BYTES expects strings, got 1"),
        (_json_input(data=None).replace(b'"data": null', b'"x": 1'), None, "neither 'data'"),
    ],
)
def test_malformed_json_requests(body: bytes, header: int | None, match: str) -> None:
    with pytest.raises(InferenceRequestError, match=match):
        oip_v2.decode_request(body, header)


def _binary(size: int, blob: bytes, datatype: str = "FP64", shape: list[int] | None = None):
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": shape or [2],
                    "parameters": {"binary_data_size": size},
                }
            ]
        }
    ).encode()
    return head + blob, len(head)


@pytest.mark.parametrize(
    ("body_header", "match"),
    [
        (_binary(16, b"\0" * 8), "binary_data_size 16 but only 8 bytes"),
        (_binary(8, b"\0" * 8), "does not match 2 FP64 elements of 8 bytes"),
        (_binary(16, b"\0" * 24), "8 bytes of binary data after the inputs"),
        (_binary(6, struct.pack("<I", 9) + b"ab", "BYTES"), "claims 9 bytes but only 2"),
        (_binary(7, struct.pack("<I", 1) + b"a" + b"\0\0", "BYTES"), "inside a length prefix"),
        (_binary(5, struct.pack("<I", 1) + b"\xff", "BYTES", [1]), "not valid UTF-8"),
        (_binary(5, struct.pack("<I", 1) + b"a", "BYTES"), "holds 2 elements but data has 1"),
    ],
)
def test_malformed_binary_requests(body_header: tuple[bytes, int], match: str) -> None:
    with pytest.raises(InferenceRequestError, match=match):
        oip_v2.decode_request(*body_header)


def test_header_length_checks() -> None:
    with pytest.raises(InferenceRequestError, match="is 99 but the body has only 2 bytes"):
        oip_v2.parse_header_length("99", 2)
    with pytest.raises(InferenceRequestError, match="must be an integer"):
        oip_v2.parse_header_length("ten", 2)
    with pytest.raises(InferenceRequestError, match="is 99 but the body has only 2 bytes"):
        oip_v2.decode_request(b"{}", 99)
    assert oip_v2.parse_header_length(None, 2) is None


def test_json_values_have_no_nan() -> None:
    assert oip_v2.to_json_values(np.array([1.0, np.nan])) == [1.0, None]
    assert oip_v2.to_json_values(np.array([b"a", "b"], dtype=object)) == ["a", "b"]


def test_hostile_json_is_a_400() -> None:
    """Each of these used to be a 500 (RecursionError, ValueError, TypeError)."""
    with pytest.raises(InferenceRequestError, match="nested too deeply"):
        oip_v2.decode_request(b"[" * 100_000)
    with pytest.raises(InferenceRequestError, match="not valid JSON.*digits"):
        oip_v2.decode_request(b'{"inputs": [' + b"9" * 5_000 + b"]}")
    with pytest.raises(InferenceRequestError, match=r"unknown datatype \['FP64'\]"):
        oip_v2.decode_request(_json_input(datatype=["FP64"]))


def test_deeply_nested_data_is_flattened_without_recursion() -> None:
    data: object = [1.5]
    for _ in range(400):
        data = [data]
    [tensor] = oip_v2.decode_request(_json_input(shape=[1], data=data)).inputs
    assert tensor.data.tolist() == [1.5]


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ({"datatype": "BYTES", "data": ["ok", "\ud800"]}, "string 1 is not valid Unicode"),
        ({"datatype": "FP32", "data": [1.0, 1e300]}, "out of range for FP32"),
        ({"datatype": "FP16", "data": [1.0, 1e10]}, "out of range for FP16"),
        ({"parameters": {"binary_data_size": True}, "data": None}, "binary_data_size True"),
    ],
)
def test_values_no_consumer_could_take_are_400(item: dict, match: str) -> None:
    body = _json_input(**item)
    if item.get("data", 0) is None:
        body = body.replace(b', "data": null', b"")
    with pytest.raises(InferenceRequestError, match=match):
        oip_v2.decode_request(body)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"parameters": {"binary_data_output": "yes"}}, "'binary_data_output' must be true or"),
        ({"outputs": [{"name": "y", "parameters": {"binary_data": 1}}]}, "binary_data must be"),
        ({"parameters": ["binary_data_output"]}, "'parameters' must be an object"),
    ],
)
def test_parameters_are_checked(doc: dict, match: str) -> None:
    body = json.loads(_json_input())
    with pytest.raises(InferenceRequestError, match=match):
        oip_v2.decode_request(json.dumps(body | doc).encode())


def test_unknown_parameters_are_kept_and_ignored() -> None:
    body = json.loads(_json_input())
    body["parameters"] = {"priority": 3, "binary_data_output": False}
    body["inputs"][0]["parameters"] = {"note": "x"}
    request = oip_v2.decode_request(json.dumps(body).encode())
    assert request.parameters["priority"] == 3 and not request.wants_binary("y")
    assert request.inputs[0].parameters == {"note": "x"}


def test_json_values_have_no_infinity() -> None:
    assert oip_v2.to_json_values(np.array([np.inf, -np.inf, 2.0])) == [None, None, 2.0]
