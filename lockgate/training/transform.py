"""The transform graph: preprocessing fitted on the train split, saved as plain JSON.

The trainer, the evaluator and the model server all call :meth:`TransformGraph.apply`,
so a feature is encoded the same way in training and in serving (no skew). The artifact
is ``transform.json``: readable, diffable and safe to load (no pickle)::

    transform/
      transform.json    {"format_version": 1, "label": ..., "task": ..., "features": [...]}

Format 1 is the default preprocessing (numbers mean-imputed and z-scored, text and bools
one-hot plus ``<other>``), written whenever no ``transforms=`` are given. Format 2 adds the
transform library's fitted steps (``lockgate.transforms``)::

    {"format_version": 2, "label": ..., "task": ..., "label_classes": [...],
     "features": [...],                       # the defaults, as in format 1
     "inputs": {"income": "numeric", ...},    # raw columns the steps read (served as such)
     "steps": [{"op": "zscore", "input": "income", "output": "income",
                "fitted": {"mean": 41.2, "std": 9.3}}, ...],
     "outputs": ["income", ...],              # step outputs in the matrix, after the defaults
     "feature_names_out": [...]}

Both are read; a format 2 file names each ``row_function`` by ``module:qualname`` with its
source fingerprint, checked when the file is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import ColumnNotFoundError, ConfigError, DataError, ModelError

FORMAT_VERSION = 1
#: The format of a graph with transform library steps.
FORMAT_VERSION_LIBRARY = 2
FILE_NAME = "transform.json"
OOV = "<other>"
TASKS = ("classification", "regression")
#: An integer label with at most this many distinct values in the train split is taken as
#: class ids (0/1/2, as most public data sets code classes); more, and it is a quantity.
MAX_INTEGER_CLASSES = 50

Kind = Literal["numeric", "string", "bool"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class FeatureTransform:
    """How one input column becomes output columns; the statistics come from train only."""

    name: str
    kind: Kind
    mean: float = 0.0
    std: float = 1.0
    vocabulary: tuple[Any, ...] = ()

    @property
    def names_out(self) -> list[str]:
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}={v}" for v in self.vocabulary] + [f"{self.name}={OOV}"]

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "numeric":
            return {"name": self.name, "kind": self.kind, "mean": self.mean, "std": self.std}
        return {"name": self.name, "kind": self.kind, "vocabulary": list(self.vocabulary)}


def drop_missing_label(table: pa.Table, label: str) -> pa.Table:
    """Drop the rows whose label is null (or NaN): they can neither train nor evaluate."""
    column = _column(table, label, where="the table (label)")
    valid = pc.is_valid(column)
    if pa.types.is_floating(column.type):
        valid = pc.and_(valid, pc.invert(pc.is_nan(column)))
    if pc.all(valid).as_py() is not False:  # nothing to drop: no copy of the whole table
        return table
    return table.filter(pc.fill_null(valid, False))


@dataclass(frozen=True)
class TransformGraph:
    """A fitted preprocessing graph: numeric impute+standardise, categorical one-hot + OOV."""

    label: str
    task: Task
    columns: tuple[FeatureTransform, ...]
    label_classes: list[Any] | None = None
    task_reason: str = ""
    format_version: int = field(default=FORMAT_VERSION)
    #: Format 2: the fitted library steps, the raw columns they read and what they emit.
    steps: tuple[dict[str, Any], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    emitted: tuple[str, ...] = ()
    #: row_function name -> the function, resolved when the graph is fitted or loaded.
    functions: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def _numeric_scaling(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The means and spreads of a graph of numeric columns only (no one-hot, no library
        steps), whose requests are then standardised as one matrix; else None."""
        if self.steps or not self.columns or any(c.kind != "numeric" for c in self.columns):
            return None
        return np.array([c.mean for c in self.columns]), np.array([c.std for c in self.columns])

    # ---- fitting -------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        table: pa.Table,
        *,
        label: str,
        features: list[str] | None = None,
        task: str | None = None,
    ) -> TransformGraph:
        """Fit on ``table``, which must be the train split only: eval statistics never leak.

        ``task`` None decides it from the label (see ``decide_task``); the reason is kept
        in ``task_reason``."""
        label_column = _column(table, label, where="the training table (label)")
        if features is None:
            features = [name for name in table.column_names if name != label]
        if label in features:
            raise ConfigError(f"the label '{label}' cannot also be a feature")
        if not features:
            raise ConfigError("no features to transform; the table has only the label column")
        columns = tuple(
            _fit_feature(name, _column(table, name, where="the training table"))
            for name in features
        )
        resolved, reason, classes = task_and_classes(label, label_column, task)
        return cls(
            label=label,
            task=resolved,
            columns=columns,
            label_classes=classes,
            task_reason=reason,
        )

    # ---- properties ----------------------------------------------------------------
    @property
    def features(self) -> dict[str, str]:
        """Input feature name -> kind ("numeric", "string", "bool", "timestamp")."""
        return {c.name: c.kind for c in self.columns} | dict(self.inputs)

    @property
    def feature_names_out(self) -> list[str]:
        names = [name for c in self.columns for name in c.names_out]
        if self.steps:
            empty = {name: _empty(kind) for name, kind in self.inputs}
            names += self._run_steps(empty, where="")[1]
        return names

    def _run_steps(self, columns: Mapping[str, Any], *, where: str) -> tuple[np.ndarray, list[str]]:
        """The library steps' matrix and column names, from raw columns by name."""
        from lockgate.training.transform_steps import raw_value, run_steps

        env = {}
        for name, kind in self.inputs:
            if name not in columns:
                raise ColumnNotFoundError(name, list(columns), where=where)
            env[name] = raw_value(name, kind, columns[name])
        return run_steps(self.steps, env, self.emitted, self.functions)

    # ---- applying ------------------------------------------------------------------
    def apply(self, table: pa.Table) -> np.ndarray:
        """Encode ``table`` into a float64 matrix; extra columns are ignored."""
        library = None
        if self.steps:
            columns = {name: table.column(name) for name in table.column_names}
            library = self._run_steps(columns, where="the input table")[0]
        widths = [len(spec.names_out) for spec in self.columns]
        extra = 0 if library is None else library.shape[1]
        # Fortran order: each output column is written once, contiguously, in place
        out = np.empty((table.num_rows, sum(widths) + extra), dtype=np.float64, order="F")
        start = 0
        for spec, width in zip(self.columns, widths, strict=True):
            column = _column(table, spec.name)
            if spec.kind == "numeric":
                _standardise_into(spec, _to_float(spec.name, column), out[:, start])
            else:
                out[:, start : start + width] = _apply_feature(spec, column)
            start += width
        if library is not None:
            out[:, start:] = library
        return out

    def apply_columns(self, columns: Mapping[str, np.ndarray | pa.Array]) -> np.ndarray:
        """``apply`` for columns one by one, as a request brings them: float64 NumPy arrays
        (NaN for missing) go to numeric features without an Arrow round trip (the server's
        hot path); anything else goes through Arrow as in ``apply``."""
        scaling = self._numeric_scaling
        if scaling is not None:
            given = [columns.get(spec.name) for spec in self.columns]
            arrays = [v for v in given if isinstance(v, np.ndarray)]
            if len(arrays) == len(given) and all(
                v.dtype == np.float64 and v.ndim == 1 for v in arrays
            ):  # one matrix, four NumPy calls, the same values as column by column
                means, spreads = scaling
                matrix = np.column_stack(arrays)
                return (np.where(np.isnan(matrix), means, matrix) - means) / spreads
        parts = []
        for spec in self.columns:
            if spec.name not in columns:
                raise ColumnNotFoundError(spec.name, list(columns), where="the request")
            values = columns[spec.name]
            if (
                spec.kind == "numeric"
                and isinstance(values, np.ndarray)
                and values.dtype == np.float64
            ):
                parts.append(_standardise(spec, values))
            else:
                parts.append(_apply_feature(spec, pa.chunked_array([values])))
        if self.steps:
            parts.append(self._run_steps(columns, where="the request")[0])
        if not parts:
            return np.empty((0, 0))
        return np.column_stack(parts).astype(np.float64, copy=False)

    def encode_label(self, table: pa.Table) -> np.ndarray:
        """Class indices (int64) for classification, float64 values for regression."""
        column = _plain(_column(table, self.label, where="the table (label)"))
        if column.null_count:
            raise DataError(
                f"label '{self.label}' has {column.null_count} missing value(s);"
                " drop them first with drop_missing_label(table, label)"
            )
        if self.task == "regression":
            return _to_float(self.label, column)
        assert self.label_classes is not None
        value_set = pa.array(self.label_classes)
        try:
            column = pc.cast(column, value_set.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"label '{self.label}' expected values like {self.label_classes[:5]},"
                f" got type {column.type}"
            ) from exc
        indices = pc.index_in(column, value_set=value_set)
        if indices.null_count:
            unknown = pc.unique(pc.filter(column, pc.is_null(indices))).to_pylist()
            raise DataError(
                f"label '{self.label}' has value(s) {unknown[:10]} not seen in training;"
                f" known classes are {self.label_classes}"
            )
        return indices.to_numpy().astype(np.int64)

    def decode_label(self, indices: np.ndarray | list[int]) -> list[Any]:
        """Turn class indices back into label values (regression: values as floats)."""
        values = np.asarray(indices)
        if self.task == "regression":
            return values.astype(np.float64).tolist()
        assert self.label_classes is not None
        classes = np.asarray(self.label_classes, dtype=object)
        if values.size and (values.min() < 0 or values.max() >= len(classes)):
            raise DataError(
                f"class index out of range 0..{len(classes) - 1} for label '{self.label}'"
            )
        return classes[values.astype(np.int64)].tolist()

    # ---- persistence ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "label": self.label,
            "task": self.task,
            "label_classes": self.label_classes,
            "task_reason": self.task_reason,
            "features": [c.to_dict() for c in self.columns],
        }
        if self.format_version >= FORMAT_VERSION_LIBRARY:
            out["inputs"] = dict(self.inputs)
            out["steps"] = [dict(step) for step in self.steps]
            out["outputs"] = list(self.emitted)
        out["feature_names_out"] = self.feature_names_out
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformGraph:
        version = data.get("format_version")
        if version not in (FORMAT_VERSION, FORMAT_VERSION_LIBRARY):
            raise ModelError(
                f"transform format_version {version!r} is not supported"
                f" (this lockgate reads {FORMAT_VERSION} and {FORMAT_VERSION_LIBRARY})"
            )
        try:
            columns = tuple(
                FeatureTransform(
                    name=f["name"],
                    kind=f["kind"],
                    mean=float(f.get("mean", 0.0)),
                    std=float(f.get("std", 1.0)),
                    vocabulary=tuple(f.get("vocabulary", ())),
                )
                for f in data["features"]
            )
            library: dict[str, Any] = {}
            if version == FORMAT_VERSION_LIBRARY:
                library = _library_fields(data)
            return cls(
                label=data["label"],
                task=data["task"],
                columns=columns,
                label_classes=data.get("label_classes"),
                task_reason=str(data.get("task_reason", "")),
                format_version=version,
                **library,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"transform description is incomplete or malformed: {exc}") from exc

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TransformGraph:
        path = Path(directory) / FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"no {FILE_NAME} in {directory}", path=str(path)) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path} is not valid JSON: {exc}", path=str(path)) from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path} does not hold a JSON object", path=str(path))
        try:
            return cls.from_dict(data)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc.message}", path=str(path), hint=exc.hint) from exc


def _library_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The steps of a format 2 file, checked; each row_function imported and fingerprinted."""
    from lockgate.errors import LockgateError
    from lockgate.training.transform_steps import RAW_KINDS
    from lockgate.transforms import spec_from_dict

    inputs = tuple((str(k), str(v)) for k, v in dict(data["inputs"]).items())
    for name, kind in inputs:
        if kind not in RAW_KINDS:
            raise ModelError(f"input '{name}' has unknown kind {kind!r}")
    steps = []
    for step in data["steps"]:
        try:
            spec_from_dict({k: v for k, v in step.items() if k != "fitted"})
        except LockgateError as exc:
            raise ModelError(f"step {step!r} is malformed: {exc}") from exc
        steps.append(dict(step))
    functions = {s["function"]: _import_checked(s) for s in steps if s["op"] == "row_function"}
    return {
        "steps": tuple(steps),
        "inputs": inputs,
        "emitted": tuple(str(n) for n in data["outputs"]),
        "functions": functions,
    }


def _import_checked(step: dict[str, Any]) -> Any:
    """The row_function the step names, refused when absent or not the code it was fitted with."""
    from lockgate.core.project_code import source_fingerprint
    from lockgate.transforms import resolve_function

    name = step["function"]
    fn = resolve_function(name)
    if fn is None:
        raise ModelError(
            f"row_function '{name}' cannot be imported, so the transform cannot be applied",
            hint=f"install or put on PYTHONPATH the module {name.partition(':')[0]!r} (the"
            " project folder, for a function of the project), then load again",
        )
    got = source_fingerprint(fn)
    if got != step["fingerprint"]:
        raise ModelError(
            f"row_function '{name}' is not the code the transform was fitted with"
            f" (fingerprint {got[:12]}, fitted with {str(step['fingerprint'])[:12]})",
            hint="run the pipeline again to fit and push a transform with this code, or"
            " restore the function as it was",
        )
    return fn


def _empty(kind: str) -> Any:
    """A zero-row raw column, to name a graph's outputs without data."""
    if kind == "numeric":
        return np.zeros(0)
    return pa.array([], pa.timestamp("us") if kind == "timestamp" else pa.string())


# ---- column helpers ---------------------------------------------------------------------
def _column(table: pa.Table, name: str, *, where: str = "the input table") -> pa.ChunkedArray:
    if name not in table.column_names:
        raise ColumnNotFoundError(name, table.column_names, where=where)
    return table.column(name)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded columns (e.g. from Parquet) behave as their value type."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _kind_of(arrow_type: pa.DataType) -> Kind | None:
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "numeric"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    return None


def task_and_classes(
    label: str, column: pa.ChunkedArray, task: str | None
) -> tuple[Task, str, list[Any] | None]:
    """(task, why, the sorted classes or None) of a label column of the train split; a
    classification label needs two classes at least."""
    resolved, reason = decide_task(label, column, task)
    if resolved != "classification":
        return resolved, reason, None
    classes = sorted(pc.unique(column.drop_null()).to_pylist())
    if len(classes) < 2:
        raise DataError(
            f"label '{label}' has {len(classes)} distinct value(s) {classes} in the"
            " training data; classification needs at least 2"
        )
    return resolved, reason, classes


def decide_task(label: str, column: pa.ChunkedArray, task: str | None = None) -> tuple[Task, str]:
    """The task for a label column, and why (a phrase for ``Task: <task> — <why>``).

    A string or bool label is classification, a float label regression, an integer label
    classification when it has at most ``MAX_INTEGER_CLASSES`` distinct values (class ids)
    and regression beyond (a count or an amount). ``task`` overrides the decision."""
    column = _plain(column)
    kind = _kind_of(column.type)
    if kind is None:
        raise DataError(f"label '{label}' has type {column.type}; expected string, bool or number")
    if pa.types.is_integer(column.type):
        distinct = len(pc.unique(column.drop_null()))
        few = distinct <= MAX_INTEGER_CLASSES
        bound = f"at most {MAX_INTEGER_CLASSES}" if few else f"over {MAX_INTEGER_CLASSES}"
        about = f"label '{label}' is integer with {distinct} distinct values, {bound}"
        decided: Task = "classification" if few else "regression"
    elif kind == "numeric":
        about, decided = f"label '{label}' is {column.type}", "regression"
    else:
        about, decided = f"label '{label}' is {kind}", "classification"
    if task is None:
        return decided, f"{about}; task= overrides"
    if task not in TASKS:
        raise ConfigError(f"task must be one of {list(TASKS)} or None; got {task!r}")
    if task == "regression" and kind != "numeric":
        raise ConfigError(f"regression needs a numeric label; '{label}' is {column.type}")
    chosen: Task = "classification" if task == "classification" else "regression"
    return chosen, f"set by task=; {about}"


def _fit_feature(name: str, column: pa.ChunkedArray) -> FeatureTransform:
    column = _plain(column)
    kind = _kind_of(column.type)
    if kind is None:
        raise DataError(
            f"feature '{name}' has type {column.type}; expected a number, string or bool"
            " column (select features explicitly to leave it out)"
        )
    if kind == "numeric":
        values = _to_float(name, column)
        observed = values[~np.isnan(values)]
        mean = float(observed.mean()) if observed.size else 0.0
        std = float(observed.std()) if observed.size else 1.0
        return FeatureTransform(name, "numeric", mean=mean, std=std if std > 0 else 1.0)
    counts = pc.value_counts(column.drop_null()).flatten()
    values_list, freq = counts[0].to_pylist(), counts[1].to_numpy()
    order = sorted(range(len(values_list)), key=lambda i: (-int(freq[i]), values_list[i]))
    return FeatureTransform(name, kind, vocabulary=tuple(values_list[i] for i in order))


def _to_float(name: str, column: pa.ChunkedArray) -> np.ndarray:
    """Float64 values with NaN for missing; ints are accepted where floats were fitted."""
    column = _plain(column)
    if not (pa.types.is_null(column.type) or _kind_of(column.type) == "numeric"):
        raise DataError(
            f"column '{name}' expected numeric values (int or float), got {column.type}"
            f" (e.g. {_sample(column)!r})"
        )
    return np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )


def _sample(column: pa.ChunkedArray) -> Any:
    present = column.drop_null()
    return present[0].as_py() if len(present) else None


def _standardise_into(spec: FeatureTransform, values: np.ndarray, out: np.ndarray) -> None:
    """``_standardise`` written into ``out`` without temporaries: the same values, bit for
    bit (a missing value becomes the mean, and (mean - mean) / std is 0.0)."""
    np.subtract(values, spec.mean, out=out)
    np.divide(out, spec.std, out=out)
    np.copyto(out, 0.0, where=np.isnan(out))


def _standardise(spec: FeatureTransform, values: np.ndarray) -> np.ndarray:
    """Missing values become the training mean, then everything is scaled to unit spread."""
    values = np.where(np.isnan(values), spec.mean, values)
    return (values - spec.mean) / spec.std


def _apply_feature(spec: FeatureTransform, column: pa.ChunkedArray) -> np.ndarray:
    if spec.kind == "numeric":
        return _standardise(spec, _to_float(spec.name, column))
    column = _plain(column)
    if spec.kind == "bool" and _kind_of(column.type) == "string":  # a request's "true"/"false"
        try:
            column = pc.cast(column, pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"column '{spec.name}' expected bool values (true/false), got {_sample(column)!r}"
            ) from exc
    if not (pa.types.is_null(column.type) or _kind_of(column.type) == spec.kind):
        raise DataError(
            f"column '{spec.name}' expected {spec.kind} values, got {column.type}"
            f" (e.g. {_sample(column)!r})"
        )
    width = len(spec.vocabulary) + 1
    n = len(column)
    if pa.types.is_null(column.type) or not spec.vocabulary:
        index = np.full(n, width - 1)
    else:
        value_set = pa.array(list(spec.vocabulary), type=column.type)
        found = pc.index_in(column, value_set=value_set)
        index = pc.fill_null(found, width - 1).to_numpy().astype(np.int64)
    out = np.zeros((n, width))
    out[np.arange(n), index] = 1.0
    return out
