from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from lockgate.errors import ConfigError, DataError
from lockgate.evaluation.curves import MAX_RESIDUAL_POINTS, compute_curves


def _binary(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    return y, np.c_[1 - p1, p1]


def _multiclass(n: int = 500, k: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 0.5
    return y, proba / proba.sum(axis=1, keepdims=True)


def _strict_json(curves: dict) -> dict:
    return json.loads(json.dumps(curves, allow_nan=False))


def test_binary_roc_and_pr_equal_sklearn_when_not_thinned() -> None:
    y, proba = _binary(n=150)
    got = _strict_json(
        compute_curves("classification", y, None, proba, ["no", "yes"], max_points=10_000)
    )
    fpr, tpr, thr = skm.roc_curve(y, proba[:, 1])
    (roc,) = got["roc"]
    assert roc["class"] == "yes"
    np.testing.assert_allclose(roc["fpr"], fpr)
    np.testing.assert_allclose(roc["tpr"], tpr)
    assert roc["thresholds"][0] is None  # sklearn's first threshold is inf
    np.testing.assert_allclose(roc["thresholds"][1:], thr[1:])
    assert roc["auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    precision, recall, _ = skm.precision_recall_curve(y, proba[:, 1])
    (pr,) = got["pr"]
    np.testing.assert_allclose(pr["precision"], precision)
    np.testing.assert_allclose(pr["recall"], recall)
    assert pr["average_precision"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))


def test_curves_are_thinned_to_200_points_keeping_the_endpoints() -> None:
    y, proba = _binary(n=5000)
    got = compute_curves("classification", y, None, proba, ["0", "1"])
    fpr, tpr, _ = skm.roc_curve(y, proba[:, 1])
    precision, recall, _ = skm.precision_recall_curve(y, proba[:, 1])
    assert fpr.shape[0] > 200 and precision.shape[0] > 200
    roc, pr = got["roc"][0], got["pr"][0]
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"]) <= 200
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (
        fpr[0],
        tpr[0],
        fpr[-1],
        tpr[-1],
    )
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) <= 200
    assert pr["precision"][0] == precision[0] and pr["recall"][-1] == recall[-1] == 0.0
    assert np.all(np.diff(roc["fpr"]) >= 0)  # thinning keeps the order


def test_binary_uses_the_decision_threshold_for_the_confusion_matrix() -> None:
    y, proba = _binary()
    for threshold in (0.5, 0.3):
        got = compute_curves("classification", y, None, proba, ["a", "b"], threshold)
        predicted = (proba[:, 1] >= threshold).astype(int)
        assert got["confusion_matrix"] == {
            "labels": ["a", "b"],
            "matrix": skm.confusion_matrix(y, predicted).tolist(),
        }
        assert got["decision_threshold"] == threshold
        tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
        assert got["roc"][0]["operating_point"] == pytest.approx(
            {"fpr": fp / (fp + tn), "tpr": tp / (tp + fn)}
        )
        assert got["pr"][0]["operating_point"] == pytest.approx(
            {"precision": tp / (tp + fp), "recall": tp / (tp + fn)}
        )


def test_binary_calibration_equals_sklearn_uniform_bins() -> None:
    y, proba = _binary()
    bins = compute_curves("classification", y, None, proba, None)["calibration"]["bins"]
    assert len(bins) == 10 and sum(b["count"] for b in bins) == y.shape[0]
    assert [b["lower"] for b in bins] == pytest.approx(np.linspace(0, 0.9, 10))
    prob_true, prob_pred = calibration_curve(y, proba[:, 1], n_bins=10, strategy="uniform")
    full = [b for b in bins if b["count"]]
    np.testing.assert_allclose([b["observed"] for b in full], prob_true)
    np.testing.assert_allclose([b["mean_predicted"] for b in full], prob_pred)
    assert all(
        b["observed"] is None and b["mean_predicted"] is None for b in bins if not b["count"]
    )


def test_multiclass_one_vs_rest_per_class_and_top_class_calibration() -> None:
    y, proba = _multiclass()
    names = ["Adelie", "Chinstrap", "Gentoo"]
    got = _strict_json(compute_curves("classification", y, proba.argmax(1), proba, names))
    assert [c["class"] for c in got["roc"]] == names == [c["class"] for c in got["pr"]]
    assert got["decision_threshold"] is None
    for k, (roc, pr) in enumerate(zip(got["roc"], got["pr"], strict=True)):
        assert roc["auc"] == pytest.approx(skm.roc_auc_score(y == k, proba[:, k]))
        assert pr["average_precision"] == pytest.approx(
            skm.average_precision_score(y == k, proba[:, k])
        )
        assert "operating_point" not in roc
    assert got["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, proba.argmax(1)).tolist()
    top, right = proba.max(axis=1), proba.argmax(axis=1) == y
    prob_true, prob_pred = calibration_curve(right, top, n_bins=10, strategy="uniform")
    full = [b for b in got["calibration"]["bins"] if b["count"]]
    np.testing.assert_allclose([b["observed"] for b in full], prob_true)
    np.testing.assert_allclose([b["mean_predicted"] for b in full], prob_pred)


def test_a_class_missing_from_the_eval_rows_has_an_empty_curve_and_a_note() -> None:
    y, proba = _multiclass()
    y = np.where(y == 2, 0, y)  # no Gentoo left
    got = _strict_json(compute_curves("classification", y, None, proba, ["a", "b", "c"]))
    assert got["roc"][2]["fpr"] == [] and got["roc"][2]["auc"] is None
    assert "no example" in got["roc"][2]["note"] and "no example" in got["pr"][2]["note"]
    assert got["roc"][0]["note"] is None and got["confusion_matrix"]["matrix"][2] == [0, 0, 0]


def test_without_proba_only_the_confusion_matrix() -> None:
    y, proba = _multiclass()
    got = compute_curves("classification", y, proba.argmax(1), None, ["a", "b", "c"])
    assert got["roc"] == [] and got["pr"] == [] and got["calibration"] is None
    assert sum(map(sum, got["confusion_matrix"]["matrix"])) == y.shape[0]


def test_regression_residual_sample_histogram_and_quantiles() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(10, 3, 2000)
    y_pred = y_true + rng.normal(0, 1, 2000)
    got = _strict_json(compute_curves("regression", y_true, y_pred, None))
    sample = got["residuals"]
    assert len(sample["rows"]) == len(sample["residual"]) == MAX_RESIDUAL_POINTS
    rows = np.array(sample["rows"])
    np.testing.assert_allclose(sample["y_pred"], y_pred[rows])
    np.testing.assert_allclose(sample["residual"], (y_true - y_pred)[rows])
    assert sample == compute_curves("regression", y_true, y_pred, None)["residuals"]  # fixed
    assert sum(got["histogram"]["counts"]) == 2000
    assert len(got["histogram"]["edges"]) == len(got["histogram"]["counts"]) + 1
    median = next(q["value"] for q in got["quantiles"] if q["q"] == 0.5)
    assert median == pytest.approx(np.median(y_true - y_pred))


def test_regression_small_and_with_nan() -> None:
    got = _strict_json(
        compute_curves("regression", np.array([1.0, 2.0, 3.0]), np.array([1.5, np.nan, 2.0]), None)
    )
    assert got["residuals"]["rows"] == [0, 1, 2]
    assert got["residuals"]["residual"] == [-0.5, None, 1.0]
    assert sum(got["histogram"]["counts"]) == 2


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="task must be"):
        compute_curves("ranking", np.zeros(3), np.zeros(3), None)
    with pytest.raises(DataError, match="proba must be"):
        compute_curves("classification", np.zeros(3), None, np.zeros((4, 2)))
    with pytest.raises(DataError, match="proba has 2 columns for 3 classes"):
        compute_curves("classification", np.zeros(3), None, np.zeros((3, 2)), ["a", "b", "c"])
    with pytest.raises(DataError, match="y_pred"):
        compute_curves("regression", np.zeros(3), np.zeros(2), None)
