"""TensorFlow-Serving REST API (v1) bodies: predict, model status and model metadata.

It follows TF Serving's REST API document so that its existing clients work unchanged:

- ``{"instances": [{feature: value}, ...]}`` (row form) answers
  ``{"predictions": [...]}``, one entry per row: an object ``{output: value}``, or the bare
  value when there is only one output. A model with one input may take bare values as rows.
- ``{"instances": [[value, ...], ...]}``: rows as lists of values, the features in the
  signature's order (``feature_order`` in the V2 model metadata).
- ``{"inputs": {feature: [values]}}`` (column form) answers ``{"outputs": {output: [...]}}``,
  or ``{"outputs": [...]}`` when there is only one output. A one-input model may take a list;
  ``{"inputs": [[value, ...], ...]}`` is one unnamed ``[n, N]`` tensor of rows as above.
- ``{"b64": "..."}`` is a base64 string value; ``signature_name`` may only be
  ``serving_default``; ``output_filter`` (as in the gRPC PredictRequest) picks outputs.

Values are raw features, one per row; each one is checked against the model's input specs
here, so a missing or mistyped feature is a 400 naming it. JSON has no NaN: non-finite
outputs are written as ``null``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any, cast

import numpy as np

from lockgate.errors import InferenceRequestError, did_you_mean
from lockgate.serving import oip_v2
from lockgate.serving.servable import Servable, TensorSpec

SIGNATURE = "serving_default"
#: V2 datatype -> TensorFlow DataType name, for the signature_def metadata.
TF_DTYPES = {
    "BOOL": "DT_BOOL",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "FP16": "DT_HALF",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}
_SCALARS = (str, int, float, bool, type(None))
#: the exact types ``json.loads`` makes for scalars (a subclass takes the per-value check)
_SCALAR_TYPES: set[type] = set(_SCALARS)


@dataclass
class PredictRequest:
    """A decoded predict request: typed columns, and how the answer must be shaped."""

    columns: dict[str, np.ndarray]
    row_format: bool
    output_filter: list[str] | None = None

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def decode_predict(body: bytes, inputs: list[TensorSpec]) -> PredictRequest:
    """Parse a predict body and type each feature as ``inputs`` says."""
    doc = oip_v2.load_json_object(body, "request", _feature_at)
    signature = doc.get("signature_name", SIGNATURE)
    if signature not in (SIGNATURE, ""):
        raise InferenceRequestError(
            f"unknown signature_name {signature!r}; the model has only '{SIGNATURE}'"
        )
    if ("instances" in doc) == ("inputs" in doc):
        raise InferenceRequestError(
            "request must have exactly one of 'instances' (row form) or 'inputs' (column form)"
        )
    names = [spec.name for spec in inputs]
    if "instances" in doc:
        raw = _rows_to_columns(doc["instances"], names)
    else:
        raw = _columns(doc["inputs"], names)
    return PredictRequest(
        columns=_typed(raw, inputs),
        row_format="instances" in doc,
        output_filter=_output_filter(doc.get("output_filter")),
    )


def encode_predict(outputs: dict[str, np.ndarray], *, row_format: bool) -> bytes:
    """The answer in the form the request used (see the module docstring)."""
    values = {name: json_values(np.asarray(array)) for name, array in outputs.items()}
    if row_format:
        if len(values) == 1:
            [predictions] = values.values()
        else:
            n = min(len(v) for v in values.values())
            predictions = [{name: v[i] for name, v in values.items()} for i in range(n)]
        doc: dict[str, Any] = {"predictions": predictions}
    else:
        doc = {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    return oip_v2.dump_json(doc)


def json_values(array: np.ndarray) -> list[Any]:
    """Nested lists with JSON-safe scalars (V2's ``to_json_values``, nested by the shape)."""
    flat = oip_v2.to_json_values(array)
    if array.ndim <= 1:
        return flat
    if 0 in array.shape:
        return cast(list[Any], np.empty(array.shape).tolist())
    nested: list[Any] = flat
    for size in reversed(array.shape[1:]):
        nested = [nested[i : i + size] for i in range(0, len(nested), size)]
    return nested


def status_doc(versions: list[str]) -> dict[str, Any]:
    """``GET /v1/models/{m}``: every loaded version is AVAILABLE."""
    return {
        "model_version_status": [
            {
                "version": version,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
            for version in versions
        ]
    }


def metadata_doc(servable: Servable) -> dict[str, Any]:
    """``GET /v1/models/{m}/metadata``: one ``serving_default`` signature_def."""
    signature = {
        "inputs": {spec.name: _tensor_info(spec) for spec in servable.inputs},
        "outputs": {spec.name: _tensor_info(spec) for spec in servable.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": servable.name, "signature_name": "", "version": servable.version},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }


def _tensor_info(spec: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": TF_DTYPES.get(spec.datatype, "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in spec.shape],
            "unknown_rank": False,
        },
        "name": spec.name,
    }


def _rows_to_columns(instances: Any, names: list[str]) -> dict[str, _Column]:
    if not isinstance(instances, list) or not instances:
        raise InferenceRequestError("'instances' must be a non-empty list of rows")
    if isinstance(instances[0], list):
        return _lists_to_columns(instances, names, "instance")
    if not any(isinstance(row, dict) for row in instances):
        if len(names) != 1:
            raise InferenceRequestError(
                f"each instance must be an object {{feature: value}}; the model's inputs "
                f"are {names}"
            )
        return {names[0]: _checked(instances, partial(_where, "instance", None))}
    expected = dict.fromkeys(names).keys()
    for i, row in enumerate(instances):
        if not isinstance(row, dict):
            raise InferenceRequestError(f"instance {i} is not an object {{feature: value}}")
        if row.keys() != expected:
            _check_features(i, row, names)
    if not names:
        return {}
    rows = map(itemgetter(*names), instances)
    columns = zip(*rows, strict=True) if len(names) > 1 else (list(rows),)
    return {
        name: _checked(column, partial(_where, "instance", name))
        for name, column in zip(names, columns, strict=True)
    }


def _check_features(i: int, row: dict[str, Any], names: list[str]) -> None:
    """Raise for row ``i``'s unexpected or missing feature."""
    for key in row:
        if key not in names:
            raise InferenceRequestError(
                f"instance {i} has unexpected feature '{key}'; the model's inputs are "
                f"{names}{did_you_mean(key, names)}"
            )
    missing = next(name for name in names if name not in row)
    raise InferenceRequestError(
        f"instance {i} is missing feature '{missing}'; the model's inputs are {names}"
    )


def _lists_to_columns(rows: list[Any], names: list[str], what: str) -> dict[str, _Column]:
    """Rows as lists of values, the features in the signature's order."""
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InferenceRequestError(
                f"{what} {i} is not a list of values; send every row alike, as a list of"
                f" {width} values (the features {names} in this order)"
            )
        if len(row) != width:
            raise InferenceRequestError(
                f"{what} {i} has {len(row)} values; expected {width}, the features {names}"
                " in this order"
            )
    columns = [list(column) for column in zip(*rows, strict=True)] or [[] for _ in names]
    return {
        name: _checked(column, partial(_where, what, name))
        for name, column in zip(names, columns, strict=True)
    }


def _where(what: str | None, feature: str | None, i: int) -> str:
    """Where value ``i`` of a feature stood, for an error: ``instance 3, feature 'x'``."""
    row = None if what is None else f"{what} {i}"
    named = None if feature is None else f"feature '{feature}'"
    return ", ".join(part for part in (row, named) if part is not None)


def _checked(values: Sequence[Any], where: Callable[[int], str]) -> _Column:
    """One feature's values, one per row, each a scalar or ``{"b64": ...}`` (decoded), with
    the set of their types: checked as a whole when they are plain scalars, else one by one
    (``where(i)`` names row ``i`` in an error)."""
    kinds = set(map(type, values))
    if kinds <= _SCALAR_TYPES:
        return _Column(values, kinds)
    decoded = [_value(v, where(i)) for i, v in enumerate(values)]
    return _Column(decoded, set(map(type, decoded)))


@dataclass
class _Column:
    """A feature's checked values and the set of their types (typed once, in ``_typed``)."""

    values: Sequence[Any]
    kinds: set[type]

    def __len__(self) -> int:
        return len(self.values)


def _columns(inputs: Any, names: list[str]) -> dict[str, _Column]:
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], list):
        return _lists_to_columns(inputs, names, "row")  # one unnamed [n, N] tensor
    if not isinstance(inputs, dict):
        if len(names) == 1 and isinstance(inputs, list):
            inputs = {names[0]: inputs}
        else:
            raise InferenceRequestError(
                f"'inputs' must be an object {{feature: [values]}}; the model's inputs are {names}"
            )
    columns = {}
    for name, values in inputs.items():
        values = values if isinstance(values, list) else [values]
        columns[name] = _checked(values, partial(_where, None, name))
    missing = [name for name in names if name not in columns]
    unexpected = [name for name in columns if name not in names]
    if unexpected:
        raise InferenceRequestError(
            f"unexpected feature '{unexpected[0]}'; the model's inputs are {names}"
            f"{did_you_mean(unexpected[0], names)}"
        )
    if missing:
        raise InferenceRequestError(
            f"missing feature {', '.join(repr(m) for m in missing)}; the model's inputs are {names}"
        )
    return columns


def _value(value: Any, where: str) -> Any:
    """One feature value of one row: a scalar, or ``{"b64": ...}`` for a string."""
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InferenceRequestError(f"{where}: 'b64' is not base64 of UTF-8 text") from None
    if not isinstance(value, _SCALARS):
        raise InferenceRequestError(
            f"{where}: expected one value per row, got {type(value).__name__} {_short(value)}"
        )
    return value


def _typed(columns: dict[str, _Column], inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    typed = {
        spec.name: oip_v2.typed_values(
            columns[spec.name].values,
            columns[spec.name].kinds,
            spec.datatype,
            f"feature '{spec.name}'",
        )
        for spec in inputs
    }
    lengths = {name: len(column) for name, column in typed.items()}
    if len(set(lengths.values())) > 1:
        raise InferenceRequestError(f"features have different numbers of rows: {lengths}")
    return typed


def _feature_at(doc: Any, path: list[Any]) -> str | None:
    """The feature a path into a predict body belongs to, in ``_rows_to_columns``' words."""
    if path[0] == "instances" and len(path) >= 2 and isinstance(path[1], int):
        if len(path) >= 3 and isinstance(path[2], str):
            return f"instance {path[1]}, feature '{path[2]}'"
        return f"instance {path[1]}"
    if path[0] == "inputs" and len(path) >= 2 and isinstance(path[1], str):
        return f"feature '{path[1]}'"
    return None


def _output_filter(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InferenceRequestError(
            f"'output_filter' must be a non-empty list of output names, got {_short(value)}"
        )
    return value


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
