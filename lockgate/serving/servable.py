"""What the server serves: a named, versioned thing that turns input columns into outputs.

The server only knows the ``Servable`` protocol, so a test, a canary or a user's own model
plugs in without the training code; ``PipelineServable`` is the standard one, the fitted
transform and the model served together so that serving applies exactly what training did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from lockgate.errors import DataError, InferenceRequestError, did_you_mean

#: V2 datatypes whose values are numbers; any of them may feed a numeric input.
NUMERIC_DATATYPES = frozenset(
    {
        "FP16",
        "FP32",
        "FP64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
    }
)


@dataclass
class TensorSpec:
    """One input or output as the V2 metadata describes it; -1 in ``shape`` is the batch."""

    name: str
    datatype: str
    shape: list[int] = field(default_factory=lambda: [-1])

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@runtime_checkable
class Servable(Protocol):
    """A model the server can answer with.

    ``predict`` gets one 1-D array of length n per input (strings as object arrays of
    ``str``, missing values as ``None`` or NaN) and returns arrays of length n (n x k for
    probabilities). It runs in a worker thread, so it may block.
    """

    name: str
    version: str
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def validate_columns(
    columns: Mapping[str, np.ndarray], specs: list[TensorSpec]
) -> dict[str, np.ndarray]:
    """Check request columns against the input specs; return them typed as the specs say.

    Runs before any model code so a bad request gets a 400 that names the input instead
    of a stack trace from deep inside a transform.
    """
    expected = [spec.name for spec in specs]
    for name in columns:
        if name not in expected:
            raise InferenceRequestError(
                f"unexpected input '{name}'; the model's inputs are {expected}"
                f"{did_you_mean(name, expected)}"
            )
    missing = [name for name in expected if name not in columns]
    if missing:
        raise InferenceRequestError(
            f"missing input {', '.join(repr(m) for m in missing)}; "
            f"the model's inputs are {expected}"
        )
    out: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for spec in specs:
        column = np.asarray(columns[spec.name])
        if column.ndim != 1:
            raise InferenceRequestError(
                f"input '{spec.name}': expected one value per row (shape [n] or [n, 1]), "
                f"got shape {list(column.shape)}"
            )
        out[spec.name] = _typed_column(spec, column)
        lengths[spec.name] = len(column)
    if len(set(lengths.values())) > 1:
        raise InferenceRequestError(f"inputs have different numbers of rows: {lengths}")
    if specs and not any(lengths.values()):
        raise InferenceRequestError("request has no rows; send at least one value per input")
    return out


def _typed_column(spec: TensorSpec, column: np.ndarray) -> np.ndarray:
    if spec.datatype == "BYTES":
        if column.dtype.kind in "US":
            return column.astype(str).astype(object)
        if column.dtype != object:
            raise InferenceRequestError(
                f"input '{spec.name}' expects strings (BYTES), got numbers ({column.dtype})"
            )
        bad = [v for v in column if v is not None and not isinstance(v, str)]
        if bad:
            raise InferenceRequestError(
                f"input '{spec.name}' expects strings (BYTES), got {bad[0]!r}"
            )
        return column
    if spec.datatype in NUMERIC_DATATYPES:
        if column.dtype.kind in "biuf":
            return column.astype(np.float64) if spec.datatype.startswith("FP") else column
        bad = [v for v in column if v is not None and not _is_number(v)]
        if bad:
            raise InferenceRequestError(
                f"input '{spec.name}' expects numbers ({spec.datatype}), got {bad[0]!r}"
            )
        return np.array([np.nan if v is None else v for v in column], dtype=np.float64)
    return column


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


class PipelineServable:
    """The fitted transform and the trained model, served as one versioned unit."""

    platform = "lockgate_pipeline"

    def __init__(self, name: str, version: str, transform: Any, model: Any) -> None:
        self.name = name
        self.version = version
        self.transform = transform
        self.model = model
        self.inputs = [
            TensorSpec(feature, "FP64" if kind == "numeric" else "BYTES", [-1])
            for feature, kind in transform.features.items()
        ]
        self.classification = transform.task == "classification"
        if self.classification:
            k = len(transform.label_classes)
            self.outputs = [
                TensorSpec("predicted", "BYTES", [-1]),
                TensorSpec("probabilities", "FP64", [-1, k]),
            ]
        else:
            self.outputs = [TensorSpec("predicted", "FP64", [-1])]

    @classmethod
    def load(
        cls, name: str, version: str, folder: str | Path, *, model_sha256: str
    ) -> PipelineServable:
        """Load ``folder/transform`` and ``folder/model`` (checked against its sha256)."""
        from lockgate.training.model_files import load_model
        from lockgate.training.transform import TransformGraph

        folder = Path(folder)
        transform = TransformGraph.load(folder / "transform")
        model = load_model(folder / "model", sha256=model_sha256)
        return cls(name, version, transform, model)

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        typed = validate_columns(columns, self.inputs)
        table = pa.table(
            {
                spec.name: pa.array(typed[spec.name], type=pa.float64(), from_pandas=True)
                if spec.datatype == "FP64"
                else pa.array(typed[spec.name], type=pa.string())
                for spec in self.inputs
            }
        )
        try:
            features = self.transform.apply(table)
        except DataError as exc:  # the request's data, not the server, is at fault
            raise InferenceRequestError(f"cannot transform the request: {exc}") from exc
        predicted = self.model.predict(features)
        if not self.classification:
            return {"predicted": np.asarray(predicted, dtype=np.float64)}
        labels = self.transform.decode_label(np.asarray(predicted))
        outputs = {"predicted": np.array([str(v) for v in labels], dtype=object)}
        proba = self.model.predict_proba(features)
        if proba is not None:
            outputs["probabilities"] = np.asarray(proba, dtype=np.float64)
        return outputs
