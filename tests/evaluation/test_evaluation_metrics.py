from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from lockgate.errors import ConfigError, DataError
from lockgate.evaluation.metrics import compute_metrics


def _classification(n: int = 300, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    y_pred = proba.argmax(axis=1)
    return y_true, y_pred, proba


def test_classification_equals_sklearn() -> None:
    y_true, y_pred, proba = _classification()
    got = compute_metrics("classification", y_true, y_pred, proba, n_classes=3)
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "f1_macro": skm.f1_score(y_true, y_pred, average="macro"),
            "log_loss": skm.log_loss(y_true, proba),
            "example_count": 300.0,
        },
        rel=1e-12,
    )
    assert all(isinstance(v, float) for v in got.values())
    assert "log_loss" not in compute_metrics("classification", y_true, y_pred)


def test_regression_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=200)
    y_pred = y_true + rng.normal(scale=0.5, size=200)
    got = compute_metrics("regression", y_true, y_pred)
    assert got == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "rmse": math.sqrt(skm.mean_squared_error(y_true, y_pred)),
            "r2": skm.r2_score(y_true, y_pred),
            "example_count": 200.0,
        },
        rel=1e-12,
    )
    one = compute_metrics("regression", y_true[:1], y_pred[:1])
    assert one["r2"] is None and one["mae"] == pytest.approx(abs(y_true[0] - y_pred[0]))


def test_edge_cases() -> None:
    y_true, y_pred, proba = _classification()
    # a slice missing a class still gets a log loss over all classes
    only_zero = y_true == 0
    got = compute_metrics(
        "classification", y_true[only_zero], y_pred[only_zero], proba[only_zero], n_classes=3
    )
    assert got["log_loss"] == pytest.approx(
        skm.log_loss(y_true[only_zero], proba[only_zero], labels=[0, 1, 2])
    )
    empty = compute_metrics("classification", y_true[:0], y_pred[:0], proba[:0], n_classes=3)
    assert empty == {"accuracy": None, "f1_macro": None, "log_loss": None, "example_count": 0.0}
    with pytest.raises(ConfigError, match="task must be"):
        compute_metrics("ranking", y_true, y_pred)
    with pytest.raises(DataError, match="y_true has 300 rows but y_pred has 2"):
        compute_metrics("classification", y_true, y_pred[:2])


def test_compute_metrics_is_the_engine() -> None:
    from lockgate.evaluation.engine import point_estimates

    y_true, y_pred, proba = _classification(n=90)
    got = compute_metrics("classification", y_true, y_pred, proba, n_classes=3)
    engine = point_estimates(
        "classification", y_true, y_pred, proba, ["accuracy", "f1_macro", "log_loss"], 3
    )
    assert {k: v for k, v in got.items() if k != "example_count"} == engine
    with pytest.raises(DataError, match="y_pred must hold class indices 0..2"):
        compute_metrics("classification", y_true, y_pred + 1, proba, n_classes=3)
