"""The engine's point estimates against scikit-learn, slices, user metrics and bad input."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from lockgate.errors import ColumnNotFoundError, ConfigError, DataError
from lockgate.evaluation.engine import (
    Predictions,
    higher_is_better,
    metric,
    metric_names,
    score_models,
)
from lockgate.evaluation.results import BootstrapSettings

NO_RESAMPLES = BootstrapSettings(n_resamples=0)


def _classification(n: int, k: int, seed: int = 0, tied: bool = True):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    # rounded so that scores tie, which AUC and average precision must handle as sklearn does
    proba = rng.dirichlet(np.ones(k), n) * 0.6 + 0.4 * np.eye(k)[y_true]
    proba = np.round(proba, 2) if tied else proba
    proba /= proba.sum(axis=1, keepdims=True)
    return y_true, proba


def _ece(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Reference: 10 equal-width bins on the top-class confidence, |acc - conf| by bin share."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, 11)
    total = 0.0
    for b in range(10):
        upper = confidence <= edges[b + 1] if b == 9 else confidence < edges[b + 1]
        in_bin = (confidence >= edges[b]) & upper
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - confidence[in_bin].mean())
            total += gap * in_bin.sum() / len(y_true)
    return total


def _sklearn_classification(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, labels: list[str]
) -> dict[str, float]:
    k = proba.shape[1]
    ref: dict[str, float] = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "log_loss": skm.log_loss(y_true, proba, labels=list(range(k))),
        "brier_score": skm.brier_score_loss(
            y_true, proba[:, 1] if k == 2 else proba, labels=None if k == 2 else list(range(k))
        ),
        "expected_calibration_error": _ece(y_true, proba),
    }
    for name, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        for average in ("macro", "micro", "weighted"):
            ref[f"{name}_{average}"] = fn(y_true, y_pred, average=average, zero_division=0)
        per_class = fn(y_true, y_pred, average=None, labels=list(range(k)), zero_division=0)
        for c, label in enumerate(labels):
            ref[f"{name}[{label}]"] = per_class[c]
        if k == 2:
            ref[name] = fn(y_true, y_pred, zero_division=0)
    if k == 2:
        ref["roc_auc"] = skm.roc_auc_score(y_true, proba[:, 1])
        ref["pr_auc"] = skm.average_precision_score(y_true, proba[:, 1])
    else:
        ref["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro")
        ref["pr_auc"] = skm.average_precision_score(y_true, proba, average="macro")
    return ref


def _values(scores, key=()) -> dict[str, float | None]:
    return {name: m.value for name, m in scores.by_key()[key].metrics.items()}


@pytest.mark.parametrize("tied", [True, False], ids=["tied-scores", "distinct-scores"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_classification_equals_sklearn(k: int, tied: bool) -> None:
    y_true, proba = _classification(600, k, seed=k, tied=tied)
    # binary: class 1 where proba[:, 1] >= 0.5 (the default decision threshold)
    y_pred = (proba[:, 1] >= 0.5).astype(int) if k == 2 else proba.argmax(axis=1)
    labels = [f"c{c}" for c in range(k)]
    scores = score_models(
        "classification",
        y_true,
        {"m": Predictions(y_pred, proba)},
        pa.table({}),
        class_names=labels,
        bootstrap=NO_RESAMPLES,
    )["m"]
    got = _values(scores)
    ref = _sklearn_classification(y_true, y_pred, proba, labels)
    assert list(got) == metric_names("classification", k, labels)
    assert set(got) == set(ref)
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_regression_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.normal(50.0, 10.0, 400)
    y_pred = y_true + rng.normal(0.0, 3.0, 400)
    scores = score_models(
        "regression", y_true, {"m": Predictions(y_pred)}, pa.table({}), bootstrap=NO_RESAMPLES
    )["m"]
    residual = y_true - y_pred
    ref = {
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "mse": skm.mean_squared_error(y_true, y_pred),
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "r2": skm.r2_score(y_true, y_pred),
        "mape": skm.mean_absolute_percentage_error(y_true, y_pred),
        "median_absolute_error": skm.median_absolute_error(y_true, y_pred),
        "residual_p10": np.quantile(residual, 0.1),
        "residual_p50": np.quantile(residual, 0.5),
        "residual_p90": np.quantile(residual, 0.9),
    }
    got = _values(scores)
    assert list(got) == metric_names("regression")
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, rel=1e-10), name


@pytest.mark.parametrize("tied", [True, False], ids=["tied-scores", "distinct-scores"])
def test_every_slice_equals_sklearn_on_its_rows(tied: bool) -> None:
    y_true, proba = _classification(900, 3, seed=5, tied=tied)
    y_pred = proba.argmax(axis=1)
    rng = np.random.default_rng(6)
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], 900)
    sex = rng.choice(["female", "male"], 900).astype(object)
    sex[::13] = None
    features = pa.table({"island": island, "sex": sex})
    scores = score_models(
        "classification",
        y_true,
        {"m": Predictions(y_pred, proba)},
        features,
        slice_by=["island", ["island", "sex"]],
        bootstrap=NO_RESAMPLES,
    )["m"]
    assert len(scores.slices) == 1 + 3 + 9
    for s in scores.slices[1:]:
        mask = np.ones(900, dtype=bool)
        for feature, value in s.key:
            column = features.column(feature).to_pylist()
            mask &= np.array([v == value for v in column])
        assert s.example_count == mask.sum()
        ref = _sklearn_classification(y_true[mask], y_pred[mask], proba[mask], ["0", "1", "2"])
        got = _values(scores, s.key)
        for name in ("accuracy", "f1_macro", "recall_weighted", "log_loss", "roc_auc", "pr_auc"):
            assert got[name] == pytest.approx(ref[name], rel=1e-12), (s.label, name)


def test_slice_with_one_class_and_tiny_slices() -> None:
    y_true, proba = _classification(200, 2, seed=2)
    group = np.where(np.arange(200) < 150, "big", "one_class")
    y_true[150:] = 1
    group[199] = "single"
    scores = score_models(
        "classification",
        y_true,
        {"m": Predictions(proba.argmax(axis=1), proba)},
        pa.table({"group": group}),
        slice_by=["group"],
        min_slice_size=30,
        bootstrap=BootstrapSettings(n_resamples=20),
    )["m"]
    by_key = scores.by_key()
    one_class = by_key[(("group", "one_class"),)]
    assert one_class.metrics["roc_auc"].value is None
    assert one_class.metrics["roc_auc"].lower is None
    assert one_class.metrics["accuracy"].value is not None
    assert one_class.gated
    single = by_key[(("group", "single"),)]
    assert single.example_count == 1 and not single.gated
    assert single.note == "1 examples < min_slice_size 30: reported, not gated"
    assert scores.overall.gated and scores.overall.note is None

    rng = np.random.default_rng(3)
    y = rng.normal(size=50)
    regression = score_models(
        "regression",
        y,
        {"m": Predictions(y + 1.0)},
        pa.table({"g": ["a"] + ["b"] * 49}),
        slice_by=["g"],
        bootstrap=NO_RESAMPLES,
    )["m"]
    one_row = _values(regression, (("g", "a"),))
    assert one_row["r2"] is None and one_row["mae"] == pytest.approx(1.0)


def test_empty_eval_split_is_all_none() -> None:
    scores = score_models(
        "classification",
        np.zeros(0, dtype=int),
        {"m": Predictions(np.zeros(0, dtype=int), np.zeros((0, 2)))},
        pa.table({"a": pa.array([], pa.string())}),
        slice_by=["a"],
    )["m"]
    assert len(scores.slices) == 1 and scores.overall.example_count == 0
    assert all(m.value is None and m.lower is None for m in scores.overall.metrics.values())


def test_decision_threshold_sets_binary_predictions() -> None:
    y_true, proba = _classification(300, 2, seed=4)
    scores = score_models(
        "classification",
        y_true,
        {"m": Predictions(proba.argmax(axis=1), proba)},
        pa.table({}),
        decision_threshold=0.8,
        bootstrap=NO_RESAMPLES,
    )["m"]
    y_pred = (proba[:, 1] >= 0.8).astype(int)
    got = _values(scores)
    assert got["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))


def test_slice_values_order_nulls_and_quantiles() -> None:
    n = 12
    features = pa.table(
        {
            "island": ["b", None, "a", "b", "a", "c", None, "a", "b", "c", "a", "b"],
            "mass": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, None, 10.0, 11.0, 12.0],
        }
    )
    y = np.arange(n, dtype=float)
    scores = score_models(
        "regression",
        y,
        {"m": Predictions(y)},
        features,
        slice_by=["island", "mass", {"feature": "mass", "quantiles": 2}],
        metrics=["mae"],
        bootstrap=NO_RESAMPLES,
    )["m"]
    keys = [s.key for s in scores.slices]
    assert keys[:5] == [
        (),
        (("island", "a"),),
        (("island", "b"),),
        (("island", "c"),),
        (("island", None),),
    ]
    masses = [k[0][1] for k in keys[5:-3]]  # the slices of "mass", before its buckets
    assert len(masses) == 11
    assert masses[-1] is None and masses[:-1] == sorted(masses[:-1])
    assert masses.count(None) == 1  # NaN and null are one missing slice
    buckets = [s for s in scores.slices[-3:]]
    present = np.array([1, 2, 4, 5, 6, 7, 8, 10, 11, 12], dtype=float)
    lo, mid, hi = np.quantile(present, [0, 0.5, 1])
    assert [s.label for s in buckets] == [
        f"mass=[{lo:.6g}, {mid:.6g})",
        f"mass=[{mid:.6g}, {hi:.6g}]",
        "mass=null",
    ]
    assert [s.example_count for s in buckets] == [5, 5, 2]


def test_user_metric_named_like_builtins() -> None:
    y_true, proba = _classification(300, 2, seed=8)
    y_pred = (proba[:, 1] >= 0.5).astype(int)

    def true_positives(y_t, y_p, p):
        return float(((y_t == 1) & (y_p == 1)).sum())

    def always_fails(y_t, y_p, p):
        raise ValueError("undefined here")

    scores = score_models(
        "classification",
        y_true,
        {"m": Predictions(y_pred, proba)},
        pa.table({"g": np.arange(300) % 2}),
        slice_by=["g"],
        metrics=["accuracy", metric(true_positives, name="tp"), always_fails],
        bootstrap=BootstrapSettings(n_resamples=5, seed=3),
    )["m"]
    even = scores.by_key()[(("g", 0),)]
    assert list(even.metrics) == ["accuracy", "tp", "always_fails"]
    assert even.metrics["tp"].value == true_positives(y_true[::2], y_pred[::2], None)
    assert even.metrics["always_fails"].value is None
    from lockgate.evaluation.bootstrap import resample_weights

    w = resample_weights(300, range(5), seed=3)[::2].astype(int)
    expected = [
        true_positives(np.repeat(y_true[::2], w[:, j]), np.repeat(y_pred[::2], w[:, j]), None)
        for j in range(5)
    ]
    np.testing.assert_array_equal(even.metrics["tp"].samples, expected)
    assert (
        higher_is_better("tp", [metric(true_positives, name="tp", higher_is_better=False)]) is False
    )


def test_metric_names_and_directions() -> None:
    assert metric_names("classification", 2, has_proba=False)[-2:] == ["f1[0]", "f1[1]"]
    assert "roc_auc" not in metric_names("classification", 3, has_proba=False)
    assert "precision" not in metric_names("classification", 3)
    assert higher_is_better("accuracy") is True
    assert higher_is_better("f1[Adelie]") is True
    assert higher_is_better("log_loss") is False
    assert higher_is_better("rmse") is False
    assert higher_is_better("residual_p50") is None
    assert higher_is_better("nonsense") is None


def test_bad_input_has_clear_errors() -> None:
    y_true, proba = _classification(50, 3, seed=9)
    y_pred = proba.argmax(axis=1)
    models = {"candidate": Predictions(y_pred, proba)}
    table = pa.table({"island": ["a"] * 50})

    def run(**kwargs):
        return score_models(
            "classification", y_true, models, table, bootstrap=NO_RESAMPLES, **kwargs
        )

    with pytest.raises(
        ConfigError, match="unknown metric 'acuracy' for classification; did you mean 'accuracy'"
    ):
        run(metrics=["acuracy"])
    with pytest.raises(
        ConfigError, match="metric 'rmse' is a regression metric, not available for classification"
    ):
        run(metrics=["rmse"])
    with pytest.raises(
        ConfigError, match="metric 'precision' .* needs a binary task; this one has 3 classes"
    ):
        run(metrics=["precision"])
    with pytest.raises(
        ColumnNotFoundError,
        match="column 'islnd' not found in the eval split .*did you mean 'island'",
    ):
        run(slice_by=["islnd"])
    with pytest.raises(ConfigError, match="quantile slices need a numeric feature"):
        run(slice_by=[{"feature": "island", "quantiles": 4}])
    with pytest.raises(ConfigError, match="metrics named more than once"):
        run(metrics=["accuracy", "accuracy"])
    with pytest.raises(
        DataError, match=r"proba of model 'candidate' has shape \(50, 2\); expected \(50, 3\)"
    ):
        score_models(
            "classification",
            y_true,
            {"candidate": Predictions(y_pred, proba[:, :2])},
            table,
            class_names=["a", "b", "c"],
        )
    with pytest.raises(ConfigError, match="metric 'log_loss' needs predicted probabilities"):
        score_models(
            "classification",
            y_true,
            {"candidate": Predictions(y_pred)},
            table,
            metrics=["log_loss"],
        )
    with pytest.raises(DataError, match="y_true must hold class indices 0..1"):
        score_models(
            "classification", y_true, {"candidate": Predictions(y_pred, proba[:, :2])}, table
        )
    with pytest.raises(DataError, match="features have 50 rows but y_true has 49"):
        score_models("classification", y_true[:49], models, table)
    with pytest.raises(ConfigError, match="task must be"):
        score_models("ranking", y_true, models, table)
    assert math.isfinite(run(metrics=["accuracy"])["candidate"].overall.metrics["accuracy"].value)


def test_regression_slices_constant_target_and_user_metric() -> None:
    rng = np.random.default_rng(12)
    n = 400
    mass = rng.normal(4000.0, 500.0, n)
    y_true = mass / 100.0 + rng.normal(0.0, 1.0, n)
    y_true[:20] = 7.0  # a slice whose target is constant: sklearn's R² is 1.0 or 0.0
    y_pred = y_true + rng.normal(0.0, 0.5, n)
    y_pred[:10] = 7.0
    group = np.where(np.arange(n) < 10, "exact", np.where(np.arange(n) < 20, "flat", "rest"))

    def max_error(y_t, y_p, proba):
        assert proba is None
        return float(np.max(np.abs(y_t - y_p)))

    scores = score_models(
        "regression",
        y_true,
        {"m": Predictions(y_pred)},
        pa.table({"group": group, "mass": mass}),
        slice_by=["group", {"feature": "mass", "quantiles": 4}],
        metrics=["r2", "rmse", "median_absolute_error", metric(max_error, higher_is_better=False)],
        bootstrap=BootstrapSettings(n_resamples=10),
    )["m"]
    edges = np.quantile(mass, [0, 0.25, 0.5, 0.75, 1.0])
    buckets = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, 3)
    for s in scores.slices:
        if not s.key:
            mask = np.ones(n, dtype=bool)
        elif s.key[0][0] == "group":
            mask = group == s.key[0][1]
        else:
            b = [f"[{edges[i]:.6g}, {edges[i + 1]:.6g}" for i in range(4)].index(s.key[0][1][:-1])
            mask = buckets == b
        assert s.example_count == mask.sum(), s.label
        got = _values(scores, s.key)
        yt, yp = y_true[mask], y_pred[mask]
        assert got["r2"] == pytest.approx(skm.r2_score(yt, yp), rel=1e-9, abs=1e-12), s.label
        assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(yt, yp), rel=1e-12)
        assert got["median_absolute_error"] == pytest.approx(skm.median_absolute_error(yt, yp))
        assert got["max_error"] == pytest.approx(skm.max_error(yt, yp))
        assert s.metrics["max_error"].samples.shape == (10,)
    assert [s.example_count for s in scores.slices[-4:]] == [100, 100, 100, 100]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_whole_split_of_one_class_is_scored_with_ranking_metrics_undefined(
    n_classes: int,
) -> None:
    """Every eval row of one class (no negatives anywhere for the one-vs-rest AUC)."""
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(n_classes), size=60)
    y_true = np.zeros(60, dtype=np.int64)
    y_pred = proba.argmax(axis=1)
    scores = score_models(
        "classification",
        y_true,
        {"candidate": Predictions(y_pred, proba)},
        pa.table({"g": np.arange(60) % 2}),
        slice_by=["g"],
        bootstrap=BootstrapSettings(n_resamples=10),
    )["candidate"]
    overall = scores.overall.metrics
    assert overall["roc_auc"].value is None and overall["pr_auc"].value is None
    assert overall["accuracy"].value == pytest.approx(float(np.mean(y_pred == 0)))
    assert overall["accuracy"].lower is not None
