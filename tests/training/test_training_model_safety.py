"""A model file is data, never code: what a crafted file can ask of each loader, refused
before anything in it runs (a payload would write a marker file; it is never there)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io
from crafted_models import CRAFTED, craft, data

from lockgate.errors import ConfigError, ModelError, ModelIntegrityError, UntrustedModelError
from lockgate.training import skops_trust
from lockgate.training.model_files import META_FILE, ModelFileInfo, load_model, save_model
from lockgate.training.model_import import import_model_files, load_any_model
from lockgate.training.trainers import specs, train_model


def _model_folder(folder: Path, model_file: Path) -> Path:
    """A model/ folder whose model.json describes ``model_file`` (sha256 and all)."""
    from lockgate.training.model_files import file_sha256

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.skops"
    target.write_bytes(model_file.read_bytes())
    info = ModelFileInfo("sklearn", target.name, file_sha256(target), "classification", 2, [0, 1])
    (folder / META_FILE).write_text(json.dumps(info.to_dict()))
    return folder


def _trainer_outputs() -> list[tuple[str, str, int | None]]:
    return [
        (spec, task, k)
        for spec, tasks in specs().items()
        for task in tasks
        for k in ((2, 3) if task == "classification" else (None,))
    ]


def test_every_builtin_trainer_loads_with_no_extra_trust(tmp_path: Path) -> None:
    """The allowlist is exactly what lockgate's trainers produce: a scikit-learn or skops
    upgrade that changes it fails here, not at a user's import."""
    X, _ = data()
    rng = np.random.default_rng(0)
    needed: set[str] = set()
    for i, (spec, task, k) in enumerate(_trainer_outputs()):
        y = rng.integers(0, k, len(X)) if k else X[:, 0] * 2.0 + rng.normal(size=len(X))
        estimator = train_model(X, y, spec=spec, task=task)
        info = save_model(estimator, tmp_path / str(i))
        assert info.trusted_types == []
        loaded = load_model(tmp_path / str(i), trusted=[])
        np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
        if info.file.endswith(".skops"):
            needed |= set(skops.io.get_untrusted_types(file=tmp_path / str(i) / info.file))
    assert needed == skops_trust.ALLOWED_TYPES
    assert all("*" not in name and not name.endswith(".") for name in skops_trust.ALLOWED_TYPES)


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_crafted_skops_file_is_refused_and_nothing_runs(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = _model_folder(tmp_path / "model", craft(kind, tmp_path, marker))
    with pytest.raises(UntrustedModelError) as refused:
        load_model(folder)
    assert set(CRAFTED[kind]) <= set(refused.value.types)
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_crafted_skops_file_is_refused_at_import(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    source = craft(kind, tmp_path, marker)
    with pytest.raises(UntrustedModelError, match="not trusted|run code") as refused:
        import_model_files(source, tmp_path / "imported")
    assert set(CRAFTED[kind]) <= set(refused.value.types)
    assert not marker.exists()


def test_no_trust_admits_a_code_runner(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    source = craft("runstring_reduce", tmp_path, marker)
    runner = "numpy.testing._private.utils.runstring"
    with pytest.raises(ConfigError, match=r"cannot trust \['numpy.testing._private.utils"):
        import_model_files(source, tmp_path / "a", trust=[runner])
    # a trust recorded by someone who can write the store is no better
    with pytest.raises(UntrustedModelError, match="run code or touch the system"):
        load_model(_model_folder(tmp_path / "b", source), trusted=[runner])
    for name in ("builtins.exec", "os.system", "subprocess.Popen", "operator.methodcaller"):
        with pytest.raises(ConfigError, match="cannot trust"):
            skops_trust.check_trust([name])
    with pytest.raises(ConfigError, match="full type names"):
        skops_trust.check_trust(["sklearn.*"])
    assert not marker.exists()


def _knn() -> object:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = data()
    return KNeighborsClassifier().fit(X, y)


KNN_TYPES = [
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
]


def test_a_type_outside_the_allowlist_needs_trust_by_name_and_it_is_recorded(
    tmp_path: Path,
) -> None:
    knn = _knn()
    with pytest.raises(UntrustedModelError, match="not trusted") as refused:
        save_model(knn, tmp_path / "a")
    assert refused.value.types == KNN_TYPES
    assert f"train(..., trust={KNN_TYPES})" in (refused.value.hint or "")
    assert not (tmp_path / "a" / "model.skops").exists()
    with pytest.raises(ConfigError, match="does not hold"):
        save_model(knn, tmp_path / "a", trust=[*KNN_TYPES, "sklearn.svm._classes.SVC"])
    info = save_model(knn, tmp_path / "a", trust=KNN_TYPES)
    assert json.loads((tmp_path / "a" / META_FILE).read_text())["trusted_types"] == KNN_TYPES
    assert info.trusted_types == KNN_TYPES
    X, _ = data(20, seed=3)
    assert load_model(tmp_path / "a").predict(X).tolist() == knn.predict(X).tolist()
    # the caller's record (the store's) decides, not model.json
    with pytest.raises(UntrustedModelError, match=r"not trusted: \['sklearn.neighbors") as refused:
        load_model(tmp_path / "a", trusted=KNN_TYPES[:1])
    assert "--trust sklearn.neighbors._kd_tree.KDTree (a pipeline's own" in str(refused.value.hint)
    # the same file imported: refused without --trust, recorded with it
    source = tmp_path / "knn.skops"
    skops.io.dump(knn, source)
    with pytest.raises(UntrustedModelError) as refused:
        import_model_files(source, tmp_path / "b")
    assert "--trust sklearn.metrics._dist_metrics.EuclideanDistance64 --trust sklearn" in str(
        refused.value.hint
    )
    info = import_model_files(source, tmp_path / "c", trust=KNN_TYPES)
    assert info.trusted_types == KNN_TYPES
    assert load_any_model(tmp_path / "c").predict(X).shape == (20,)


def _forest(tmp_path: Path) -> tuple[object, Path]:
    from sklearn.ensemble import RandomForestClassifier

    X, y = data()
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    return forest, tmp_path


def _tampered_tree(tmp_path: Path, change: str) -> Path:
    forest, _ = _forest(tmp_path)
    tree = forest.estimators_[1].tree_  # type: ignore[attr-defined]
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    inner = int(np.flatnonzero(nodes["left_child"] != -1)[0])
    if change == "child":
        nodes["left_child"][inner] = 10**6
    elif change == "cycle":
        nodes["right_child"][inner] = inner
    elif change == "feature":
        nodes["feature"][inner] = 99
    state = {**state, "nodes": nodes}
    if change == "max_depth":
        state["max_depth"] = 1
    tree.__setstate__(state)
    source = tmp_path / f"{change}.skops"
    skops.io.dump(forest, source)
    return _model_folder(tmp_path / change, source)


@pytest.mark.parametrize("change", ["child", "cycle", "feature", "max_depth"])
def test_a_tree_whose_indices_point_outside_it_is_refused_before_predict(
    change: str, tmp_path: Path
) -> None:
    """skops trusts no Tree by default because predict indexes its arrays without bounds
    checks; lockgate needs the type, so it checks the structure instead."""
    with pytest.raises(ModelError, match="malformed tree"):
        load_model(_tampered_tree(tmp_path, change))


def test_a_gradient_boosting_predictor_out_of_range_is_refused(tmp_path: Path) -> None:
    X, y = data()
    estimator = train_model(X, y, spec="gradient_boosting", task="classification", params={})
    predictor = estimator._predictors[0][0]
    inner = int(np.flatnonzero(predictor.nodes["is_leaf"] == 0)[0])
    predictor.nodes["left"][inner] = 10**6
    source = tmp_path / "hgb.skops"
    skops.io.dump(estimator, source)
    with pytest.raises(ModelError, match="malformed tree"):
        load_model(_model_folder(tmp_path / "m", source))


# -- every format: its own bytes or nothing ---------------------------------------------------


def _pickle_bytes() -> bytes:
    return b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."


def _torch_like_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _pickle_bytes())
        archive.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("name", ["model.skops", "model.txt", "model.json", "model.onnx"])
def test_a_pickle_is_refused_whatever_its_name(name: str, tmp_path: Path) -> None:
    source = tmp_path / name
    source.write_bytes(_pickle_bytes())
    with pytest.raises(ModelError, match="is a pickle"):
        import_model_files(source, tmp_path / "a")
    archive = _torch_like_zip(tmp_path / f"torch-{name}")
    with pytest.raises(ModelError, match=r"PyTorch or pickle archive \(it holds archive/data.pkl"):
        import_model_files(archive, tmp_path / "b")


def test_a_pickle_in_a_pipeline_model_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "model.skops").parent.mkdir()
    (folder / "model.skops").write_bytes(_pickle_bytes())
    _model_folder(folder, folder / "model.skops")
    with pytest.raises(ModelError, match="is a pickle"):
        load_model(folder)


def test_boosters_only_from_their_own_formats(tmp_path: Path) -> None:
    import lightgbm

    X, y = data()
    booster = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y).booster_
    dumped = tmp_path / "dump.txt"  # LightGBM's JSON dump, not its model format
    dumped.write_text(json.dumps(booster.dump_model()))
    with pytest.raises(ModelError, match="is not LightGBM's text model"):
        import_model_files(dumped, tmp_path / "a")
    binary = tmp_path / "old.json"  # neither JSON nor UBJ
    binary.write_bytes(b"binf\x00\x00\x00\x00")
    with pytest.raises(ModelError, match="is not XGBoost's JSON or UBJ model"):
        import_model_files(binary, tmp_path / "b")


def _onnx_model(tmp_path: Path) -> object:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = data()
    return to_onnx(LogisticRegression(max_iter=500).fit(X, y), X[:1].astype(np.float32))


def test_an_onnx_model_needing_a_custom_operator_library_is_refused(tmp_path: Path) -> None:
    import onnx

    model = _onnx_model(tmp_path)
    model.graph.node[0].domain = "com.example.custom"  # type: ignore[attr-defined]
    model.opset_import.append(onnx.helper.make_opsetid("com.example.custom", 1))  # type: ignore[attr-defined]
    path = tmp_path / "custom.onnx"
    path.write_bytes(model.SerializeToString())  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match=r"operators from \['com.example.custom'\].*never loads"):
        import_model_files(path, tmp_path / "a")


def test_an_onnx_model_with_external_data_is_refused(tmp_path: Path) -> None:
    """onnxruntime would read the file the tensor names, relative to the model: a crafted
    model reads any file on the server. Refused before a session exists."""
    from onnx import TensorProto, helper

    secret = tmp_path / "secret.bin"  # a file outside the model's folder
    secret.write_bytes(np.array([1.0, 2.0], dtype=np.float32).tobytes())
    weights = helper.make_tensor("w", TensorProto.FLOAT, [2, 1], [0.0, 0.0])
    weights.ClearField("float_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "8")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "regression",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "models" / "external.onnx"
    path.parent.mkdir()
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match=r"keeps tensors \['w'\] in external files"):
        import_model_files(path, tmp_path / "a")


def test_the_onnx_domains_that_ship_inside_onnxruntime_load(tmp_path: Path) -> None:
    path = tmp_path / "clf.onnx"
    path.write_bytes(_onnx_model(tmp_path).SerializeToString())  # type: ignore[attr-defined]
    info = import_model_files(path, tmp_path / "a")
    assert info.task == "classification" and info.trusted_types == []


def test_trust_applies_to_skops_files_only(tmp_path: Path) -> None:
    path = tmp_path / "clf.onnx"
    path.write_bytes(_onnx_model(tmp_path).SerializeToString())  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="--trust applies to skops files"):
        import_model_files(path, tmp_path / "a", trust=KNN_TYPES)


def test_an_edited_model_json_cannot_add_trust_to_a_pushed_model(tmp_path: Path) -> None:
    """The folder fingerprint is checked before anything is deserialised."""
    from crafted_models import pushed_folder

    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.serving.servable import PipelineServable

    source = tmp_path / "knn.skops"
    skops.io.dump(_knn(), source)
    folder = pushed_folder(tmp_path / "pushed", source, ["a", "b"], ["x", "y", "z"])
    meta = folder / "model" / META_FILE
    recorded = path_fingerprint(folder)
    sha256 = json.loads(meta.read_text())["sha256"]
    with pytest.raises(UntrustedModelError):
        PipelineServable.load("m", "1", folder, model_sha256=sha256, fingerprint=recorded)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "trusted_types": KNN_TYPES}))
    with pytest.raises(ModelIntegrityError, match="has fingerprint"):
        PipelineServable.load("m", "1", folder, model_sha256=sha256, fingerprint=recorded)
    # without a fingerprint to vouch for it, model.json's trust counts for nothing
    with pytest.raises(UntrustedModelError):
        PipelineServable.load("m", "1", folder, model_sha256=sha256)
    loaded = PipelineServable.load(
        "m", "1", folder, model_sha256=sha256, fingerprint=path_fingerprint(folder)
    )
    assert loaded.model.predict_proba(np.zeros((1, 2))).shape == (1, 3)


def test_a_pipelines_own_trainer_needs_trust_by_name_and_serves_with_it(
    penguins_project: Path, store: object
) -> None:
    """A user's trainer returning a model outside the allowlist stops the run at train,
    naming the types; ``train(trust=[...])`` records them with the Model, and the pushed
    version is then evaluated (as the next run's baseline) and served with exactly those."""
    from lockgate.cli.project import apply_overrides, load_pipeline
    from lockgate.core.run import run_pipeline
    from lockgate.metadata.registry import Registry
    from lockgate.serving.reload import load_version, warm_up
    from lockgate.serving.servable import read_samples

    pipeline_file = penguins_project / "pipeline.py"
    trainer = (
        "\ndef my_knn(X, y, params):\n    from sklearn.neighbors import KNeighborsClassifier\n"
    )
    trainer += "    return KNeighborsClassifier().fit(X, y)\n\nMODEL_NAME = "
    source = pipeline_file.read_text().replace('trainer="lightgbm"', "trainer=my_knn")
    pipeline_file.write_text(source.replace("MODEL_NAME = ", trainer, 1))

    def run(*overrides: str):  # type: ignore[no-untyped-def]
        pipeline = apply_overrides(load_pipeline(pipeline_file), ["train.params={}", *overrides])
        return run_pipeline(
            pipeline,
            store=store,
            artifact_root=penguins_project / "artifacts",
            project_dir=penguins_project,
        )

    refused = run()
    assert not refused.ok and refused.failed_step == "train"
    cause = refused.error if isinstance(refused.error, UntrustedModelError) else None
    cause = cause or refused.error.__cause__
    assert isinstance(cause, UntrustedModelError) and cause.types == KNN_TYPES
    assert f"train(..., trust={KNN_TYPES})" in str(cause.hint)
    trusted = run(
        f"train.trust={json.dumps(KNN_TYPES)}",
        "evaluate.thresholds={}",
        "evaluate.bless_without_thresholds=true",
    )
    assert trusted.ok, trusted.error
    assert trusted.steps["train"].outputs["model"].properties["trusted_types"] == KNN_TYPES
    again = run(
        f"train.trust={json.dumps(KNN_TYPES)}",
        "evaluate.thresholds={}",
        "evaluate.bless_without_thresholds=true",
        "train.seed=1",
    )
    assert again.ok, again.error  # the evaluator loaded the pushed KNN as its baseline
    assert again.steps["evaluate"].outputs["evaluation"].properties["baseline"] is not None
    version = Registry(store).get("penguins")  # type: ignore[arg-type]
    servable = load_version("penguins", version)  # as the server loads and warms it up
    warm_up(servable, read_samples(version.artifact.uri, servable.transform))
