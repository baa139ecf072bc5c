"""``lockgate models import`` and the server refuse a crafted model file before anything in
it runs, and load a type outside lockgate's allowlist only when someone trusted it by name
(``--trust TYPE``), which the registry records with the version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io
from click.testing import CliRunner, Result
from crafted_models import CRAFTED, craft, data, pushed_folder, register_pushed
from support import lockgate

from lockgate.cli.main import cli
from lockgate.errors import UntrustedModelError
from lockgate.evaluation.components import load_pushed
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.reload import load_version, warm_up
from lockgate.serving.servable import read_samples

FEATURES = "bill_length_mm,flipper_length_mm"
KNN_TYPES = [
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "lockgate.toml").write_text('[project]\nname = "trust"\n')
    return folder


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--project", str(project)], catch_exceptions=False)


def import_args(path: Path, *extra: str) -> list[str]:
    return ["models", "import", str(path), "--name", "clf", "--features", FEATURES, *extra]


def registry_of(project: Path) -> tuple[SqlMetadataStore, Registry]:
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    return store, Registry(store)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("error:", "hint:"))]


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_crafted_file_is_refused_at_import_and_nothing_runs(
    kind: str, project: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    result = run(project, *import_args(craft(kind, tmp_path, marker)))
    assert result.exit_code == 2, result.output
    error, hint = error_lines(result.output)
    for name in CRAFTED[kind]:
        assert name in error
    assert "nothing in it was run" in error
    assert hint.startswith("hint: ")
    assert not marker.exists()
    store, registry = registry_of(project)
    try:
        assert registry.models() == []
    finally:
        store.close()
    assert not list((project / ".lockgate" / "artifacts" / ".staging").glob("*"))


def test_the_real_command_refuses_a_forest_with_a_payload(project: Path, tmp_path: Path) -> None:
    """A working random forest, with a payload in one tree's attributes."""
    marker = tmp_path / "marker"
    path = craft("payload_in_forest", tmp_path, marker)
    done = lockgate(*import_args(path), "--project", str(project), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    error, hint = error_lines(done.stderr)
    assert "not trusted: ['numpy.testing._private.utils.runstring']" in error
    assert str(path) in error and "no --trust admits them" in error
    assert hint == "hint: this file can never be loaded: rebuild the model without those types"
    trust = run(project, *import_args(path, "--trust", "numpy.testing._private.utils.runstring"))
    assert trust.exit_code == 2 and "cannot trust" in trust.output
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_crafted_version_in_the_registry_is_refused_at_serve_and_evaluation(
    kind: str, store: SqlMetadataStore, tmp_path: Path
) -> None:
    """Someone with write access to the store and the artifacts registers a crafted model
    with every sha256 and fingerprint right: the server and the evaluator still refuse it."""
    marker = tmp_path / "marker"
    folder = pushed_folder(
        tmp_path / "pushed", craft(kind, tmp_path, marker), FEATURES.split(","), ["a", "b", "c"]
    )
    version = register_pushed(store, folder, "clf", trusted_types=CRAFTED[kind])
    with pytest.raises(UntrustedModelError) as refused:
        load_version("clf", version)
    assert set(CRAFTED[kind]) & set(refused.value.types)
    with pytest.raises(UntrustedModelError):
        load_pushed(version.artifact)  # the baseline of a candidate's evaluation
    assert not marker.exists()


def _knn_file(folder: Path) -> tuple[Path, object]:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = data()
    knn = KNeighborsClassifier().fit(X, np.array(["Adelie", "Chinstrap", "Gentoo"])[y])
    path = folder / "knn.skops"
    skops.io.dump(knn, path)
    return path, knn


def test_trust_by_name_imports_a_harmless_type_and_the_server_loads_it(
    project: Path, tmp_path: Path
) -> None:
    path, knn = _knn_file(tmp_path)
    refused = run(project, *import_args(path))
    assert refused.exit_code == 2
    error, hint = error_lines(refused.output)
    assert f"not trusted: {KNN_TYPES}" in error
    assert " ".join(f"--trust {name}" for name in KNN_TYPES) in hint
    flags = [arg for name in KNN_TYPES for arg in ("--trust", name)]
    result = run(project, *import_args(path, *flags))
    assert result.exit_code == 0, result.output
    assert f"recorded with the version: {', '.join(KNN_TYPES)}" in result.output
    store, registry = registry_of(project)
    try:
        version = registry.get("clf", 1)
        assert version.properties["trusted_types"] == KNN_TYPES
        assert version.artifact.properties["trusted_types"] == KNN_TYPES
        meta = json.loads((Path(version.artifact.uri) / "model" / "model.json").read_text())
        assert meta["trusted_types"] == KNN_TYPES
        servable = load_version("clf", version)
        warm_up(servable, read_samples(version.artifact.uri, servable.transform))
        X, _ = data(25, seed=4)
        answer = servable.predict({"bill_length_mm": X[:, 0], "flipper_length_mm": X[:, 1]})
        assert answer["predicted"].tolist() == knn.predict(X).tolist()  # type: ignore[attr-defined]
    finally:
        store.close()


def test_the_server_trusts_what_the_version_records_not_what_the_folder_says(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    path, _ = _knn_file(tmp_path)
    folder = pushed_folder(tmp_path / "pushed", path, FEATURES.split(","), ["a", "b", "c"])
    meta = folder / "model" / "model.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "trusted_types": KNN_TYPES}))
    version = register_pushed(store, folder, "clf", trusted_types=[])  # nobody trusted them
    with pytest.raises(UntrustedModelError, match="not trusted"):
        load_version("clf", version)


def test_trust_is_only_for_what_the_file_needs(project: Path, tmp_path: Path) -> None:
    path, _ = _knn_file(tmp_path)
    extra = run(project, *import_args(path, "--trust", KNN_TYPES[0], "--trust", KNN_TYPES[1],
                                      "--trust", "sklearn.svm._classes.SVC"))  # fmt: skip
    assert extra.exit_code == 2 and "does not hold" in extra.output
    code_runner = run(project, *import_args(path, "--trust", "builtins.exec"))
    assert code_runner.exit_code == 2 and "cannot trust ['builtins.exec']" in code_runner.output
    import lightgbm

    X, y = data()
    booster = tmp_path / "clf.txt"
    lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y).booster_.save_model(booster)
    other = run(project, *import_args(booster, "--classes", "a,b,c", "--trust", KNN_TYPES[0]))
    assert other.exit_code == 2 and "--trust applies to skops files" in other.output


def test_a_pickle_named_like_a_skops_file_is_refused(project: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "model.skops"
    disguised.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    result = run(project, *import_args(disguised))
    assert result.exit_code == 2 and "is a pickle" in result.output
