"""The few metrics tune optimises, and one-feature slices of them, as plain numbers.

Both are thin calls into the engine (``evaluation/engine.py``), whose figures equal
scikit-learn's.

A metric that is undefined for the rows given (r2 on one row, anything on none) is None
rather than NaN, so that JSON, the UI and the blessing gate see "not available".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError
from lockgate.evaluation.metric_library import check_task

Metrics = dict[str, float | None]
_TUNE_METRICS = {"classification": ("accuracy", "f1_macro"), "regression": ("mae", "rmse", "r2")}


def compute_metrics(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None = None,
    n_classes: int | None = None,
) -> Metrics:
    """accuracy, f1_macro, log_loss (with proba) or mae, rmse, r2; plus example_count.

    The engine's point estimates (``engine.point_estimates``), for tune and the slices below.
    """
    from lockgate.evaluation.engine import point_estimates

    check_task(task)
    names = _TUNE_METRICS[task]
    if task == "classification" and proba is not None:
        names = (*names, "log_loss")
    result: Metrics = dict(point_estimates(task, y_true, y_pred, proba, names, n_classes))
    result["example_count"] = float(np.asarray(y_true).shape[0])
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
