from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from lockgate.errors import ConfigError, ModelError
from lockgate.training.trainers import specs, train_model
from lockgate.training.transform import TransformGraph, drop_missing_label

CLASSIFIERS = ["lightgbm", "xgboost", "random_forest", "gradient_boosting", "logistic_regression"]
REGRESSORS = ["lightgbm", "xgboost", "random_forest", "gradient_boosting", "linear_regression"]


@pytest.fixture(scope="module")
def classification_data(penguins_split: tuple[pa.Table, pa.Table]):
    train, evaluation = (drop_missing_label(t, "species") for t in penguins_split)
    graph = TransformGraph.fit(train, label="species")
    return (
        graph.apply(train),
        graph.encode_label(train),
        graph.apply(evaluation),
        graph.encode_label(evaluation),
    )


@pytest.fixture(scope="module")
def regression_data(penguins_split: tuple[pa.Table, pa.Table]):
    train, evaluation = (drop_missing_label(t, "body_mass_g") for t in penguins_split)
    graph = TransformGraph.fit(train, label="body_mass_g")
    return (
        graph.apply(train),
        graph.encode_label(train),
        graph.apply(evaluation),
        graph.encode_label(evaluation),
    )


@pytest.mark.parametrize("spec", CLASSIFIERS)
def test_every_classifier_learns_penguins(spec: str, classification_data) -> None:
    X, y, X_eval, y_eval = classification_data
    model = train_model(X, y, spec=spec, task="classification", seed=1)
    accuracy = float(np.mean(model.predict(X_eval) == y_eval))
    assert accuracy > 0.9, f"{spec}: {accuracy}"


@pytest.mark.parametrize("spec", REGRESSORS)
def test_every_regressor_learns_body_mass(spec: str, regression_data) -> None:
    X, y, X_eval, y_eval = regression_data
    model = train_model(X, y, spec=spec, task="regression")
    predictions = model.predict(X_eval)
    r2 = 1 - np.sum((y_eval - predictions) ** 2) / np.sum((y_eval - y_eval.mean()) ** 2)
    assert r2 > 0.75, f"{spec}: {r2}"


@pytest.mark.parametrize("spec", ["lightgbm", "random_forest", "gradient_boosting"])
def test_training_is_deterministic(spec: str, classification_data) -> None:
    X, y, X_eval, _ = classification_data
    first = train_model(X, y, spec=spec, task="classification", seed=3)
    second = train_model(X, y, spec=spec, task="classification", seed=3)
    assert np.array_equal(first.predict_proba(X_eval), second.predict_proba(X_eval))


def test_params_reach_the_estimator(classification_data) -> None:
    X, y, _, _ = classification_data
    model = train_model(
        X, y, spec="random_forest", params={"n_estimators": 7}, task="classification"
    )
    assert len(model.estimators_) == 7
    model = train_model(X, y, spec="lightgbm", params={"n_estimators": 5}, task="classification")
    assert model.n_estimators == 5 and model.booster_.num_trees() == 5 * 3


def test_user_function(classification_data) -> None:
    X, y, X_eval, y_eval = classification_data
    seen = {}

    def my_trainer(X: np.ndarray, y: np.ndarray, params: dict) -> LogisticRegression:
        seen.update(params)
        return LogisticRegression(C=params["C"], max_iter=500).fit(X, y)

    model = train_model(X, y, spec=my_trainer, params={"C": 0.5}, task="classification")
    assert seen == {"C": 0.5}
    assert np.mean(model.predict(X_eval) == y_eval) > 0.9


def test_user_function_returning_nothing_usable(classification_data) -> None:
    X, y, _, _ = classification_data

    def forgot_return(X, y, params):
        LogisticRegression().fit(X, y)

    with pytest.raises(ModelError, match="'.*forgot_return' returned NoneType.*no predict"):
        train_model(X, y, spec=forgot_return, task="classification")


def test_unknown_spec_suggests(classification_data) -> None:
    X, y, _, _ = classification_data
    with pytest.raises(
        ConfigError, match=r"unknown trainer spec 'lightgbn'.*did you mean 'lightgbm'"
    ):
        train_model(X, y, spec="lightgbn", task="classification")
    with pytest.raises(ConfigError, match="does not do regression; use 'linear_regression'"):
        train_model(X, y, spec="logistic_regression", task="regression")
    assert sorted(specs()) == sorted(set(CLASSIFIERS) | set(REGRESSORS) | {"torch_mlp"})


def test_bad_params_name_the_param(classification_data) -> None:
    X, y, _, _ = classification_data
    with pytest.raises(ConfigError, match=r"unknown parameter 'n_estimator'.*did you mean"):
        train_model(X, y, spec="random_forest", params={"n_estimator": 3}, task="classification")
    with pytest.raises(ConfigError, match="'max_depth'"):
        train_model(X, y, spec="random_forest", params={"max_depth": "deep"}, task="classification")
