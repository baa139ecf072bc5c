"""The requests infra-validation sends, and how it reads the answers.

Each request carries real eval rows over one of three wire formats, as a client writes it:
V2 JSON, V2 binary tensor data (the tritonclient default; a text column with a missing
value rides as JSON data, which the binary layout cannot hold), and the TF-Serving REST
row format. Every answer is read back into columns by output name, so that it can be
compared with the in-process predictions on the same rows.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from lockgate.serving import oip_v2
from lockgate.serving.servable import TensorSpec

PROTOCOLS = ("v2-json", "v2-binary", "tfserving-rest")


@dataclass
class Request:
    """One prepared request: where it goes, its body, and which eval rows it carries."""

    protocol: str
    path: str
    body: bytes
    headers: dict[str, str]
    rows: np.ndarray  # indices into the eval rows


def build_requests(
    model_name: str,
    columns: dict[str, np.ndarray],
    inputs: list[TensorSpec],
    *,
    n_requests: int,
    rows_per_request: int,
) -> list[Request]:
    """``n_requests`` requests, round-robin over ``PROTOCOLS``, each with the next
    ``rows_per_request`` eval rows (wrapping round)."""
    n = len(next(iter(columns.values())))
    requests = []
    for i in range(n_requests):
        rows = (np.arange(rows_per_request) + i * rows_per_request) % n
        chunk = {spec.name: columns[spec.name][rows] for spec in inputs}
        protocol = PROTOCOLS[i % len(PROTOCOLS)]
        if protocol == "tfserving-rest":
            path, body, headers = _tfserving(model_name, chunk, inputs)
        else:
            path, body, headers = _v2(model_name, chunk, inputs, protocol == "v2-binary")
        requests.append(Request(protocol, path, body, headers, rows))
    return requests


def read_answer(request: Request, body: bytes, headers: Any) -> dict[str, np.ndarray]:
    """The outputs of an answer by name; V2 tensors keep their shape, TF-Serving rows are
    stacked into columns."""
    if request.protocol == "tfserving-rest":
        predictions = json.loads(body)["predictions"]
        if predictions and not isinstance(predictions[0], dict):  # one output: bare values
            return {"predicted": _array([p for p in predictions])}
        names = list(predictions[0]) if predictions else []
        return {name: _array([p[name] for p in predictions]) for name in names}
    length = headers.get(oip_v2.HEADER)
    tensors = oip_v2.decode_response(body, None if length is None else int(length))
    return {name: tensor.data for name, tensor in tensors.items()}


def _array(values: list[Any]) -> np.ndarray:
    if values and all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    return np.array([np.nan if v is None else v for v in values])


def _v2(
    model_name: str, chunk: dict[str, np.ndarray], inputs: list[TensorSpec], binary: bool
) -> tuple[str, bytes, dict[str, str]]:
    doc: dict[str, Any] = {"inputs": []}
    blobs: list[bytes] = []
    for spec in inputs:
        values = chunk[spec.name]
        tensor: dict[str, Any] = {
            "name": spec.name,
            "datatype": spec.datatype,
            "shape": [len(values)],
        }
        blob = _binary(spec.datatype, values) if binary else None
        if blob is None:
            tensor["data"] = oip_v2.to_json_values(values)
        else:
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        doc["inputs"].append(tensor)
    headers = {"Content-Type": "application/json"}
    if binary:
        doc["parameters"] = {"binary_data_output": True}
    head = json.dumps(doc, allow_nan=False).encode("utf-8")
    if blobs:
        headers = {"Content-Type": "application/octet-stream", oip_v2.HEADER: str(len(head))}
    return f"/v2/models/{model_name}/infer", head + b"".join(blobs), headers


def _binary(datatype: str, values: np.ndarray) -> bytes | None:
    """The raw bytes of a tensor, or None when the binary layout cannot hold it (a missing
    text value)."""
    if datatype != "BYTES":
        return np.ascontiguousarray(values, dtype=oip_v2.DTYPES[datatype]).tobytes()
    if any(v is None for v in values):
        return None
    parts = []
    for value in values:
        encoded = str(value).encode("utf-8")
        parts += [struct.pack("<I", len(encoded)), encoded]
    return b"".join(parts)


def _tfserving(
    model_name: str, chunk: dict[str, np.ndarray], inputs: list[TensorSpec]
) -> tuple[str, bytes, dict[str, str]]:
    names = [spec.name for spec in inputs]
    values = {name: [_json_value(v) for v in chunk[name].tolist()] for name in names}
    n = len(next(iter(values.values()))) if values else 0
    instances = [{name: values[name][i] for name in names} for i in range(n)]
    body = json.dumps({"instances": instances}, allow_nan=False).encode("utf-8")
    return f"/v1/models/{model_name}:predict", body, {"Content-Type": "application/json"}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
