"""Trainer names resolved through the framework registry: a scikit-learn estimator by
import path (only inside the sklearn package), and XGBoost saved as its JSON model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from lockgate.errors import ConfigError
from lockgate.training.model_files import load_model, save_model
from lockgate.training.trainers import framework_record, specs, train_model
from lockgate.training.transform import TransformGraph, drop_missing_label


def _data(split: tuple[pa.Table, pa.Table], label: str) -> tuple[np.ndarray, np.ndarray]:
    train = drop_missing_label(split[0], label)
    graph = TransformGraph.fit(train, label=label)
    return graph.apply(train), graph.encode_label(train)


@pytest.fixture(scope="module")
def species(penguins_split: tuple[pa.Table, pa.Table]) -> tuple[np.ndarray, np.ndarray]:
    return _data(penguins_split, "species")


@pytest.fixture(scope="module")
def mass(penguins_split: tuple[pa.Table, pa.Table]) -> tuple[np.ndarray, np.ndarray]:
    return _data(penguins_split, "body_mass_g")


def test_short_names_of_today_still_resolve() -> None:
    known = specs()
    for name in ("lightgbm", "random_forest", "gradient_boosting", "logistic_regression"):
        assert "classification" in known[name]
    assert known["linear_regression"] == ("regression",)
    assert known["xgboost"] == ("classification", "regression")


@pytest.mark.parametrize(
    ("spec", "task", "cls"),
    [
        ("sklearn:sklearn.ensemble.ExtraTreesClassifier", "classification", ExtraTreesClassifier),
        ("sklearn:sklearn.ensemble.ExtraTreesRegressor", "regression", ExtraTreesRegressor),
    ],
)
def test_estimator_by_import_path_trains_saves_and_loads(
    spec: str, task: str, cls: type, species, mass, tmp_path: Path
) -> None:
    X, y = species if task == "classification" else mass
    estimator = train_model(X, y, spec=spec, params={"n_estimators": 20}, task=task, seed=3)
    assert type(estimator) is cls
    assert estimator.n_estimators == 20 and estimator.random_state == 3 and estimator.n_jobs == 1
    again = train_model(X, y, spec=spec, params={"n_estimators": 20}, task=task, seed=3)
    np.testing.assert_array_equal(again.predict(X), estimator.predict(X))  # seeded
    info = save_model(estimator, tmp_path)
    assert (info.framework, info.file, info.trusted_types) == ("sklearn", "model.skops", [])
    np.testing.assert_array_equal(load_model(tmp_path).predict(X), estimator.predict(X))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("sklearn:os.system", "must name a class inside the sklearn package"),
        ("sklearn:subprocess.Popen", "must name a class inside the sklearn package"),
        ("sklearn:sklearnx.evil.Model", "must name a class inside the sklearn package"),
        ("sklearn:sklearn.ensemble.NoSuchForest", "scikit-learn has no"),
        ("sklearn:sklearn.nosuchmodule.Forest", "scikit-learn has no"),
        ("sklearn:sklearn.utils.Bunch", "is not a scikit-learn estimator"),
        ("sklearn:sklearn.preprocessing.StandardScaler", "is not a classifier"),
        ("sklearn:sklearn.ensemble.ExtraTreesRegressor", "is not a classifier"),
        ("sklearn:sklearn.ensemble.VotingClassifier", "cannot be built without arguments"),
        ("onnx:model", "framework 'onnx' loads models but does not train them"),
        ("tensorflow:keras.Model", "unknown framework 'tensorflow'"),
    ],
)
def test_a_trainer_outside_scikit_learn_estimators_is_refused(
    spec: str, match: str, species
) -> None:
    X, y = species
    with pytest.raises(ConfigError, match=match):
        train_model(X, y, spec=spec, task="classification")


def test_a_path_outside_sklearn_is_never_imported(
    species, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = species
    marker = tmp_path / "imported"
    (tmp_path / "evil_trainer.py").write_text(f"open({str(marker)!r}, 'w').close()\nModel = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="inside the sklearn package"):
        train_model(X, y, spec="sklearn:evil_trainer.Model", task="classification")
    assert not marker.exists() and "evil_trainer" not in sys.modules


def test_import_path_parameters_are_checked(species) -> None:
    X, y = species
    with pytest.raises(ConfigError, match=r"unknown parameter 'n_estimator'.*did you mean"):
        train_model(
            X,
            y,
            spec="sklearn:sklearn.ensemble.ExtraTreesClassifier",
            params={"n_estimator": 3},
            task="classification",
        )


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_xgboost_trains_saves_json_and_loads_the_same_predictions(
    task: str, species, mass, tmp_path: Path
) -> None:
    import xgboost

    X, y = mass if task == "regression" else species
    if task == "binary":
        y = (y == 0).astype(np.int64)
    kind = "regression" if task == "regression" else "classification"
    estimator = train_model(X, y, spec="xgboost", params={"n_estimators": 30}, task=kind)
    assert isinstance(estimator, xgboost.XGBModel)
    info = save_model(estimator, tmp_path)
    assert (info.framework, info.file, info.task) == ("xgboost", "model.xgb.json", kind)
    json.loads((tmp_path / "model.xgb.json").read_text())  # XGBoost's JSON model, no pickle
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
    if kind == "classification":
        # lockgate's softmax runs in float64 on XGBoost's float32 margins
        np.testing.assert_allclose(loaded.predict_proba(X), estimator.predict_proba(X), rtol=1e-4)
        assert info.classes == sorted(set(y.tolist()))
        assert np.mean(loaded.predict(X) == y) > 0.9


def test_xgboost_refuses_trust(species, tmp_path: Path) -> None:
    X, y = species
    estimator = train_model(X, y, spec="xgboost", params={"n_estimators": 5}, task="classification")
    with pytest.raises(ConfigError, match="applies to skops files; an XGBoost model"):
        save_model(estimator, tmp_path, trust=["numpy.float64"])


def test_framework_record_names_the_description_and_library_version() -> None:
    import sklearn
    import xgboost

    from lockgate.training.frameworks import get_framework

    assert framework_record("xgboost") == {
        "framework_description": get_framework("xgboost").description,
        "framework_version": xgboost.__version__,
    }
    assert framework_record("sklearn")["framework_version"] == sklearn.__version__
    assert framework_record("onnx")["framework_version"] is None  # loads, does not train


@pytest.mark.parametrize("spec", ["lightgbm", "xgboost"])
def test_boosters_stop_early_on_the_eval_split(
    spec: str, penguins_split: tuple[pa.Table, pa.Table], tmp_path: Path
) -> None:
    train, evaluation = (drop_missing_label(t, "species") for t in penguins_split)
    graph = TransformGraph.fit(train, label="species")
    X, y = graph.apply(train), graph.encode_label(train)
    eval_set = (graph.apply(evaluation), graph.encode_label(evaluation))
    params = {"n_estimators": 500, "learning_rate": 0.3, "early_stopping_rounds": 5}
    estimator = train_model(
        X, y, spec=spec, params=params, task="classification", eval_set=eval_set
    )
    best = estimator.best_iteration_ if spec == "lightgbm" else estimator.best_iteration
    assert 0 < best < 400  # it stopped well before 500 rounds
    save_model(estimator, tmp_path)
    loaded = load_model(tmp_path)  # the saved model is the one that predicts: the best round
    np.testing.assert_array_equal(loaded.predict(eval_set[0]), estimator.predict(eval_set[0]))
    np.testing.assert_allclose(
        loaded.predict_proba(eval_set[0]), estimator.predict_proba(eval_set[0]), rtol=1e-5
    )


def test_early_stopping_needs_an_eval_split_and_a_booster(species) -> None:
    X, y = species
    with pytest.raises(ConfigError, match="early_stopping_rounds needs the eval split"):
        train_model(
            X, y, spec="xgboost", params={"early_stopping_rounds": 5}, task="classification"
        )
    with pytest.raises(ConfigError, match="unknown parameter 'early_stopping_rounds'"):
        train_model(
            X,
            y,
            spec="random_forest",
            params={"early_stopping_rounds": 5},
            task="classification",
            eval_set=(X, y),
        )
