"""The V2 codec's fast paths give what the per-value loop gives: the same arrays for good data,
the same 400 and message for bad data (numpy would take a bool as 1.0, "2" as 2.0, 1.5 as 1),
and the same documents whether orjson or the json module reads and writes them."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockgate.errors import InferenceRequestError
from lockgate.serving import oip_v2

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(params=["orjson", "json"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with orjson (when installed) and with the json module alone."""
    if request.param == "json":
        monkeypatch.setattr(oip_v2, "orjson", None)
    elif oip_v2.orjson is None:
        pytest.skip("orjson is not installed")
    return str(request.param)


def _decode(datatype: str, shape: list[int], data: Any) -> oip_v2.Tensor:
    item = {"name": "x", "datatype": datatype, "shape": shape, "data": data}
    [tensor] = oip_v2.decode_request(json.dumps({"inputs": [item]}).encode()).inputs
    return tensor


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("FP64", [2], [1.0, True], "datatype FP64 cannot hold True"),
        ("FP64", [2, 1], [[1.0], [False]], "datatype FP64 cannot hold False"),
        ("FP32", [2], [1.0, True], "datatype FP32 cannot hold True"),
        ("FP64", [2], [1.0, "2"], "datatype FP64 cannot hold '2'"),
        ("FP64", [1], "1.5", "datatype FP64 cannot hold '1.5'"),
        ("FP64", [1], [{"a": 1}], "datatype FP64 cannot hold {'a': 1}"),
        ("INT64", [2], [1, None], "datatype INT64 cannot hold None"),
        ("INT64", [2], [1, 1.0], "datatype INT64 cannot hold 1.0"),
        ("INT64", [2], [1, 1.5], "datatype INT64 cannot hold 1.5"),
        ("INT32", [2], [1, True], "datatype INT32 cannot hold True"),
        ("INT16", [2, 1], [[1], ["2"]], "datatype INT16 cannot hold '2'"),
        ("BOOL", [2], [True, 1], "datatype BOOL cannot hold 1"),
        ("BOOL", [2], [True, None], "datatype BOOL cannot hold None"),
        ("BYTES", [2], ["a", 1], "datatype BYTES expects strings, got 1"),
        ("BYTES", [2], ["a", False], "datatype BYTES expects strings, got False"),
        ("BYTES", [3], ["a", None, "\ud800"], "string 1 is not valid Unicode (a lone surrogate?)"),
        ("FP64", [2, 2], [[1.0, 2.0], [3.0]], "shape [2, 2] holds 4 elements but data has 3"),
        ("FP64", [2], [[1.0, 2.0], [3.0]], "shape [2] holds 2 elements but data has 3"),
        ("FP32", [2], [1.0, 1e300], "value out of range for FP32: "),
        ("FP16", [1], [70000], "value out of range for FP16: "),
        ("FP64", [1], [10**400], "value out of range for FP64: "),
        ("INT8", [2], [1, 300], "value out of range for INT8: "),
        ("INT8", [1], [-129], "value out of range for INT8: "),
        ("UINT8", [2], [1, -1], "value out of range for UINT8: "),
        ("INT64", [1], [2**63], "value out of range for INT64: "),
        ("INT64", [1], [2**64], "value out of range for INT64: "),
        ("UINT64", [1], [2**64], "value out of range for UINT64: "),
    ],
)
def test_what_numpy_would_take_is_still_a_400(
    parser: str, datatype: str, shape: list[int], data: Any, message: str
) -> None:
    with warnings.catch_warnings(), pytest.raises(InferenceRequestError) as caught:
        warnings.simplefilter("ignore")  # as in production: a warning must not be the guard
        _decode(datatype, shape, data)
    text = str(caught.value)
    if message.endswith(": "):  # numpy's own words follow, which differ between versions
        assert text.startswith(f"input 'x': {message}") and len(text) > len(message) + 11
    else:
        assert text == f"input 'x': {message}"


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "expected"),
    [
        ("FP64", [3, 1], [[1], [None], [2.5]], [[1.0], [math.nan], [2.5]]),
        ("FP64", [3], [[1.0, 2.0], [3.0]], [1.0, 2.0, 3.0]),  # ragged: flattened, as ever
        ("FP64", [3], [[1.0], 2.0, [[3.0]]], [1.0, 2.0, 3.0]),  # mixed nesting too
        ("FP64", [0], [[], []], []),
        ("FP64", [1], 2.5, [2.5]),  # a bare scalar is one value
        ("FP32", [2], [1, 0.1], [1.0, float(np.float32(0.1))]),
        ("INT8", [2], [-128, 127], [-128, 127]),
        ("INT64", [2], [-(2**63), 2**63 - 1], [-(2**63), 2**63 - 1]),
        ("UINT64", [1], [2**64 - 1], [2**64 - 1]),
        ("BOOL", [2, 1], [[True], [False]], [[True], [False]]),
        ("BYTES", [2, 2], [["a", None], ["ü", ""]], [["a", None], ["ü", ""]]),
    ],
)
def test_good_data_is_typed_as_before(
    parser: str, datatype: str, shape: list[int], data: Any, expected: list[Any]
) -> None:
    tensor = _decode(datatype, shape, data)
    assert tensor.data.dtype == oip_v2.DTYPES[datatype] and list(tensor.data.shape) == shape
    got = tensor.data.tolist()
    if datatype.startswith("FP"):
        np.testing.assert_array_equal(np.array(got, dtype=float), np.array(expected, dtype=float))
    else:
        assert got == expected
        assert list(map(type, _reference_flatten(got))) == list(
            map(type, _reference_flatten(expected))
        )


def test_good_bodies_never_take_the_per_value_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: object) -> None:
        raise AssertionError("the per-value loop ran on good data")

    monkeypatch.setattr(oip_v2, "_typed_values_slowly", slow)
    rows = 100
    inputs = [
        {"name": "a", "datatype": "FP64", "shape": [rows], "data": [0.5] * rows},
        {"name": "b", "datatype": "FP64", "shape": [rows, 1], "data": [[1], [None]] * 50},
        {"name": "c", "datatype": "FP32", "shape": [rows], "data": [1.5] * rows},
        {"name": "d", "datatype": "INT64", "shape": [rows], "data": list(range(rows))},
        {"name": "e", "datatype": "BOOL", "shape": [rows], "data": [True] * rows},
        {"name": "f", "datatype": "BYTES", "shape": [rows], "data": ["Dream", None] * 50},
    ]
    request = oip_v2.decode_request(json.dumps({"inputs": inputs}).encode())
    assert [t.data.shape for t in request.inputs] == [(rows,), (rows, 1), *[(rows,)] * 4]


def test_shapes_are_checked_as_before() -> None:
    shapes: list[Any] = [[True], [2, -1], [2.0], ["2"]]
    for shape in shapes:
        with pytest.raises(InferenceRequestError, match="'shape' must be a list of non-negative"):
            _decode("FP64", shape, [1.0, 2.0])
    assert _decode("FP64", [], 1.5).data.shape == ()


# -- the fast path against the per-value loop, on anything JSON can hold ----------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.floats(width=32)
    | st.text(max_size=3)
    | st.sampled_from(["\ud800", "1", "", {"a": 1}])
)
nested = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4), max_leaves=30)
rows = st.integers(1, 3).flatmap(
    lambda n: st.lists(st.lists(scalars, min_size=n, max_size=n), max_size=5)
)
homogeneous = st.sampled_from(
    [st.floats(), st.integers(-300, 300), st.booleans(), st.text(max_size=3)]
).flatmap(lambda s: st.lists(s | st.none(), max_size=12) | st.lists(st.lists(s, max_size=2)))


def _reference_flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    return [leaf for item in data for leaf in _reference_flatten(item)]


def _outcome(run: Any) -> tuple[Any, ...]:
    try:
        array = run()
    except InferenceRequestError as exc:
        return ("400", str(exc))
    return ("ok", array.dtype.str, array.shape, [(type(v), repr(v)) for v in array.tolist()])


@FUZZ
@given(nested | rows | homogeneous, st.sampled_from(sorted(oip_v2.DTYPES)))
def test_fast_path_matches_the_per_value_loop(data: Any, datatype: str) -> None:
    flat = _reference_flatten(data)
    flattened = oip_v2._flatten_typed(data)[0]
    assert flattened == flat or repr(flattened) == repr(flat)
    fast = _outcome(lambda: oip_v2.typed_values(*oip_v2._flatten_typed(data), datatype, "w"))
    public = _outcome(lambda: oip_v2.from_json_values(flat, datatype, "w"))
    slow = _outcome(lambda: oip_v2._typed_values_slowly(list(flat), datatype, "w"))
    assert fast == public == slow


# -- orjson reads and writes the same documents as the json module ----------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'{"id": 123456789012345678901234567890, "x": 1}',  # orjson would make it a float
        b'{"x": [-9223372036854775809, 18446744073709551616]}',
        b'{"x": [NaN, Infinity, -Infinity, 1e400]}',  # json takes these; orjson does not
        b'{"x": "\\ud800"}',
        b'\xef\xbb\xbf{"x": 1}',  # a UTF-8 byte order mark
        '{"x": "ü"}'.encode("utf-16"),
        b'{"x": [18446744073709551615, -9223372036854775808, 0.1, -0.0, 1E2, 5e-324]}',
        b'{"a": 1, "a": 2}',
        b"[" * 1500 + b"]" * 1500,  # past orjson's depth limit: json decides
        b'{"x": [0.0012301533574825742, -0.00000000000000000000123, 1e-0000000000000000000001]}',
        b'{"x": [12345678901234567890.5, 12345678901234567890e3, 0.5], "id": 12345678901234567890}',
        b'{"x": [1E+12345678901234567890], "y": -12345678901234567890}',
        b"[" * 100_000,
    ],
)
def test_loads_gives_what_json_gives(text: bytes) -> None:
    assert _load_outcome(oip_v2._loads, text) == _load_outcome(json.loads, text)


def _load_outcome(loads: Any, text: bytes) -> tuple[str, str]:
    try:
        return ("ok", repr(loads(text)))
    except (ValueError, RecursionError) as exc:
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize(
    "text", [b"{not json", b'{"x": 1,}', b'{"x": "\t"}', b'{"x": 01}', b"\xff", b"", b"[" * 5000]
)
def test_what_json_refuses_is_still_refused(parser: str, text: bytes) -> None:
    with pytest.raises(InferenceRequestError, match="not valid JSON|nested too deeply"):
        oip_v2.load_json_object(text, "request")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["\ud800", "ü", "\x00"]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=3), kids),
    max_leaves=20,
)


@FUZZ
@given(json_values, st.booleans(), st.integers(0, 40), st.binary(max_size=3))
def test_loads_matches_json_on_mutated_documents(
    value: Any, ascii_only: bool, cut: int, noise: bytes
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    for body in (text, text[:cut] + noise + text[cut:]):
        assert _load_outcome(oip_v2._loads, body) == _load_outcome(json.loads, body)


@pytest.mark.parametrize(
    "doc",
    [
        {"outputs": [{"name": "label", "data": ["Adelie", "ü", None]}]},
        {"outputs": [{"name": "label", "data": ["\ud800"]}]},  # orjson refuses: json writes it
        {"id": 2**70, "parameters": {"x": [1e-7, 1e16, -0.0]}},
    ],
)
def test_dumps_writes_what_json_reads_back(parser: str, doc: dict[str, Any]) -> None:
    assert json.loads(oip_v2.dump_json(doc)) == doc


def test_to_json_values_large_and_small_arrays() -> None:
    for size in (3, 64, 65, 500):
        array = np.linspace(0.0, 1.0, size)
        array[[0, size // 2, -1]] = [np.nan, np.inf, -np.inf]
        values = oip_v2.to_json_values(array.astype(np.float32).reshape(-1, 1))
        want = [v if math.isfinite(v) else None for v in array.astype(np.float32).tolist()]
        assert values == want and all(type(v) in (float, type(None)) for v in values)
    objects = np.array([b"caf\xc3\xa9", np.str_("a"), None, 3, "x"], dtype=object)
    assert oip_v2.to_json_values(objects) == ["café", "a", None, "3", "x"]
    assert [type(v) for v in oip_v2.to_json_values(objects)][:2] == [str, str]


def test_response_round_trip_with_non_finite_and_unicode(parser: str) -> None:
    outputs = [
        oip_v2.Tensor("p", "FP64", [100, 2], np.full((100, 2), 0.25)),
        oip_v2.Tensor("label", "BYTES", [2], np.array(["Adélie", None], dtype=object)),
    ]
    outputs[0].data[7, 1] = np.nan
    body, header = oip_v2.encode_response("m", "1", outputs)
    assert header is None
    doc = json.loads(body)
    assert doc["outputs"][0]["data"][15] is None and doc["outputs"][1]["data"] == ["Adélie", None]
    got = oip_v2.decode_response(body)
    assert np.isnan(got["p"].data[7, 1]) and got["label"].data.tolist() == ["Adélie", None]


@pytest.mark.parametrize(
    ("text", "may_be_big"),
    [
        (b'{"a": 12345678901234567890}', True),
        (b"[-12345678901234567890]", True),
        (b'["12345678901234567890"]', True),  # in a string: json decides, to be safe
        (b"[0.0012301533574825742, -0.12345678901234567890]", False),  # fractions
        (b"[12345678901234567890.5, 12345678901234567890e3]", False),  # float mantissas
        (b"[1e-12345678901234567890, 1E+12345678901234567890]", False),  # exponents
        (b"[1234567890123456789]", True),
        (b"[123456789012345678]", False),  # 18 digits fit in 64 bits
    ],
)
def test_only_integer_literals_of_19_digits_send_a_body_to_json(
    text: bytes, may_be_big: bool
) -> None:
    assert oip_v2._may_hold_big_integer(text) is may_be_big


def test_floats_with_long_fractions_are_read_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random floats print with 17-19 digit fractions; such bodies must not fall back to
    the slower parser (that cost 150 us per 100-row request)."""
    rng = np.random.default_rng(0)
    values = (rng.normal(size=100) / 1000).tolist()
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [100], "data": values}]}
    )

    def refuse(text: Any) -> Any:
        raise AssertionError("fell back to json.loads")

    monkeypatch.setattr(oip_v2.json, "loads", refuse)
    doc = oip_v2._loads(body.encode())
    assert doc["inputs"][0]["data"] == values


plain_values = st.lists(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**70), 2**70),
        st.booleans(),
        st.none(),
        st.text(max_size=2),
    ),
    max_size=6,
)


@FUZZ
@given(plain_values, st.sampled_from([*sorted(oip_v2.DTYPES), ["FP64"], None]), st.integers(0, 7))
def test_the_plain_input_path_gives_the_general_paths_tensor(
    data: list[Any], datatype: Any, n: int
) -> None:
    """``_plain_input`` (name, datatype, [n], flat data) answers only what the general path
    answers alike: the same tensor, or None where that path decides (and maybe refuses)."""
    item = {"name": "x", "datatype": datatype, "shape": [n], "data": data}
    plain = oip_v2._plain_input(item)
    try:
        general, _ = oip_v2._decode_input(dict(item, parameters={}), 0, memoryview(b""), 0)
    except InferenceRequestError:
        assert plain is None
        return
    if plain is not None:
        assert (plain.name, plain.datatype, plain.shape) == (general.name, general.datatype,
                                                             general.shape)  # fmt: skip
        assert plain.data.dtype == general.data.dtype
        np.testing.assert_array_equal(plain.data, general.data)
