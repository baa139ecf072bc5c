"""The few metrics tune optimises, and one-feature slices of them, as plain numbers.

Both are thin calls into the engine (``evaluation/engine.py``), whose figures equal
scikit-learn's.

A metric that is undefined for the rows given (r2 on one row, anything on none) is None
rather than NaN, so that JSON, the UI and the blessing gate see "not available".
"""

from __future__ import annotations

import numpy as np

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
