"""Open Inference Protocol V2 (KServe / Triton) infer bodies, JSON and binary tensor data.

Real clients (``tritonclient.http``) send the binary extension by default: the first
``Inference-Header-Content-Length`` bytes are the JSON, then the raw bytes of each input
with ``parameters.binary_data_size``, in order. Every malformed thing is an
``InferenceRequestError`` saying what is wrong where, so the client gets a 400 it can read.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from types import NoneType
from typing import Any

import numpy as np

from lockgate.errors import InferenceRequestError

try:  # several times faster both ways; the json module gives the same documents without it
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, but the codec needs it not
    orjson = None  # type: ignore[assignment]

#: V2 datatype -> little-endian numpy dtype of its raw bytes; BYTES is length-prefixed.
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
HEADER = "Inference-Header-Content-Length"


@dataclass
class Tensor:
    """A named tensor: ``data`` already has ``shape`` (BYTES as an object array of str)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    binary_data: bool | None = None


@dataclass
class InferRequest:
    inputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None

    def wants_binary(self, name: str) -> bool:
        """An output's own ``binary_data`` wins over the request's ``binary_data_output``."""
        default = bool(self.parameters.get("binary_data_output", False))
        for out in self.outputs or []:
            if out.name == name and out.binary_data is not None:
                return out.binary_data
        return default


def parse_header_length(value: str | None, body_size: int) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise InferenceRequestError(f"{HEADER} must be an integer, got {value!r}") from None
    if not 0 <= length <= body_size:
        raise InferenceRequestError(f"{HEADER} is {length} but the body has only {body_size} bytes")
    return length


def decode_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Parse an infer request body (JSON, optionally followed by binary tensor data)."""
    if header_length is not None and header_length > len(body):
        raise InferenceRequestError(
            f"{HEADER} is {header_length} but the body has only {len(body)} bytes"
        )
    split = len(body) if header_length is None else header_length
    doc = load_json_object(body[:split], "request")
    raw = memoryview(body)[split:]
    inputs_doc = doc.get("inputs")
    if not isinstance(inputs_doc, list) or not inputs_doc:
        raise InferenceRequestError("request has no 'inputs' list; expected a non-empty list")
    inputs, offset = [], 0
    for i, item in enumerate(inputs_doc):
        tensor, offset = _decode_input(item, i, raw, offset)
        inputs.append(tensor)
    if offset != len(raw):
        raise InferenceRequestError(
            f"body has {len(raw) - offset} bytes of binary data after the inputs that no "
            "input's binary_data_size claims"
        )
    parameters = _dict(doc.get("parameters"), "request 'parameters'")
    _flag(parameters.get("binary_data_output"), "request parameter 'binary_data_output'")
    return InferRequest(
        inputs=inputs,
        id=None if doc.get("id") is None else str(doc["id"]),
        parameters=parameters,
        outputs=_decode_outputs(doc.get("outputs")),
    )


def encode_response(
    model_name: str,
    model_version: str,
    outputs: list[Tensor],
    request: InferRequest | None = None,
) -> tuple[bytes, int | None]:
    """Return the body and, when any output is binary, the JSON header's length."""
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request is not None and request.id is not None:
        doc["id"] = request.id
    doc["outputs"], blobs = _encode_tensors(
        outputs, lambda t: request is not None and request.wants_binary(t.name)
    )
    return _join(doc, blobs)


def encode_request(
    inputs: list[Tensor],
    *,
    binary: bool = False,
    outputs: list[RequestedOutput] | None = None,
    request_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Encode a request as a client would; the inverse of ``decode_request``."""
    doc: dict[str, Any] = {}
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = parameters
    doc["inputs"], blobs = _encode_tensors(inputs, lambda t: binary)
    if outputs is not None:
        doc["outputs"] = [
            {"name": o.name}
            | ({} if o.binary_data is None else {"parameters": {"binary_data": o.binary_data}})
            for o in outputs
        ]
    return _join(doc, blobs)


def decode_response(body: bytes, header_length: int | None = None) -> dict[str, Tensor]:
    """Parse an infer response into tensors by name; the inverse of ``encode_response``."""
    split = len(body) if header_length is None else header_length
    doc = load_json_object(body[:split], "response")
    raw, offset, result = memoryview(body)[split:], 0, {}
    for i, item in enumerate(doc.get("outputs") or []):
        tensor, offset = _decode_input(item, i, raw, offset, kind="output")
        result[tensor.name] = tensor
    return result


def to_json_values(array: np.ndarray) -> list[Any]:
    """Flatten to JSON-safe values: BYTES as str, NaN and inf as null (JSON has neither)."""
    flat = array.reshape(-1)
    values = flat.tolist()
    if array.dtype == object:
        if set(map(type, values)) <= _STR_OR_NONE:  # nothing to convert
            return values
        return [None if v is None else _to_str(v) for v in values]
    if array.dtype.kind == "f":
        if len(values) <= 64:  # numpy's per-call cost outweighs a C-level map this small
            if not all(map(math.isfinite, values)):
                return [v if math.isfinite(v) else None for v in values]
            return values
        finite = np.isfinite(flat)
        if not finite.all():
            for i in np.flatnonzero(~finite).tolist():
                values[i] = None
    return values


_STR_OR_NONE: set[type] = {str, NoneType}


def _to_str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _encode_tensors(tensors: list[Tensor], binary: Any) -> tuple[list[dict], list[bytes]]:
    docs, blobs = [], []
    for t in tensors:
        doc: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        params = dict(t.parameters)
        if binary(t):
            blob = _to_bytes(t)
            params["binary_data_size"] = len(blob)
            blobs.append(blob)
        else:
            doc["data"] = to_json_values(t.data)
        if params:
            doc["parameters"] = params
        docs.append(doc)
    return docs, blobs


def _join(doc: dict[str, Any], blobs: list[bytes]) -> tuple[bytes, int | None]:
    head = dump_json(doc)
    return (head, None) if not blobs else (head + b"".join(blobs), len(head))


def _to_bytes(t: Tensor) -> bytes:
    if t.datatype == "BYTES":
        parts = []
        for v in t.data.reshape(-1):
            # surrogatepass: a lone surrogate (echoed from a JSON request) stays bytes, not a 500
            b = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass")
            parts += [struct.pack("<I", len(b)), b]
        return b"".join(parts)
    return np.ascontiguousarray(t.data, dtype=DTYPES[t.datatype]).tobytes()


def dump_json(doc: dict[str, Any]) -> bytes:
    """Compact JSON as UTF-8 (both protocols' answers). orjson's text differs from json's in spelling only (``1e-7`` for
    ``1e-07``, ``ü`` unescaped), not in what it parses to; tensor data has no NaN to differ on
    (``to_json_values`` makes it null, as orjson would)."""
    if orjson is not None:
        try:
            return orjson.dumps(doc)
        except orjson.JSONEncodeError:  # a lone surrogate, an int past 64 bits, a non-str key
            pass
    return json.dumps(doc, separators=(",", ":")).encode()


#: A run of 19 digits may be an integer past 64 bits, which orjson reads as a float where
#: json keeps the int (an INT64 tensor must say "out of range", an id must keep its digits).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_ZERO = ord("0")


def _may_hold_big_integer(text: bytes) -> bool:
    """True when ``text`` has a run of 19+ digits that may be an integer literal. Runs in a
    float's fraction or exponent (``0.0012301533574825742``, common in real requests) are
    floats to both parsers and do not count, so such bodies keep orjson's speed."""
    masked = text.translate(_DIGITS_AS_ZERO)
    start = masked.find(_LONG_NUMBER)
    while start != -1:
        end = start + len(_LONG_NUMBER)
        while end < len(masked) and masked[end] == _ZERO:
            end += 1
        before = text[start - 1 : start]
        if before == b"-":  # a sign: an exponent's ("1e-...") or a negative number's
            before = text[start - 2 : start - 1]
        if before not in (b".", b"e", b"E", b"+") and text[end : end + 1] not in (b".", b"e", b"E"):
            return True
        start = masked.find(_LONG_NUMBER, end)
    return False


def _loads(text: bytes, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads``, through orjson where it gives the very same document.

    orjson refuses what json takes beyond strict JSON (NaN, Infinity, 1e400 as inf, lone
    surrogates, a BOM, UTF-16, nesting past 1024): json then decides, and so says what it says.
    ``parse_constant`` is json's hook for NaN and Infinity; only that path can meet them.
    """
    if orjson is not None and type(text) is bytes and not _may_hold_big_integer(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text, parse_constant=parse_constant)


class _NonFiniteLiteral(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a body: json's extension, not JSON."""


class _Marker(str):
    """Where a NaN or Infinity literal stood, when a refused body is read again to find it."""


def _refuse_constant(literal: str) -> Any:
    raise _NonFiniteLiteral(literal)


def load_json_object(
    text: bytes, what: str, name_of: Callable[[Any, list[Any]], str | None] | None = None
) -> dict[str, Any]:
    """Parse a JSON object; every way it can fail is a 400, never a 500.

    NaN and Infinity are refused as strict JSON parsers refuse them (orjson, JavaScript's
    JSON.parse): the message gives the literal's path, and ``name_of(doc, path)`` names the
    input it belongs to (V2 inputs by default)."""
    try:
        doc = _loads(text, _refuse_constant)
    except _NonFiniteLiteral as exc:
        raise _non_finite_error(text, str(exc), what, name_of or _v2_name) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int over 4300 digits
        raise InferenceRequestError(f"{what} body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InferenceRequestError(f"{what} body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise InferenceRequestError(f"{what} body must be a JSON object, got {type(doc).__name__}")
    return doc


def _non_finite_error(
    text: bytes, literal: str, what: str, name_of: Callable[[Any, list[Any]], str | None]
) -> InferenceRequestError:
    """The 400 for a NaN or Infinity literal, naming the input (error path only: the body is
    read a second time, with each literal kept as a marker, to find where it stands)."""
    try:
        doc = json.loads(text, parse_constant=_Marker)
    except (ValueError, RecursionError):  # also broken after the literal: no path then
        doc = None
    path = _marker_path(doc) or []
    at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    name = name_of(doc, path) if path else None
    where = f" in {name} (at {at})" if name else f" at {at}" if at else ""
    return InferenceRequestError(
        f"{what} body is not valid JSON: {literal}{where}; JSON has no NaN or Infinity",
        hint="send null for a missing value; strict JSON parsers refuse NaN and Infinity",
    )


def _marker_path(doc: Any) -> list[Any] | None:
    """The keys and indexes down to the first ``_Marker`` in ``doc`` (no recursion)."""
    stack: list[tuple[list[Any], Any]] = [([], doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Marker):
            return path
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        stack.extend((path + [key], child) for key, child in reversed(items))
    return None


def _v2_name(doc: Any, path: list[Any]) -> str | None:
    """``input 'x'`` (or ``output 'x'``) for a path into a V2 body's inputs (outputs)."""
    if len(path) >= 2 and path[0] in ("inputs", "outputs") and isinstance(path[1], int):
        item = doc[path[0]][path[1]]
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            return f"{path[0][:-1]} '{item['name']}'"
    return None


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InferenceRequestError(f"{where} must be an object, got {value!r}")
    return value


def _decode_outputs(value: Any) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InferenceRequestError(f"request 'outputs' must be a list, got {value!r}")
    result = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InferenceRequestError(f"outputs[{i}] must be an object with a 'name'")
        params = _dict(item.get("parameters"), f"output '{item['name']}' parameters")
        binary = _flag(params.get("binary_data"), f"output '{item['name']}' binary_data")
        result.append(RequestedOutput(item["name"], binary))
    return result


def _flag(value: Any, where: str) -> bool | None:
    """A boolean parameter: ``"false"`` must not silently mean True."""
    if value is not None and not isinstance(value, bool):
        raise InferenceRequestError(f"{where} must be true or false, got {value!r}")
    return value


def _decode_input(
    item: Any, index: int, raw: memoryview, offset: int, kind: str = "input"
) -> tuple[Tensor, int]:
    plain = _plain_input(item)
    if plain is not None:
        return plain, offset
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise InferenceRequestError(f"{kind}s[{index}] must be an object with a string 'name'")
    name, where = item["name"], f"{kind} '{item['name']}'"
    datatype = item.get("datatype")
    if not isinstance(datatype, str) or datatype not in DTYPES:  # a list is unhashable
        raise InferenceRequestError(
            f"{where}: unknown datatype {datatype!r}; expected one of {sorted(DTYPES)}"
        )
    shape = item.get("shape")
    if not isinstance(shape, list) or not (
        (set(map(type, shape)) <= _INT and min(shape, default=0) >= 0)
        or all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InferenceRequestError(
            f"{where}: 'shape' must be a list of non-negative integers, got {shape!r}"
        )
    count = math.prod(shape)
    params = _dict(item.get("parameters"), f"{where} parameters")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in item:
            raise InferenceRequestError(f"{where} has both 'data' and binary_data_size")
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or offset + size > len(raw)
        ):
            raise InferenceRequestError(
                f"{where}: binary_data_size {size!r} but only {len(raw) - offset} bytes of "
                f"binary data remain (is the {HEADER} header set?)"
            )
        flat = _from_bytes(bytes(raw[offset : offset + size]), datatype, count, where)
        offset += size
    elif "data" in item:
        flat = typed_values(*_flatten_typed(item["data"]), datatype, where)
    else:
        raise InferenceRequestError(f"{where} has neither 'data' nor binary_data_size")
    if flat.size != count:
        raise InferenceRequestError(
            f"{where}: shape {shape} holds {count} elements but data has {flat.size}"
        )
    data = flat if flat.ndim == len(shape) == 1 else flat.reshape(shape)
    return Tensor(name, datatype, shape, data, params), offset


def _plain_input(item: Any) -> Tensor | None:
    """The common input decoded in a few steps: exactly a name, a numeric datatype, a shape
    ``[n]`` and a flat list of ``n`` numbers of the types that datatype takes as they are
    (see ``_FAST_TYPES``; no None). It passes every check of the general path by
    construction and gives the same tensor; None for anything else, which takes that path."""
    if type(item) is not dict or len(item) != 4:
        return None
    name, datatype = item.get("name"), item.get("datatype")
    shape, data = item.get("shape"), item.get("data")
    if (
        type(name) is not str
        or type(datatype) is not str
        or datatype not in _PLAIN_DTYPES
        or type(shape) is not list
        or len(shape) != 1
        or type(data) is not list
        or type(shape[0]) is not int
        or shape[0] != len(data)
        or not set(map(type, data)) <= _FAST_TYPES[datatype]
    ):
        return None
    try:
        array = np.array(data, dtype=DTYPES[datatype])
    except (OverflowError, ValueError):  # an int out of range: the general path says which
        return None
    return Tensor(name, datatype, shape, array, {})


def _flatten_typed(data: Any) -> tuple[list[Any], set[type]]:
    """Row-major flattening without recursion (any nesting depth is safe), and the set of
    the flat values' types.

    Rectangular nesting (every item of a level a list, as in ``[[1.5], [2.0]]``) is flattened a
    level at a time in C; only a level that mixes lists and values takes the loop below.
    """
    if not isinstance(data, list):
        return [data], {type(data)}
    kinds = set(map(type, data))
    while kinds == _LIST:
        data = list(chain.from_iterable(data))
        kinds = set(map(type, data))
    if kinds <= _JSON_SCALARS or not any(issubclass(k, list) for k in kinds):
        return data, kinds
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        value = next(stack[-1], _END)
        if value is _END:
            stack.pop()
        elif isinstance(value, list):
            stack.append(iter(value))
        else:
            flat.append(value)
    return flat, set(map(type, flat))


_END = object()
_LIST: set[type] = {list}
_JSON_SCALARS: set[type] = {float, int, str, bool, NoneType, dict}
_INT: set[type] = {int}
#: The exact types ``json.loads`` makes that each datatype takes as they are (bool is not an
#: int here, and None in a float tensor is NaN). A set of value types within these needs no
#: per-value check; anything else (a subclass, a bool, a str) takes the per-value loop.
_FLOATS: set[type] = {float, int, NoneType}
_FAST_TYPES: dict[str, set[type]] = {name: _INT for name in DTYPES} | {
    "BOOL": {bool},
    "FP16": _FLOATS,
    "FP32": _FLOATS,
    "FP64": _FLOATS,
    "BYTES": _STR_OR_NONE,
}
#: What ``_plain_input`` decodes: a datatype whose fast types go to NumPy without a check
#: (integers may still overflow a narrow type, which NumPy refuses)
_PLAIN_DTYPES = frozenset(
    {"FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
#: Only these can overflow in the cast (1e300 as FP32); FP64 from a Python float is exact and
#: an int too large for it is an OverflowError with or without ``np.errstate``.
_NARROW_FLOATS = frozenset({"FP16", "FP32"})


def from_json_values(values: list[Any], datatype: str, where: str) -> np.ndarray:
    """Type a flat list of JSON values as ``datatype``, or say which value does not fit."""
    return typed_values(values, set(map(type, values)), datatype, where)


def typed_values(values: Sequence[Any], kinds: set[type], datatype: str, where: str) -> np.ndarray:
    """``from_json_values`` given the set of the values' exact types.

    When every type is one the datatype takes as it is, the list goes to numpy whole; any
    other set, or numpy refusing a value, takes the per-value loop, which names the bad value.
    """
    if kinds <= _FAST_TYPES.get(datatype, set()):
        if datatype == "BYTES":
            _check_utf8(
                [v for v in values if v is not None] if NoneType in kinds else values, where
            )
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array
        numbers = [np.nan if v is None else v for v in values] if NoneType in kinds else values
        try:
            if datatype in _NARROW_FLOATS:
                with np.errstate(over="raise"):
                    return np.array(numbers, dtype=DTYPES[datatype])
            return np.array(numbers, dtype=DTYPES[datatype])
        except Exception:  # the loop below says what was wrong, in its own words
            pass
    return _typed_values_slowly(values, datatype, where)


def _typed_values_slowly(values: Sequence[Any], datatype: str, where: str) -> np.ndarray:
    """Check every value in Python: the exact error message for whatever the fast path skips."""
    if datatype == "BYTES":
        bad = next((v for v in values if v is not None and not isinstance(v, str)), None)
        if bad is not None:
            raise InferenceRequestError(f"{where}: datatype BYTES expects strings, got {bad!r}")
        _check_utf8([v for v in values if v is not None], where)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    if datatype == "BOOL":
        ok = all(isinstance(v, bool) for v in values)
    elif datatype.startswith("FP"):
        ok = all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
        )
        values = [np.nan if v is None else v for v in values]
    else:
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if not ok:
        bad = next(v for v in values if not _fits(v, datatype))
        raise InferenceRequestError(f"{where}: datatype {datatype} cannot hold {bad!r}")
    try:
        with np.errstate(over="raise"):  # 1e300 as FP32 is an error, not a silent inf
            return np.array(values, dtype=DTYPES[datatype])
    except (OverflowError, ValueError, FloatingPointError) as exc:
        raise InferenceRequestError(f"{where}: value out of range for {datatype}: {exc}") from None


def _check_utf8(texts: Sequence[str], where: str) -> None:
    """JSON may carry lone surrogates ("\\ud800") that no UTF-8 consumer can take."""
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        bad = next(i for i, t in enumerate(texts) if not _encodes(t))
        raise InferenceRequestError(
            f"{where}: string {bad} is not valid Unicode (a lone surrogate?)"
        ) from None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fits(value: Any, datatype: str) -> bool:
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) if datatype.startswith("FP") else isinstance(value, int)


def _from_bytes(raw: bytes, datatype: str, count: int, where: str) -> np.ndarray:
    if datatype != "BYTES":
        itemsize = DTYPES[datatype].itemsize
        if len(raw) != count * itemsize:
            raise InferenceRequestError(
                f"{where}: binary_data_size {len(raw)} does not match {count} {datatype} "
                f"elements of {itemsize} bytes ({count * itemsize})"
            )
        return np.frombuffer(raw, dtype=DTYPES[datatype]).copy()
    values: list[str] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InferenceRequestError(f"{where}: BYTES data ends inside a length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + n > len(raw):
            raise InferenceRequestError(
                f"{where}: BYTES element {len(values)} claims {n} bytes but only "
                f"{len(raw) - pos - 4} remain"
            )
        try:
            values.append(raw[pos + 4 : pos + 4 + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise InferenceRequestError(
                f"{where}: BYTES element {len(values)} is not valid UTF-8"
            ) from None
        pos += 4 + n
    return np.array(values, dtype=object)
