"""Row weights for train: a weight column and class weights, checked against scikit-learn's
own balanced weights, and passed to every framework's fit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.class_weight import compute_sample_weight

from lockgate.errors import ColumnNotFoundError, ConfigError, DataError
from lockgate.training.trainers import train_model
from lockgate.training.transform import TransformGraph, drop_missing_label
from lockgate.training.weights import row_weights

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "sex"]


@pytest.fixture(scope="module")
def fitted(penguins_split: tuple[pa.Table, pa.Table]):
    train = drop_missing_label(penguins_split[0], "species")
    graph = TransformGraph.fit(train, label="species", features=FEATURES)
    return train, graph, graph.apply(train), graph.encode_label(train)


def weights(fitted, **kwargs):
    train, graph, _, y = fitted
    options = {"column": None, "class_weight": None} | kwargs
    return row_weights(
        train, y, classes=graph.label_classes, features=list(graph.features), **options
    )


def test_no_weights_asked_for_is_none(fitted) -> None:
    assert weights(fitted) is None


def test_balanced_is_scikit_learns_balanced(fitted) -> None:
    y = fitted[3]
    np.testing.assert_allclose(
        weights(fitted, class_weight="balanced"), compute_sample_weight("balanced", y)
    )


def test_class_weights_by_label_value_and_times_the_column(fitted) -> None:
    train, graph, _, y = fitted
    by_class = weights(fitted, class_weight={"Gentoo": 3.0})
    gentoo = graph.label_classes.index("Gentoo")
    np.testing.assert_array_equal(by_class, np.where(y == gentoo, 3.0, 1.0))
    both = weights(fitted, column="year", class_weight={"Gentoo": 3.0})
    year = train.column("year").to_numpy().astype(float)
    np.testing.assert_allclose(both, year * np.where(y == gentoo, 3.0, 1.0))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"class_weight": {"Gentu": 2.0}}, ConfigError, "classes are.*did you mean 'Gentoo'"),
        ({"class_weight": "even"}, ConfigError, "must be 'balanced' or"),
        ({"class_weight": {"Gentoo": -1}}, ConfigError, "must be a number >= 0"),
        ({"column": "yeer"}, ColumnNotFoundError, "column 'yeer' not found.*did you mean 'year'"),
        ({"column": "bill_length_mm"}, ConfigError, "is also a feature of the transform"),
        ({"column": "species"}, DataError, "must be numeric"),
    ],
)
def test_bad_weights_are_named(fitted, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        weights(fitted, **kwargs)


def test_a_weight_column_with_gaps_or_negatives_is_refused(fitted) -> None:
    train, graph, _, y = fitted
    year = train.column("year")
    gaps = train.set_column(
        train.column_names.index("year"), "year", pa.array([None] + [2007.0] * (len(y) - 1))
    )
    with pytest.raises(DataError, match="missing values"):
        row_weights(gaps, y, column="year", class_weight=None, classes=None, features=[])
    negative = train.set_column(
        train.column_names.index("year"), "year", pa.compute.negate(year.cast(pa.float64()))
    )
    with pytest.raises(DataError, match="finite weights >= 0"):
        row_weights(negative, y, column="year", class_weight=None, classes=None, features=[])
    with pytest.raises(ConfigError, match="applies to classification"):
        row_weights(train, y, column=None, class_weight="balanced", classes=None, features=[])


def test_weights_reach_scikit_learn_as_its_own_fit_would(fitted) -> None:
    _, _, X, y = fitted
    w = np.where(y == 0, 5.0, 1.0)
    ours = train_model(X, y, spec="random_forest", task="classification", sample_weight=w)
    theirs = RandomForestClassifier(n_jobs=1, random_state=0).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))


@pytest.mark.parametrize("spec", ["lightgbm", "xgboost", "random_forest"])
def test_weights_change_every_framework_s_model(spec: str, fitted) -> None:
    _, _, X, y = fitted
    plain = train_model(X, y, spec=spec, task="classification")
    w = np.where(y == 0, 20.0, 1.0)
    weighted = train_model(X, y, spec=spec, task="classification", sample_weight=w)
    # class 0 weighs more: its mean probability over all rows goes up
    assert weighted.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean()


def test_estimators_without_sample_weight_and_user_functions_refuse_weights(fitted) -> None:
    _, _, X, y = fitted
    w = np.ones(len(y))
    with pytest.raises(ConfigError, match="does not take sample weights"):
        train_model(
            X,
            y,
            spec="sklearn:sklearn.neighbors.KNeighborsClassifier",
            task="classification",
            sample_weight=w,
        )
    with pytest.raises(ConfigError, match="your trainer function gets no weights"):
        train_model(X, y, spec=lambda X, y, p: None, task="classification", sample_weight=w)
