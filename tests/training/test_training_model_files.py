from __future__ import annotations

import json
import operator
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from lockgate.errors import (
    ConfigError,
    DataError,
    ModelError,
    ModelIntegrityError,
    UntrustedModelError,
)
from lockgate.training.model_files import load_model, save_model
from lockgate.training.trainers import train_model

TESTDATA = Path(__file__).parents[1] / "testdata" / "models"
SPECS = ["lightgbm", "random_forest", "gradient_boosting", "logistic_regression"]


def _data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(240, 5))
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.3, size=240)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("spec", SPECS)
def test_round_trip_predicts_the_same(spec: str, n_classes: int, tmp_path: Path) -> None:
    X, y = _data(n_classes)
    model = train_model(X, y, spec=spec, task="classification")
    info = save_model(model, tmp_path)
    assert info.file == ("model.txt" if spec == "lightgbm" else "model.skops")
    assert info.classes == list(range(n_classes))
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["sha256"] == info.sha256 and meta["n_features"] == 5
    loaded = load_model(tmp_path, sha256=info.sha256)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    proba = loaded.predict_proba(X)
    assert proba is not None and proba.shape == (240, n_classes)
    assert np.allclose(proba, model.predict_proba(X), rtol=0, atol=1e-12)
    labels, once = loaded.predict_with_proba(X)  # the server's one-pass call
    assert np.array_equal(labels, loaded.predict(X)) and once is not None
    assert np.array_equal(once, proba)


@pytest.mark.parametrize(
    "spec", ["lightgbm", "random_forest", "gradient_boosting", "linear_regression"]
)
def test_regression_round_trip(spec: str, tmp_path: Path) -> None:
    X, _ = _data(2)
    y = X @ np.arange(1.0, 6.0)
    model = train_model(X, y, spec=spec, task="regression")
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.task == "regression"
    assert np.allclose(loaded.predict(X), model.predict(X), rtol=0, atol=1e-9)
    assert loaded.predict_proba(X) is None


def test_proba_columns_follow_class_indices_when_a_class_is_absent(tmp_path: Path) -> None:
    X, y = _data(3)
    keep = y != 1  # the train split happened to hold no class 1
    model = train_model(X[keep], y[keep], spec="lightgbm", task="classification")
    save_model(model, tmp_path)
    proba = load_model(tmp_path).predict_proba(X)
    assert proba is not None and proba.shape == (240, 3)
    assert np.all(proba[:, 1] == 0.0)
    assert np.allclose(proba[:, [0, 2]], model.predict_proba(X))
    assert set(load_model(tmp_path).predict(X)) <= {0, 2}


@pytest.mark.parametrize("spec", ["lightgbm", "random_forest"])
def test_tampered_file_is_refused_before_loading(spec: str, tmp_path: Path) -> None:
    X, y = _data(2)
    info = save_model(train_model(X, y, spec=spec, task="classification"), tmp_path)
    path = tmp_path / info.file
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(
        ModelIntegrityError, match=rf"{info.file} has sha256 .*expected {info.sha256}"
    ):
        load_model(tmp_path)


def test_expected_sha256_argument_wins(tmp_path: Path) -> None:
    X, y = _data(2)
    save_model(train_model(X, y, spec="lightgbm", task="classification"), tmp_path)
    with pytest.raises(ModelIntegrityError, match="expected 0000"):
        load_model(tmp_path, sha256="0" * 64)


def test_corrupt_lightgbm_file_is_a_model_error(tmp_path: Path) -> None:
    shutil.copytree(TESTDATA / "corrupt", tmp_path / "corrupt")
    with pytest.raises(ModelError, match="model.txt is not a readable LightGBM model") as info:
        load_model(tmp_path / "corrupt")
    assert not isinstance(info.value, ModelIntegrityError)
    assert info.value.path == str(tmp_path / "corrupt" / "model.txt")


def test_corrupt_skops_file_is_a_model_error(tmp_path: Path) -> None:
    X, y = _data(2)
    info = save_model(train_model(X, y, spec="random_forest", task="classification"), tmp_path)
    (tmp_path / "model.skops").write_bytes(b"PK\x03\x04 definitely not a zip")
    meta = json.loads((tmp_path / "model.json").read_text())
    from lockgate.training.model_files import file_sha256

    meta["sha256"] = file_sha256(tmp_path / "model.skops")
    (tmp_path / "model.json").write_text(json.dumps(meta))
    assert meta["sha256"] != info.sha256
    with pytest.raises(ModelError, match="model.skops is not a readable skops file"):
        load_model(tmp_path)


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    import skops.io
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = _data(2)
    # a random forest holds sklearn types that skops does not trust by default: accepted
    forest = save_model(train_model(X, y, spec="random_forest", task="classification"), tmp_path)
    assert skops.io.get_untrusted_types(file=tmp_path / forest.file) == ["sklearn.tree._tree.Tree"]
    assert load_model(tmp_path).predict(X).shape == (240,)
    # a function outside the allowlist is refused when saved, unless trusted by name
    pipeline = Pipeline([("f", FunctionTransformer(operator.neg)), ("m", LogisticRegression())])
    pipeline.fit(X, y)
    other = tmp_path / "other"
    with pytest.raises(UntrustedModelError, match=r"not trusted: \['_operator.neg'\]"):
        save_model(pipeline, other)
    assert save_model(pipeline, other, trust=["_operator.neg"]).trusted_types == ["_operator.neg"]
    assert load_model(other).predict(X).shape == (240,)
    with pytest.raises(UntrustedModelError, match=r"not trusted: \['_operator.neg'\]"):
        load_model(other, trusted=[])  # the store's record wins over model.json's
    pipeline.set_params(f__func=eval)  # a code runner: refused, and no trust admits it
    with pytest.raises(
        UntrustedModelError, match=r"not trusted: \['builtins.eval'\].*no --trust admits"
    ):
        save_model(pipeline, tmp_path / "evil")
    with pytest.raises(ConfigError, match=r"cannot trust \['builtins.eval'\]"):
        save_model(pipeline, tmp_path / "evil", trust=["builtins.eval"])


def test_unsupported_estimator_and_wrong_width(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot save a builtins.object"):
        save_model(object(), tmp_path)
    X, y = _data(2)
    save_model(train_model(X, y, spec="lightgbm", task="classification"), tmp_path)
    with pytest.raises(DataError, match=r"expects a 2-D matrix with 5 columns; got shape \(3, 4\)"):
        load_model(tmp_path).predict(np.zeros((3, 4)))


def test_missing_or_broken_description(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model.json"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("[")
    with pytest.raises(ModelError, match="model.json is not a valid model description"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(
        json.dumps(
            {
                "framework": "lightgbm",
                "file": "../x",
                "sha256": "",
                "task": "regression",
                "n_features": 1,
            }
        )
    )
    with pytest.raises(ModelError, match="must be a plain name"):
        load_model(tmp_path)
