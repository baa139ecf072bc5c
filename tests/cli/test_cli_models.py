"""``lockgate models``: import models trained elsewhere (skops, LightGBM, XGBoost, ONNX) so
they serve like a pipeline's own, and move aliases (promote, rollback, canary)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from lockgate.cli.main import cli
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.reload import load_version, warm_up
from lockgate.serving.servable import read_samples

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
FEATURES = "bill_length_mm,flipper_length_mm"


def data(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = np.column_stack(
        [38.0 + 5.0 * y + rng.normal(0, 1.5, n), 190.0 + 12.0 * y + rng.normal(0, 4.0, n)]
    )
    return X, y


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "lockgate.toml").write_text('[project]\nname = "imports"\n')
    return folder


def run(project: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, [*args, "--project", str(project)], catch_exceptions=False)
    return result


def sklearn_file(folder: Path) -> tuple[Path, Callable[[np.ndarray], list[str]]]:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    X, y = data()
    model = LogisticRegression(max_iter=500).fit(X, np.array(SPECIES)[y])
    path = folder / "clf.skops"
    skops.io.dump(model, path)
    return path, lambda rows: model.predict(rows).tolist()


def lightgbm_file(folder: Path) -> tuple[Path, Callable[[np.ndarray], list[str]]]:
    import lightgbm

    X, y = data()
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
    path = folder / "clf.txt"
    model.booster_.save_model(str(path))
    return path, lambda rows: [SPECIES[i] for i in model.predict(rows)]


def xgboost_file(folder: Path) -> tuple[Path, Callable[[np.ndarray], list[str]]]:
    import xgboost

    X, y = data()
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    path = folder / "clf.json"
    model.save_model(str(path))
    return path, lambda rows: [SPECIES[i] for i in model.predict(rows)]


def onnx_file(folder: Path) -> tuple[Path, Callable[[np.ndarray], list[str]]]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = data()
    model = LogisticRegression(max_iter=500).fit(X, np.array(SPECIES)[y])
    path = folder / "clf.onnx"
    path.write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())
    return path, lambda rows: model.predict(rows).tolist()


@pytest.mark.parametrize(
    ("make", "extra"),
    [
        (sklearn_file, []),
        (lightgbm_file, ["--classes", ",".join(SPECIES)]),
        (xgboost_file, ["--classes", ",".join(SPECIES)]),
        (onnx_file, []),
    ],
    ids=["skops", "lightgbm", "xgboost", "onnx"],
)
def test_an_imported_classifier_serves_like_the_original(
    project: Path, tmp_path: Path, make: Any, extra: list[str]
) -> None:
    path, original = make(tmp_path)
    result = run(
        project,
        "models",
        "import",
        str(path),
        "--name",
        "species",
        "--features",
        FEATURES,
        "--label",
        "species",
        *extra,
    )
    assert result.exit_code == 0, result.output
    assert "as model 'species' version 1, not blessed" in result.output
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        version = Registry(store).get("species", 1)
        assert not version.blessed and version.properties["source"] == "import"
        pushed = version.artifact
        assert pushed.type_name == "PushedModel" and pushed.fingerprint
        servable = load_version("species", version)  # sha256 and fingerprint checked
        warm_up(servable, read_samples(pushed.uri, servable.transform))
        X, _ = data(30, seed=9)
        answer = servable.predict({"bill_length_mm": X[:, 0], "flipper_length_mm": X[:, 1]})
        assert answer["predicted"].tolist() == original(X)
        assert answer["probabilities"].shape == (30, 3)
        np.testing.assert_allclose(answer["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
        # the evaluator's path: transform + model, class indices out
        from lockgate.training.model_import import load_any_model

        model = load_any_model(Path(pushed.uri) / "model", sha256=pushed.properties["model_sha256"])
        indices = model.predict(
            servable.transform.apply(
                pa.table({"bill_length_mm": X[:, 0], "flipper_length_mm": X[:, 1]})
            )
        )
        assert [SPECIES[i] for i in indices] == original(X)
    finally:
        store.close()


def test_an_imported_regressor_and_a_transform_file(project: Path, tmp_path: Path) -> None:
    import xgboost

    from lockgate.training.transform import TransformGraph

    X, y = data()
    table = pa.table({"bill_length_mm": X[:, 0], "flipper_length_mm": X[:, 1], "mass": y * 1.0})
    graph = TransformGraph.fit(table, label="mass", task="regression")
    model = xgboost.XGBRegressor(n_estimators=10).fit(graph.apply(table), y * 1.0)
    model.save_model(str(tmp_path / "reg.ubj"))
    graph.save(tmp_path / "transform")
    result = run(
        project,
        "models",
        "import",
        str(tmp_path / "reg.ubj"),
        "--name",
        "mass",
        "--transform",
        str(tmp_path / "transform" / "transform.json"),
        "--bless",
        "--reason",
        "validated offline by the data science team",
    )
    assert result.exit_code == 0, result.output
    assert "version 1, blessed" in result.output
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        version = Registry(store).get("mass", 1)
        assert version.blessed and "offline" in version.properties["bless_reason"]
        answer = load_version("mass", version).predict(
            {"bill_length_mm": X[:5, 0], "flipper_length_mm": X[:5, 1]}
        )
        np.testing.assert_allclose(
            answer["predicted"], model.predict(graph.apply(table)[:5]), rtol=1e-5
        )
    finally:
        store.close()


def test_imports_that_cannot_serve_are_refused(project: Path, tmp_path: Path) -> None:
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"\x80\x04K\x01.")
    result = run(project, "models", "import", str(pickle), "--name", "m", "--features", "a")
    assert result.exit_code == 2 and "looks like a pickle" in result.output
    assert "skops.io.dump" in result.output
    path, _ = sklearn_file(tmp_path)
    result = run(project, "models", "import", str(path), "--name", "m", "--features", "a,b,c")
    assert result.exit_code == 2 and "produces 3 columns" in result.output
    result = run(project, "models", "import", str(path), "--name", "m")
    assert result.exit_code == 2 and "exactly one of --transform" in result.output
    result = run(
        project, "models", "import", str(path), "--name", "m", "--features", FEATURES, "--bless"
    )
    assert result.exit_code == 2 and "--bless needs a --reason" in result.output
    assert not list((project / ".lockgate" / "artifacts" / ".tmp").glob("*"))


def test_list_promote_canary_rollback_history(project: Path, tmp_path: Path) -> None:
    path, _ = sklearn_file(tmp_path)
    for _ in range(2):
        assert (
            run(
                project,
                "models",
                "import",
                str(path),
                "--name",
                "clf",
                "--features",
                FEATURES,
                "--bless",
                "--reason",
                "offline check",
            ).exit_code
            == 0
        )
    assert "promoted" not in run(project, "models", "list").output
    result = run(project, "models", "promote", "clf", "1")
    assert result.output.strip() == "model 'clf': production -> version 1"
    assert run(project, "models", "promote", "clf", "2").output.strip().endswith("(was 1)")
    result = run(project, "models", "canary", "clf", "1", "--percent", "5")
    assert "canary -> version 1, 5% of requests" in result.output
    listing = run(project, "models", "list", "--json")
    assert json.loads(listing.output) == [
        {"name": "clf", "versions": 2, "aliases": {"canary": 1, "production": 2}, "servers": []}
    ]
    versions = run(project, "models", "list", "clf").output
    assert "import" in versions and "production" in versions
    assert "canary stopped" in run(project, "models", "canary", "clf", "--stop").output
    result = run(project, "models", "rollback", "clf", "--reason", "v2 drifted")
    assert result.output.strip() == "model 'clf': production -> version 1 (was 2)"
    history = run(project, "models", "history", "clf").output.splitlines()
    assert "production -> 1" in history[0] and "v2 drifted" in history[0]
    result = run(project, "models", "promote", "nope", "1")
    assert result.exit_code == 2 and "no model named 'nope'" in result.output
