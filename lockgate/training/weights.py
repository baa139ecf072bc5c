"""Row weights for ``train``: a weight column of the train split, class weights, or both
(multiplied). Every framework that trains takes them as ``sample_weight``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from lockgate.errors import ColumnNotFoundError, ConfigError, DataError, did_you_mean


def row_weights(
    table: pa.Table,
    y: np.ndarray,
    *,
    column: str | None,
    class_weight: str | dict[str, float] | None,
    classes: list[Any] | None,
    features: list[str],
) -> np.ndarray | None:
    """One non-negative weight per row of ``table`` (whose encoded labels are ``y``), or
    None when neither a column nor class weights are asked for."""
    weights = None
    if column is not None:
        weights = _column_weights(table, column, features)
    if class_weight is not None:
        by_class = _class_weights(y, class_weight, classes)
        weights = by_class if weights is None else weights * by_class
    return weights


def _column_weights(table: pa.Table, column: str, features: list[str]) -> np.ndarray:
    if column not in table.column_names:
        raise ColumnNotFoundError(column, table.column_names, where="the train split (weights)")
    if column in features:
        raise ConfigError(
            f"sample_weight_column '{column}' is also a feature of the transform; a model"
            " would learn from its own weights",
            hint=f"leave it out: fit_transform(..., features=[...] without '{column}')",
        )
    values = table.column(column)
    if not pa.types.is_integer(values.type) and not pa.types.is_floating(values.type):
        raise DataError(f"sample_weight_column '{column}' must be numeric; got {values.type}")
    if values.null_count:
        raise DataError(
            f"sample_weight_column '{column}' has {values.null_count} missing values in the"
            " train split; every row needs a weight"
        )
    weights = values.to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise DataError(
            f"sample_weight_column '{column}' must hold finite weights >= 0, not all 0;"
            f" got min {weights.min()} and max {weights.max()}"
        )
    return weights


def _class_weights(
    y: np.ndarray, class_weight: str | dict[str, float], classes: list[Any] | None
) -> np.ndarray:
    if classes is None:
        raise ConfigError("class_weight applies to classification; this label is regression")
    y = np.asarray(y, dtype=np.int64)
    if class_weight == "balanced":
        counts = np.bincount(y, minlength=len(classes)).astype(np.float64)
        per_class = np.where(counts > 0, len(y) / (len(classes) * np.maximum(counts, 1)), 0.0)
        return per_class[y]
    if not isinstance(class_weight, dict):
        raise ConfigError(
            f"class_weight must be 'balanced' or {{class: weight}}; got {class_weight!r}"
        )
    names = [str(c) for c in classes]
    per_class = np.ones(len(classes))
    for key, weight in class_weight.items():
        if str(key) not in names:
            raise ConfigError(
                f"class_weight names class {key!r}; the label's classes are {names}"
                f"{did_you_mean(str(key), names)}"
            )
        if not isinstance(weight, int | float) or weight < 0:
            raise ConfigError(f"class_weight for {key!r} must be a number >= 0; got {weight!r}")
        per_class[names.index(str(key))] = float(weight)
    return per_class[y]
