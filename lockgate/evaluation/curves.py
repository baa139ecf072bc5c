"""What the evaluation report draws, as plain JSON-able data: ROC and precision-recall
curves, calibration bins and the confusion matrix of a classifier, residuals of a regressor.

Computed once, by the ``evaluate`` component, for the candidate and for the baseline on the
same eval rows, and stored in ``evaluation.json`` (``"curves"``), so that the report can be
drawn again later without the models. Curves come from scikit-learn's ``roc_curve`` and
``precision_recall_curve`` and are thinned to at most ``max_points`` points (the first and
the last kept); numbers are floats, and what is undefined (an infinite threshold, an empty
bin) is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, DataError

__all__ = ["MAX_CURVE_POINTS", "MAX_RESIDUAL_POINTS", "compute_curves"]

MAX_CURVE_POINTS = 200
MAX_RESIDUAL_POINTS = 500
CALIBRATION_BINS = 10
RESIDUAL_QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
_HISTOGRAM_BINS = 30


def compute_curves(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray | None,
    proba: np.ndarray | None,
    class_names: Sequence[str] | None = None,
    decision_threshold: float = 0.5,
    *,
    max_points: int = MAX_CURVE_POINTS,
) -> dict[str, Any]:
    """The report's data for one model on the eval rows.

    ``y_true`` and ``y_pred`` are class indices ``0..k-1`` (classification) or values;
    ``proba`` is ``(n, k)`` for a classifier (None for a model without probabilities: then
    only the confusion matrix). A binary classifier's predicted class is
    ``proba[:, 1] >= decision_threshold``, as the metrics take it.
    """
    y_true = np.asarray(y_true)
    if task == "classification":
        return _classification(y_true, y_pred, proba, class_names, decision_threshold, max_points)
    if task == "regression":
        if y_pred is None:
            raise DataError("regression curves need y_pred; got None")
        return _regression(y_true, np.asarray(y_pred, dtype=np.float64))
    raise ConfigError(f"task must be 'classification' or 'regression'; got {task!r}")


def _floats(values: Any) -> list[float | None]:
    """JSON-able floats: NaN and infinities become None."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` points, evenly spread, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(max_points, 2)).round().astype(np.int64))


def _classification(
    y_true: np.ndarray,
    y_pred: np.ndarray | None,
    proba: np.ndarray | None,
    class_names: Sequence[str] | None,
    decision_threshold: float,
    max_points: int,
) -> dict[str, Any]:
    y_true = y_true.astype(np.int64)
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[0] != y_true.shape[0]:
            raise DataError(
                f"proba must be (n_rows, n_classes) = ({y_true.shape[0]}, k); got {proba.shape}"
            )
    n_classes = (
        len(class_names)
        if class_names is not None
        else proba.shape[1]
        if proba is not None
        else int(max(y_true.max(initial=-1), -1 if y_pred is None else np.max(y_pred, initial=-1)))
        + 1
    )
    if proba is not None and proba.shape[1] != n_classes:
        raise DataError(f"proba has {proba.shape[1]} columns for {n_classes} classes")
    names = (
        [str(c) for c in class_names]
        if class_names is not None
        else [str(i) for i in range(n_classes)]
    )
    binary = n_classes == 2
    if binary and proba is not None:
        predicted = (proba[:, 1] >= decision_threshold).astype(np.int64)
    elif y_pred is not None:
        predicted = np.asarray(y_pred).astype(np.int64)
    elif proba is not None:
        predicted = proba.argmax(axis=1)
    else:
        raise DataError("classification curves need y_pred or proba; got neither")
    if predicted.shape[0] != y_true.shape[0]:
        raise DataError(f"y_true has {y_true.shape[0]} rows but y_pred has {predicted.shape[0]}")
    out: dict[str, Any] = {
        "task": "classification",
        "classes": names,
        "example_count": int(y_true.shape[0]),
        "decision_threshold": float(decision_threshold) if binary else None,
        "roc": [],
        "pr": [],
        "calibration": None,
        "confusion_matrix": _confusion(y_true, predicted, names),
    }
    if proba is None:
        return out
    positives = [1] if binary else list(range(n_classes))
    for k in positives:
        truth, score = y_true == k, proba[:, k]
        threshold = decision_threshold if binary else None
        out["roc"].append(_roc(truth, score, names[k], threshold, max_points))
        out["pr"].append(_pr(truth, score, names[k], threshold, max_points))
    out["calibration"] = _calibration(y_true, proba, binary)
    return out


def _one_class_note(truth: np.ndarray) -> str | None:
    n_pos = int(truth.sum())
    if n_pos == 0:
        return "undefined: no example of this class"
    if n_pos == truth.shape[0]:
        return "undefined: every example is of this class"
    return None


def _roc(
    truth: np.ndarray, score: np.ndarray, name: str, threshold: float | None, max_points: int
) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score, roc_curve

    curve: dict[str, Any] = {"class": name, "fpr": [], "tpr": [], "thresholds": [], "auc": None}
    curve["note"] = note = _one_class_note(truth)
    if note is not None:
        return curve
    fpr, tpr, thresholds = roc_curve(truth, score)
    keep = _thin(fpr.shape[0], max_points)
    curve.update(
        fpr=_floats(fpr[keep]),
        tpr=_floats(tpr[keep]),
        thresholds=_floats(thresholds[keep]),
        auc=float(roc_auc_score(truth, score)),
    )
    if threshold is not None:  # where the model decides: the point its predictions sit on
        chosen = score >= threshold
        curve["operating_point"] = {
            "fpr": float(chosen[~truth].mean()),
            "tpr": float(chosen[truth].mean()),
        }
    return curve


def _pr(
    truth: np.ndarray, score: np.ndarray, name: str, threshold: float | None, max_points: int
) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    curve: dict[str, Any] = {
        "class": name,
        "precision": [],
        "recall": [],
        "thresholds": [],
        "average_precision": None,
        "prevalence": float(truth.mean()) if truth.shape[0] else None,
    }
    curve["note"] = note = _one_class_note(truth)
    if note is not None:
        return curve
    precision, recall, thresholds = precision_recall_curve(truth, score)
    keep = _thin(precision.shape[0], max_points)
    # precision and recall have one point more than thresholds (the last, recall 0)
    padded = np.append(thresholds, np.nan)
    curve.update(
        precision=_floats(precision[keep]),
        recall=_floats(recall[keep]),
        thresholds=_floats(padded[keep]),
        average_precision=float(average_precision_score(truth, score)),
    )
    if threshold is not None:
        chosen = score >= threshold
        curve["operating_point"] = {
            "precision": float(truth[chosen].mean()) if chosen.any() else None,
            "recall": float(chosen[truth].mean()),
        }
    return curve


def _calibration(y_true: np.ndarray, proba: np.ndarray, binary: bool) -> dict[str, Any]:
    """Reliability bins: binary, of the class-1 probability against the share of class 1;
    multiclass, of the top class's probability against how often the top class is right.
    Bins as scikit-learn's ``calibration_curve(strategy="uniform")``."""
    if binary:
        confidence, hit = proba[:, 1], (y_true == 1)
        of = "probability of class 1"
    else:
        confidence, hit = proba.max(axis=1), (proba.argmax(axis=1) == y_true)
        of = "top-class probability"
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    ids = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(ids, minlength=CALIBRATION_BINS)
    total = np.bincount(ids, weights=confidence, minlength=CALIBRATION_BINS)
    hits = np.bincount(ids, weights=hit.astype(np.float64), minlength=CALIBRATION_BINS)
    bins = []
    for i in range(CALIBRATION_BINS):
        n = int(count[i])
        bins.append(
            {
                "lower": round(float(edges[i]), 10),
                "upper": round(float(edges[i + 1]), 10),
                "mean_predicted": float(total[i] / n) if n else None,
                "observed": float(hits[i] / n) if n else None,
                "count": n,
            }
        )
    return {"of": of, "bins": bins}


def _confusion(y_true: np.ndarray, predicted: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Counts, rows the true class and columns the predicted one (scikit-learn's layout)."""
    k = len(names)
    valid = (y_true >= 0) & (y_true < k) & (predicted >= 0) & (predicted < k)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y_true[valid], predicted[valid]), 1)
    return {"labels": names, "matrix": matrix.tolist()}


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Residuals ``y_true - y_pred`` (the sign of ``residual_p10``..``p90``): a fixed sample
    of points for the residual plot, their histogram and quantiles."""
    y_true = y_true.astype(np.float64)
    if y_true.shape[0] != y_pred.shape[0]:
        raise DataError(f"y_true has {y_true.shape[0]} rows but y_pred has {y_pred.shape[0]}")
    residual = y_true - y_pred
    finite = np.isfinite(residual)
    n = int(residual.shape[0])
    if n > MAX_RESIDUAL_POINTS:  # the same rows every time: seeded, and in row order
        rows = np.sort(np.random.default_rng(0).choice(n, MAX_RESIDUAL_POINTS, replace=False))
    else:
        rows = np.arange(n)
    clean = residual[finite]
    if clean.shape[0]:
        counts, edges = np.histogram(clean, bins=_HISTOGRAM_BINS)
        quantiles = np.quantile(clean, RESIDUAL_QUANTILES)
    else:
        counts, edges, quantiles = (
            np.zeros(0),
            np.zeros(0),
            np.full(len(RESIDUAL_QUANTILES), np.nan),
        )
    return {
        "task": "regression",
        "example_count": n,
        "residuals": {
            "rows": [int(r) for r in rows],
            "y_true": _floats(y_true[rows]),
            "y_pred": _floats(y_pred[rows]),
            "residual": _floats(residual[rows]),
        },
        "histogram": {"edges": _floats(edges), "counts": [int(c) for c in counts]},
        "quantiles": [
            {"q": q, "value": v}
            for q, v in zip(RESIDUAL_QUANTILES, _floats(quantiles), strict=True)
        ],
    }
