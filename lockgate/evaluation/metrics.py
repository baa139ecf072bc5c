"""Evaluation metrics, overall and per slice, computed with scikit-learn's definitions.

A metric that is undefined for the rows given (r2 on one row, anything on none) is None
rather than NaN, so that JSON, the UI and the blessing gate see "not available".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import ConfigError, DataError

Metrics = dict[str, float | None]


def compute_metrics(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None = None,
    n_classes: int | None = None,
) -> Metrics:
    """accuracy, f1_macro, log_loss (with proba) or mae, rmse, r2; plus example_count."""
    from sklearn import metrics

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape[0] != y_pred.shape[0]:
        raise DataError(f"y_true has {y_true.shape[0]} rows but y_pred has {y_pred.shape[0]}")
    count = int(y_true.shape[0])
    if task == "classification":
        result: Metrics = {"accuracy": None, "f1_macro": None}
        if proba is not None:
            result["log_loss"] = None
        if count:
            result["accuracy"] = float(metrics.accuracy_score(y_true, y_pred))
            result["f1_macro"] = float(
                metrics.f1_score(y_true, y_pred, average="macro", zero_division=0.0)
            )
            if proba is not None:
                proba = np.asarray(proba, dtype=np.float64)
                labels = list(range(n_classes if n_classes is not None else proba.shape[1]))
                result["log_loss"] = float(metrics.log_loss(y_true, proba, labels=labels))
    elif task == "regression":
        result = {"mae": None, "rmse": None, "r2": None}
        if count:
            result["mae"] = float(metrics.mean_absolute_error(y_true, y_pred))
            result["rmse"] = float(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))
        if count >= 2:
            result["r2"] = float(metrics.r2_score(y_true, y_pred))
    else:
        raise ConfigError(f"task must be 'classification' or 'regression'; got {task!r}")
    result["example_count"] = float(count)
    return result


def sliced_metrics(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    slice_values: dict[str, np.ndarray | list[Any] | pa.Array | pa.ChunkedArray],
    n_classes: int | None,
) -> list[dict[str, Any]]:
    """One entry per (feature, value), missing values as the slice ``value: None``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out: list[dict[str, Any]] = []
    for feature, values in slice_values.items():
        if isinstance(values, pa.ChunkedArray):
            array = values.combine_chunks()
        elif isinstance(values, pa.Array):
            array = values
        else:
            array = pa.array(np.asarray(values, dtype=object), from_pandas=True)
        if pa.types.is_floating(array.type):  # NaN is missing too, as in pandas
            array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
        if len(array) != y_true.shape[0]:
            raise DataError(
                f"slice feature '{feature}' has {len(array)} values for {y_true.shape[0]} rows"
            )
        encoded = pc.dictionary_encode(array)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        uniques = encoded.dictionary.to_pylist()
        order = sorted(range(len(uniques)), key=lambda i: uniques[i])
        groups: list[tuple[Any, int]] = [(uniques[i], i) for i in order]
        if (codes == -1).any():
            groups.append((None, -1))
        for value, code in groups:
            mask = codes == code
            out.append(
                {
                    "feature": feature,
                    "value": value,
                    "metrics": compute_metrics(
                        task,
                        y_true[mask],
                        y_pred[mask],
                        None if proba is None else np.asarray(proba)[mask],
                        n_classes,
                    ),
                }
            )
    return out
