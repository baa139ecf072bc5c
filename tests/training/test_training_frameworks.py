"""Every registered framework against one conformance check, the registry's errors, and a
third party's framework found through a real ``lockgate.frameworks`` entry point."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lockgate.errors import ConfigError, ModelIntegrityError
from lockgate.training.frameworks import Framework, frameworks, get_framework, registry
from lockgate.training.model_files import META_FILE, load_model, save_model
from lockgate.training.model_import import import_model_files, load_any_model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def _sklearn(folder: Path) -> tuple[Path, Any]:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = folder / "clf.skops"
    skops.io.dump(model, path)
    return path, model.predict_proba(X)


def _lightgbm(folder: Path) -> tuple[Path, Any]:
    import lightgbm

    X, y = _data()
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    path = folder / "clf.txt"
    model.booster_.save_model(str(path))
    return path, model.predict_proba(X)


def _xgboost(folder: Path) -> tuple[Path, Any]:
    import xgboost

    X, y = _data()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    path = folder / "clf.json"
    model.save_model(str(path))
    return path, model.predict_proba(X)


def _onnx(folder: Path) -> tuple[Path, Any]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = folder / "clf.onnx"
    path.write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())
    return path, model.predict_proba(X)


def _pytorch(folder: Path) -> tuple[Path, Any]:
    """An MLP trained by plain PyTorch, saved as safetensors with lockgate's architecture."""
    import torch
    from safetensors.torch import save_file

    X, y = _data()
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    features, target = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(50):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(features), target).backward()
        optimizer.step()
    architecture = {
        "format": "lockgate.pytorch/1",
        "task": "classification",
        "n_features": 4,
        "n_outputs": 2,
        "classes": [0, 1],
        "target": None,
        "dtype": "float32",
        "module": {"kind": "mlp", "hidden_layers": [8], "activation": "relu", "dropout": 0.0},
    }
    path = folder / "clf.safetensors"
    save_file(module.state_dict(), path, metadata={"lockgate": json.dumps(architecture)})
    with torch.inference_mode():
        return path, torch.softmax(module(features).double(), dim=1).numpy()


#: one model file per built-in framework; a new framework adds its own here
EXAMPLES: dict[str, Callable[[Path], tuple[Path, Any]]] = {
    "sklearn": _sklearn,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "onnx": _onnx,
    "pytorch": _pytorch,
}


def test_every_builtin_framework_has_a_conformance_example() -> None:
    assert set(frameworks()) == set(EXAMPLES)
    for framework in frameworks().values():
        assert isinstance(framework, Framework)
        assert framework.description and framework.suffixes


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_framework_loads_its_file_checked_and_predicts_as_its_library(
    name: str, tmp_path: Path
) -> None:
    source, expected = EXAMPLES[name](tmp_path)
    info = import_model_files(source, tmp_path / "model")
    assert info.framework == name
    framework = get_framework(name)
    loaded = load_any_model(tmp_path / "model", sha256=info.sha256, trusted=[])
    X, _ = _data()
    _, proba = loaded.predict_with_proba(X)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_array_equal(loaded.predict(X), np.argmax(expected, axis=1))
    assert framework.describe(loaded.model) == ("classification", 4, [0, 1])
    path = tmp_path / "model" / info.file
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(ModelIntegrityError, match=f"model file {path} has sha256 .* expected"):
        load_any_model(tmp_path / "model", sha256=info.sha256, trusted=[])


@pytest.mark.parametrize("name", ["sklearn", "lightgbm"])
def test_a_framework_that_saves_round_trips_a_trained_model(name: str, tmp_path: Path) -> None:
    import lightgbm
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data()
    estimator = (
        lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)
        if name == "lightgbm"
        else RandomForestClassifier(n_estimators=5, random_state=0)
    ).fit(X, y)
    info = save_model(estimator, tmp_path)
    assert info.framework == name
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), estimator.predict_proba(X))


def test_an_unknown_framework_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown framework 'sklern'.*did you mean 'sklearn'"):
        get_framework("sklern")


def test_an_object_that_is_not_a_framework_is_not_registered() -> None:
    with pytest.raises(ConfigError, match="is not a lockgate Framework; it lacks"):
        registry.register_framework(object())  # type: ignore[arg-type]


THIRD_PARTY = '''
    """A third party's framework: a linear regressor saved as JSON."""
    import json

    import numpy as np


    class Linear:
        def fit(self, X, y):
            X1 = np.column_stack([X, np.ones(len(X))])
            self.coef_ = np.linalg.lstsq(X1, y, rcond=None)[0]
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X):
            return np.column_stack([X, np.ones(len(X))]) @ self.coef_


    class LinearJson:
        name = "linjson"
        description = "linear regressors as JSON coefficients (model.linjson)"
        suffixes = (".linjson",)
        takes_trust = False
        predicts_labels = False
        format_name = "a linjson model"

        def claims(self, estimator):
            return "regression" if isinstance(estimator, Linear) else None

        def save(self, estimator, folder, *, trusted):
            (folder / "model.linjson").write_text(json.dumps({"coef": list(estimator.coef_)}))
            return "model.linjson", []

        def file_name(self, source):
            return "model.linjson"

        def check_import(self, data, source, trusted):
            return None

        def is_own_format(self, data):
            return data.startswith(b'{"coef"')

        def load(self, data, path, *, trusted):
            model = Linear()
            model.coef_ = np.asarray(json.loads(data)["coef"])
            model.n_features_in_ = len(model.coef_) - 1
            return model

        def predict(self, model, X):
            return model.predict(X)

        def predict_proba(self, model, X):
            return None

        def describe(self, model):
            return "regression", model.n_features_in_, None
'''


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An installed distribution (a dist-info on sys.path) declaring the entry point, and a
    registry that has not been loaded yet."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "lockgate_linjson.py").write_text(textwrap.dedent(THIRD_PARTY))
    dist = site / "lockgate_linjson-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lockgate-linjson\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[lockgate.frameworks]\nlinjson = lockgate_linjson:LinearJson\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.delitem(__import__("sys").modules, "lockgate_linjson", raising=False)
    import lockgate_linjson  # type: ignore[import-not-found]

    return lockgate_linjson


def test_a_third_party_framework_from_an_entry_point_trains_imports_and_serves(
    third_party: Any, tmp_path: Path
) -> None:
    assert "linjson" in frameworks()
    X, y = _data()
    estimator = third_party.Linear().fit(X, y * 1.0)
    info = save_model(estimator, tmp_path / "trained")
    assert (info.framework, info.task, info.n_features) == ("linjson", "regression", 4)
    loaded = load_any_model(tmp_path / "trained")
    np.testing.assert_allclose(loaded.predict(X), estimator.predict(X))
    source = tmp_path / "coef.linjson"
    source.write_bytes((tmp_path / "trained" / "model.linjson").read_bytes())
    imported = import_model_files(source, tmp_path / "imported")
    assert json.loads((tmp_path / "imported" / META_FILE).read_text())["framework"] == "linjson"
    served = load_any_model(tmp_path / "imported", sha256=imported.sha256, trusted=[])
    np.testing.assert_allclose(served.predict(X), estimator.predict(X))
    (tmp_path / "imported" / "model.linjson").write_text('{"coef": [0, 0, 0, 0, 1]}')
    with pytest.raises(ModelIntegrityError, match="it changed after it was imported"):
        load_any_model(tmp_path / "imported", sha256=imported.sha256, trusted=[])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_framework_loads_the_bytes_that_were_checked_not_the_file_again(
    name: str, tmp_path: Path
) -> None:
    """Between the sha256 check and the load the file could be swapped: each framework
    reads the checked bytes it is handed, never the path (here gone before the load)."""
    path, expected = EXAMPLES[name](tmp_path)
    data = path.read_bytes()
    path.unlink()
    framework = get_framework(name)
    model = framework.load(data, path, trusted=())
    X, _ = _data()
    proba = framework.predict_proba(model, X)
    assert proba is not None
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-4)
