"""The metric engine: every metric of every model on every slice, with bootstrap intervals.

``score_models`` scores the candidate and the baseline on the same eval rows and the same
Poisson resamples (paired), so the gate can put an interval on their difference. The
built-in metrics are computed for a block of resamples at once (see ``grouped.py``); the
point estimates are the same code with one weight column of ones, and equal
scikit-learn's. A user metric (``metric(fn)``) is called once per slice and once per
resample of each slice: a Python loop, so it is the slow part when there is one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from lockgate.errors import DataError
from lockgate.evaluation.bootstrap import resample_chunks, resample_weights
from lockgate.evaluation.classification_scores import ClassificationScores
from lockgate.evaluation.metric_library import (
    Metric,
    check_task,
    class_labels,
    higher_is_better,
    metric,
    metric_names,
    resolve,
)
from lockgate.evaluation.regression_scores import RegressionScores
from lockgate.evaluation.results import (
    BootstrapSettings,
    MetricEstimate,
    ModelScores,
    SliceKey,
    SliceMetrics,
    percentile_interval,
)
from lockgate.evaluation.slicing import Partition, SliceSpec, partitions

__all__ = [
    "Metric",
    "Predictions",
    "higher_is_better",
    "metric",
    "metric_names",
    "point_estimates",
    "score_models",
]


@dataclass
class Predictions:
    """One model's answers on the eval rows: class indices (classification) or values
    (regression), and for classification the ``(n, n_classes)`` probabilities if it has any."""

    y_pred: np.ndarray
    proba: np.ndarray | None = None


def score_models(
    task: str,
    y_true: np.ndarray,
    predictions: Mapping[str, Predictions],
    features: pa.Table,
    *,
    slice_by: Sequence[SliceSpec] = (),
    metrics: Sequence[str | Metric | Callable[..., float]] | None = None,
    class_names: Sequence[str] | None = None,
    decision_threshold: float = 0.5,
    min_slice_size: int = 1,
    bootstrap: BootstrapSettings = BootstrapSettings(),  # noqa: B008 (frozen, immutable)
) -> dict[str, ModelScores]:
    """Every model's metrics on the whole split and on every slice, with percentile
    intervals from ``bootstrap.n_resamples`` Poisson resamples shared by all the models.

    For a binary model with probabilities, class 1 is predicted where
    ``proba[:, 1] >= decision_threshold``. Slices smaller than ``min_slice_size`` are
    reported with ``gated=False`` and a note; the whole split is always gated.
    """
    check_task(task)
    y_true = np.asarray(y_true)
    n = y_true.shape[0]
    if features.num_columns and features.num_rows != n:
        raise DataError(f"features have {features.num_rows} rows but y_true has {n}")
    if not predictions:
        raise DataError("score_models needs at least one model's predictions")
    k, models = _prepare(task, y_true, predictions, class_names, decision_threshold)
    y_true = y_true.astype(np.int64) if task == "classification" else y_true.astype(np.float64)
    has_proba = all(p.proba is not None for p in models.values())
    names, users = resolve(task, metrics, k, class_names, has_proba=has_proba)
    labels = class_labels(k, class_names) if task == "classification" else []
    parts = partitions(features, slice_by, n)
    wanted = set(names)
    scorers = {}
    for model, answers in models.items():
        orders: dict[Any, np.ndarray] = {}  # sorts shared by the partitions of one model
        scorers[model] = [_scorer(task, y_true, answers, part, k, wanted, orders) for part in parts]
    internal = [_internal_name(name, labels) for name in names]
    # point estimates: one weight column of ones
    ones = np.ones((n, 1))
    points = {
        model: [s.evaluate(ones) if n else {} for s in per_part]
        for model, per_part in scorers.items()
    }
    samples = _resample(scorers, internal, users, y_true, models, parts, bootstrap)
    out: dict[str, ModelScores] = {}
    for model in models:
        slices: list[SliceMetrics] = []
        for p, part in enumerate(parts):
            counts = np.bincount(part.codes, minlength=part.n_slices)
            for i, key in enumerate(part.keys):
                estimates: dict[str, MetricEstimate] = {}
                for name, inner in zip(names, internal, strict=True):
                    value = points[model][p][inner][i, 0] if n else math.nan
                    estimates[name] = _estimate(value, samples[model][p][inner][i], bootstrap)
                for user in users:
                    value = _call(user, y_true, models[model], part.codes == i)
                    estimates[user.name] = _estimate(
                        value, samples[model][p][user.name][i], bootstrap
                    )
                slices.append(_slice(key, int(counts[i]), estimates, min_slice_size))
        out[model] = ModelScores(slices)
    return out


def _resample(
    scorers: Mapping[str, list[ClassificationScores | RegressionScores]],
    internal: list[str],
    users: list[Metric],
    y_true: np.ndarray,
    models: Mapping[str, Predictions],
    parts: list[Partition],
    bootstrap: BootstrapSettings,
) -> dict[str, list[dict[str, np.ndarray]]]:
    """model -> partition -> metric -> ``(n_slices, n_resamples)`` resampled values. Every
    chunk of weights is drawn once and used for every model (paired resamples)."""
    n = y_true.shape[0]
    r_total = bootstrap.n_resamples if n else 0
    names = internal + [u.name for u in users]
    samples = {
        model: [
            {name: np.full((part.n_slices, r_total), np.nan) for name in names} for part in parts
        ]
        for model in models
    }
    for chunk in resample_chunks(n, r_total) if r_total else ():
        weights = resample_weights(n, chunk, bootstrap.seed)
        columns = slice(chunk.start, chunk.stop)
        for model, per_part in scorers.items():
            for p, scorer in enumerate(per_part):
                result = scorer.evaluate(weights)
                for name in internal:
                    samples[model][p][name][:, columns] = result[name]
                for user in users:
                    samples[model][p][user.name][:, columns] = _user_samples(
                        user, y_true, models[model], parts[p], weights
                    )
    return samples


def _slice(
    key: SliceKey, count: int, estimates: dict[str, MetricEstimate], min_slice_size: int
) -> SliceMetrics:
    """A slice's metrics; one below ``min_slice_size`` (never the whole split) is not gated."""
    if key == () or count >= min_slice_size:
        return SliceMetrics(key, count, estimates)
    note = f"{count} examples < min_slice_size {min_slice_size}: reported, not gated"
    return SliceMetrics(key, count, estimates, gated=False, note=note)


def point_estimates(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    names: Sequence[str],
    n_classes: int | None = None,
) -> dict[str, float | None]:
    """Built-in metrics on the rows as they are (no slices, no resamples, ``y_pred`` as
    given): the engine's figures for a caller that needs only numbers, as tune does."""
    check_task(task)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape[0] != y_pred.shape[0]:
        raise DataError(f"y_true has {y_true.shape[0]} rows but y_pred has {y_pred.shape[0]}")
    n = y_true.shape[0]
    if task == "classification":
        if n_classes is None:
            n_classes = (
                proba.shape[1]
                if proba is not None
                else int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
            )
        _check_labels("y_true", y_true, n_classes)
        _check_labels("y_pred", y_pred, n_classes)
        y_true = y_true.astype(np.int64)
        y_pred = y_pred.astype(np.int64)
        proba = None if proba is None else _check_proba("model", np.asarray(proba), n, n_classes)
    resolved, _ = resolve(task, list(names), n_classes or 0, None, has_proba=proba is not None)
    if not n:
        return {name: None for name in resolved}
    scorer = (
        ClassificationScores(
            y_true, y_pred, proba, np.zeros(n, np.int64), 1, n_classes or 0, set(resolved)
        )
        if task == "classification"
        else RegressionScores(
            y_true.astype(np.float64),
            y_pred.astype(np.float64),
            np.zeros(n, np.int64),
            1,
            set(resolved),
        )
    )
    values = scorer.evaluate(np.ones((n, 1)))
    return {name: _finite(values[name][0, 0]) for name in resolved}


def _prepare(
    task: str,
    y_true: np.ndarray,
    predictions: Mapping[str, Predictions],
    class_names: Sequence[str] | None,
    decision_threshold: float,
) -> tuple[int, dict[str, Predictions]]:
    """(number of classes, the predictions checked and as float64/int64 arrays)."""
    n = y_true.shape[0]
    models: dict[str, Predictions] = {}
    for model, p in predictions.items():
        y_pred = np.asarray(p.y_pred)
        if y_pred.shape != (n,):
            raise DataError(
                f"y_pred of model '{model}' has shape {y_pred.shape}; expected ({n},), one per row"
            )
        if task == "regression":
            models[model] = Predictions(y_pred.astype(np.float64), None)
        else:
            models[model] = Predictions(y_pred, None if p.proba is None else np.asarray(p.proba))
    if task == "regression":
        return 0, models
    if class_names is not None:
        k = len(class_names)
    else:
        widths = {
            m.proba.shape[1] for m in models.values() if m.proba is not None and m.proba.ndim == 2
        }
        if len(widths) > 1:
            raise DataError(
                f"the models' proba have different numbers of columns: {sorted(widths)}"
            )
        labels = [y_true] + [m.y_pred for m in models.values()]
        k = widths.pop() if widths else int(max(int(a.max(initial=0)) for a in labels)) + 1
    _check_labels("y_true", y_true, k)
    for model, p in models.items():
        proba = None if p.proba is None else _check_proba(model, p.proba, n, k)
        y_pred = p.y_pred
        if proba is not None and k == 2:
            y_pred = (proba[:, 1] >= decision_threshold).astype(np.int64)
        _check_labels(f"y_pred of model '{model}'", y_pred, k)
        models[model] = Predictions(y_pred.astype(np.int64), proba)
    return k, models


def _check_labels(what: str, labels: np.ndarray, k: int) -> None:
    if labels.size and (
        labels.min() < 0 or labels.max() >= k or not np.all(labels == np.round(labels))
    ):
        raise DataError(
            f"{what} must hold class indices 0..{k - 1}; got values from {labels.min()} to {labels.max()}"
        )


def _check_proba(model: str, proba: np.ndarray, n: int, k: int) -> np.ndarray:
    if proba.shape != (n, k):
        raise DataError(
            f"proba of model '{model}' has shape {proba.shape}; expected ({n}, {k}): one row per "
            f"example and one column per class"
        )
    return proba.astype(np.float64)


def _scorer(
    task: str,
    y_true: np.ndarray,
    p: Predictions,
    part: Partition,
    k: int,
    wanted: set[str],
    orders: dict[Any, np.ndarray],
) -> ClassificationScores | RegressionScores:
    if task == "classification":
        return ClassificationScores(
            y_true, p.y_pred, p.proba, part.codes, part.n_slices, k, wanted, orders
        )
    return RegressionScores(y_true, p.y_pred, part.codes, part.n_slices, wanted, orders)


def _internal_name(name: str, labels: list[str]) -> str:
    """``"precision[Adelie]"`` -> ``"precision[0]"``, the scorers' key."""
    if name.endswith("]") and "[" in name:
        prefix, label = name[:-1].split("[", 1)
        return f"{prefix}[{labels.index(label)}]"
    return name


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _estimate(
    value: float | None, samples: np.ndarray, bootstrap: BootstrapSettings
) -> MetricEstimate:
    point = _finite(value) if value is not None else None
    if bootstrap.n_resamples == 0 or samples.size == 0:
        return MetricEstimate(point)
    lower, upper = percentile_interval(samples, bootstrap.confidence_level)
    return MetricEstimate(point, lower, upper, samples.astype(np.float64, copy=True))


def _call(user: Metric, y_true: np.ndarray, p: Predictions, rows: np.ndarray) -> float | None:
    """The user's metric on some rows (a mask or repeated indices); None where it raises
    ValueError or ZeroDivisionError (undefined there, as scikit-learn's raise)."""
    if isinstance(rows, np.ndarray) and rows.dtype == bool and not rows.any():
        return None
    try:
        value = user.fn(y_true[rows], p.y_pred[rows], None if p.proba is None else p.proba[rows])
    except (ValueError, ZeroDivisionError):
        return None
    return _finite(float(value))


def _user_samples(
    user: Metric, y_true: np.ndarray, p: Predictions, part: Partition, weights: np.ndarray
) -> np.ndarray:
    """The user's metric on each resample of each slice: rows repeated by their weights."""
    out = np.full((part.n_slices, weights.shape[1]), np.nan)
    for i in range(part.n_slices):
        rows = np.flatnonzero(part.codes == i)
        for j in range(weights.shape[1]):
            repeated = np.repeat(rows, weights[rows, j].astype(np.int64))
            if repeated.size:
                value = _call(user, y_true, p, repeated)
                out[i, j] = math.nan if value is None else value
    return out
