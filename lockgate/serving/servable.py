"""What the server serves: a named, versioned thing that turns input columns into outputs.

The server only knows the ``Servable`` protocol, so a test, a canary or a user's own model
plugs in without the training code; ``PipelineServable`` is the standard one, the fitted
transform and the model served together so that serving applies exactly what training did.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import pyarrow as pa

from lockgate.errors import (
    DataError,
    InferenceRequestError,
    ModelError,
    did_you_mean,
)

#: The warm-up requests stored next to a pushed model: ``{"inputs": {name: [values]}}``.
SAMPLES_FILE = "samples.json"

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

    # Read-only properties, so that wrappers (batching, canary, logging) may delegate them.
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def platform(self) -> str: ...

    @property
    def inputs(self) -> list[TensorSpec]: ...

    @property
    def outputs(self) -> list[TensorSpec]: ...

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@runtime_checkable
class ServingChain(Servable, Protocol):
    """What the server asks of a loaded version once it is served: a ``Servable`` that
    also says which version answered (a canary has two), whether the calls into the model
    are recorded below it (a batcher with metrics), and how to let go of it.

    Every link of the chain (batching, request log, canary, in-flight counting) is one;
    ``as_chain`` gives a plain ``Servable`` the defaults, in one place.
    """

    @property
    def observes_batches(self) -> bool: ...

    def predict_versioned(
        self, columns: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray]]: ...

    def close(self) -> None: ...


class ValidColumns(dict[str, np.ndarray]):
    """Request columns that ``validate_columns`` checked against ``specs``: typed as the
    specs say, one length (``rows``). The edge validates once; every link inward that gets
    these for the same specs uses them as they are."""

    __slots__ = ("parts", "rows", "specs")

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        specs: list[TensorSpec],
        rows: int,
        *,
        parts: tuple[int, ...] | None = None,
    ):
        super().__init__(columns)
        self.specs = specs
        self.rows = rows
        #: the rows of each request merged into these (loop batching), in order; else None
        self.parts = parts


def validate_columns(columns: Mapping[str, np.ndarray], specs: list[TensorSpec]) -> ValidColumns:
    """Check request columns against the input specs; return them typed as the specs say.

    Runs before any model code so a bad request gets a 400 that names the input instead
    of a stack trace from deep inside a transform. Columns already validated for the same
    specs (``ValidColumns``) are returned as they are.
    """
    if isinstance(columns, ValidColumns) and (columns.specs is specs or columns.specs == specs):
        return columns
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
    return ValidColumns(out, specs, next(iter(lengths.values()), 0))


def columns_from_matrix(
    matrix: np.ndarray, datatype: str, specs: list[TensorSpec], where: str
) -> dict[str, np.ndarray]:
    """The columns of one ``[n, N]`` tensor whose N columns are the inputs in ``specs``
    order (the layout of MLServer's scikit-learn runtime and of most tritonclient
    examples). Numbers only: a text feature cannot ride in a numeric matrix."""
    names = [spec.name for spec in specs]
    if matrix.ndim != 2 or matrix.shape[1] != len(specs):
        got = list(matrix.shape)
        raise InferenceRequestError(
            f"{where}: shape {got} has {got[-1] if got else 0} values per row; expected"
            f" {len(specs)} (shape [n, {len(specs)}]), the features {names} in this order"
        )
    text = [spec.name for spec in specs if spec.datatype not in NUMERIC_DATATYPES]
    if text:
        raise InferenceRequestError(
            f"{where}: the model has text features {text}, which cannot ride in one"
            f" [n, {len(specs)}] tensor; send one tensor per feature, named {names}"
        )
    if datatype not in NUMERIC_DATATYPES:
        raise InferenceRequestError(
            f"{where}: an [n, {len(specs)}] tensor of the features {names} must hold numbers;"
            f" got datatype {datatype}"
        )
    return {name: matrix[:, j] for j, name in enumerate(names)}


def feature_order(specs: list[TensorSpec]) -> dict[str, Any]:
    """What the model metadata says about the one-tensor layout: the feature order, and
    the ``[n, N]`` tensor it accepts when every feature is a number."""
    names = [spec.name for spec in specs]
    out: dict[str, Any] = {"feature_order": names}
    if all(spec.datatype in NUMERIC_DATATYPES for spec in specs):
        out["matrix_input"] = {"datatype": "FP64", "shape": [-1, len(names)]}
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
            return (
                column.astype(np.float64, copy=False) if spec.datatype.startswith("FP") else column
            )
        bad = [v for v in column if v is not None and not _is_number(v)]
        if bad:
            raise InferenceRequestError(
                f"input '{spec.name}' expects numbers ({spec.datatype}), got {bad[0]!r}"
            )
        return np.array([np.nan if v is None else v for v in column], dtype=np.float64)
    return column


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


class ServableBase:
    """The ``ServingChain`` members a servable that answers by itself has: its own version
    answers, nothing below it records batches, nothing to close."""

    @property
    def observes_batches(self) -> bool:
        return False

    def predict_versioned(
        self: Servable, columns: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray]]:
        return self.version, self.predict(columns)

    def close(self) -> None:
        return None


class PipelineServable(ServableBase):
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
            datatype, self._classes = label_tensor(transform.label_classes)
            self.outputs = [
                TensorSpec("predicted", datatype, [-1]),
                TensorSpec("probabilities", "FP64", [-1, k]),
            ]
        else:
            self.outputs = [TensorSpec("predicted", "FP64", [-1])]

    @classmethod
    def load(
        cls,
        name: str,
        version: str,
        folder: str | Path,
        *,
        model_sha256: str,
        fingerprint: str | None = None,
        trusted_types: Collection[str] | None = None,
    ) -> PipelineServable:
        """Load ``folder/transform`` and ``folder/model`` (checked against its sha256).

        With ``fingerprint`` (the PushedModel's, from the store) the whole folder is checked
        first, before anything in it is deserialised, so an edited transform, or a model.json
        edited to trust more types, is refused as an edited model file is.

        ``trusted_types`` are the skops types trusted beyond lockgate's allowlist as the
        store recorded them (the registry version's); without them, model.json's, and only
        when the fingerprint vouched for it.
        """
        from lockgate.training.pushed_folder import load_pushed_folder

        transform, model = load_pushed_folder(
            folder, model_sha256=model_sha256, fingerprint=fingerprint, trusted_types=trusted_types
        )
        return cls(name, version, transform, model)

    def close(self) -> None:
        """Let the model free what it holds; called once no request uses this version."""
        close = getattr(self.model, "close", None)
        if callable(close):
            close()

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        typed = validate_columns(columns, self.inputs)
        prepared: dict[str, np.ndarray | pa.Array] = {
            spec.name: typed[spec.name]
            if spec.datatype == "FP64"
            else pa.array(typed[spec.name], type=pa.string())
            for spec in self.inputs
        }
        try:
            features = self.transform.apply_columns(prepared)
        except DataError as exc:  # the request's data, not the server, is at fault
            raise InferenceRequestError(f"cannot transform the request: {exc}") from exc
        predicted, proba = self.model.predict_with_proba(features)  # one pass of the model
        if not self.classification:
            return {"predicted": np.asarray(predicted, dtype=np.float64)}
        indices = np.asarray(predicted).astype(np.int64, copy=False)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self._classes)):
            raise ModelError(
                f"model '{self.name}' version {self.version} predicted a class index outside"
                f" 0..{len(self._classes) - 1}"
            )
        outputs = {"predicted": self._classes[indices]}
        if proba is not None:
            outputs["probabilities"] = np.asarray(proba, dtype=np.float64)
        return outputs


def label_tensor(classes: list[Any]) -> tuple[str, np.ndarray]:
    """The V2 datatype of a classifier's ``predicted`` output and its classes as an array
    of that type: a label keeps its type when served (integer classes answer INT64, bool
    BOOL, anything else BYTES as str)."""
    if classes and all(isinstance(c, bool) for c in classes):
        return "BOOL", np.array(classes, dtype=np.bool_)
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        try:
            return "INT64", np.array(classes, dtype=np.int64)
        except OverflowError:  # past 64 bits: served as text rather than wrapped round
            pass
    if classes and all(isinstance(c, float) for c in classes):
        return "FP64", np.array(classes, dtype=np.float64)
    return "BYTES", np.array([str(c) for c in classes], dtype=object)


def typical_rows(transform: Any) -> dict[str, list[Any]]:
    """Three requests built from what the transform learned: typical values, one spread
    value, and all missing. Used to warm a model up when no samples were recorded."""
    rows: dict[str, list[Any]] = {}
    for column in getattr(transform, "columns", ()):
        if column.kind == "numeric":
            rows[column.name] = [column.mean, column.mean + column.std, None]
        elif column.kind == "bool":  # a request sends bools as text
            rows[column.name] = ["true", "false", None]
        else:
            vocabulary = [v for v in column.vocabulary if isinstance(v, str)][:2] or [""]
            rows[column.name] = [vocabulary[0], vocabulary[-1], None]
    for name, kind in transform.features.items():  # transforms without per-column stats
        rows.setdefault(name, _typical.get(kind, ["", "", None]))
    return rows


_typical: dict[str, list[Any]] = {
    "numeric": [0.0, 1.0, None],
    "timestamp": ["2000-01-01T00:00:00", "2024-06-30T12:30:00", None],
}


def write_samples(folder: str | Path, rows: Mapping[str, list[Any]]) -> Path:
    """Store warm-up requests next to a pushed model (``samples.json``)."""
    path = Path(folder) / SAMPLES_FILE
    path.write_text(json.dumps({"inputs": dict(rows)}, indent=1) + "\n", encoding="utf-8")
    return path


def read_samples(folder: str | Path, transform: Any) -> dict[str, np.ndarray]:
    """The recorded warm-up requests of a pushed model, or typical rows from its transform."""
    path = Path(folder) / SAMPLES_FILE
    rows: Mapping[str, list[Any]]
    if path.exists():
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["inputs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is not a valid samples file: {exc}", path=str(path)) from exc
    else:
        rows = typical_rows(transform)
    return {name: np.array(values, dtype=object) for name, values in rows.items()}


def as_chain(servable: Servable) -> ServingChain:
    """``servable`` as a link of the serving chain: itself when it is one, else wrapped
    with the defaults (``ServableBase``'s), closing it when it has a ``close``.

    Decided on the class, not the instance: an isinstance check against the protocol would
    read every property of the servable (its tensor specs, a wrapper's whole chain)."""
    if all(hasattr(type(servable), member) for member in _CHAIN_MEMBERS):
        return cast(ServingChain, servable)
    return _Plain(servable)


_CHAIN_MEMBERS = ("observes_batches", "predict_versioned", "close")


class ServableWrapper(ServableBase):
    """Base of servables that wrap another (batching, logging, in-flight counting): the
    name, version, platform and tensor specs are the wrapped servable's, and so are
    ``observes_batches`` and ``close`` unless the wrapper has its own."""

    inner: ServingChain

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def version(self) -> str:
        return self.inner.version

    @property
    def platform(self) -> str:
        return self.inner.platform

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.inner.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.inner.outputs

    @property
    def observes_batches(self) -> bool:
        """Whether the calls into the model are recorded below (a batcher with metrics)."""
        return self.inner.observes_batches

    def close(self) -> None:
        self.inner.close()


class _Plain(ServableBase):
    """A servable that implements ``Servable`` only (a test's, a user's own), with the
    chain's defaults."""

    def __init__(self, inner: Servable) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def version(self) -> str:
        return self.inner.version

    @property
    def platform(self) -> str:
        return self.inner.platform

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.inner.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.inner.outputs

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inner.predict(columns)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)  # optional for a plain Servable
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:  # anything else the servable offers
        return getattr(self.inner, name)
