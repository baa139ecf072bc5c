"""PyTorch models through the real pipeline path: ingest, validate, fit_transform, train
(``torch_mlp``), evaluate, push, then the registry version loaded as the server loads it and
asked over the Open Inference Protocol by a real uvicorn; and a second run that warm-starts
from the model in production."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from sklearn.metrics import accuracy_score, r2_score

from lockgate.core.run import run_pipeline
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.app import create_app
from lockgate.serving.reload import load_version, warm_up
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import read_samples

pytest.importorskip("torch")

PENGUINS = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"

PIPELINE = """
from lockgate import Pipeline
from lockgate.components import (
    compute_statistics, evaluate, fit_transform, infer_schema, ingest, production_baseline,
    production_model, push, train, validate_examples,
)


def pipeline() -> Pipeline:
    examples = ingest(path="data/data.csv", eval_fraction=0.25)
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics)
    validation = validate_examples(
        statistics=statistics.outputs.statistics, schema=schema.outputs.schema
    )
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label={label!r}
    ).after(validation)
    model = train(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        base_model=production_model("m"),
        trainer="torch_mlp",
        params={params!r},
    )
    evaluation = evaluate(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        model=model.outputs.model,
        baseline=production_baseline("m"),
        thresholds={thresholds!r},
    )
    pushed = push(
        model=model.outputs.model,
        transform=transform.outputs.transform,
        blessing=evaluation.outputs.blessing,
        model_name="m",
    )
    return Pipeline(
        "torch", [examples, statistics, schema, validation, transform, model, evaluation, pushed]
    )
"""


def _penguins() -> pa.Table:
    options = pacsv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    return pacsv.read_csv(PENGUINS, convert_options=options).drop_null()


def _sklearn(name: str, columns: int | None = None) -> pa.Table:
    """A scikit-learn data set (its CSV, shipped with it) with the first ``columns`` features
    and its ``target``."""
    import sklearn.datasets

    frame = getattr(sklearn.datasets, name)(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    if columns is not None:
        frame = frame[[*frame.columns[:columns], "target"]]
    return pa.Table.from_pandas(frame, preserve_index=False)


def _breast_cancer() -> pa.Table:
    return _sklearn("load_breast_cancer", columns=10)  # the ten "mean ..." features


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """SQLite only: these runs test the framework; the stores have their own parity tests."""
    opened = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    yield opened
    opened.close()


CASES: dict[str, tuple[Callable[[], pa.Table], str, dict[str, Any], dict[str, Any]]] = {
    "multiclass": (
        _penguins,
        "species",
        {"epochs": 300, "learning_rate": 0.01, "early_stopping_rounds": 10},
        {"accuracy": {"lower_bound": 0.9}},
    ),
    "binary": (
        _breast_cancer,
        "target",
        {"epochs": 40},
        {"accuracy": {"lower_bound": 0.9}},
    ),
    "regression": (
        lambda: _sklearn("load_diabetes"),
        "target",
        {"epochs": 200, "hidden_layers": [16], "weight_decay": 0.01},
        {"r2": {"lower_bound": 0.3}},
    ),
}


def _project(tmp_path: Path, case: str, table: pa.Table) -> Path:
    _, label, params, thresholds = CASES[case]
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    pacsv.write_csv(table, project / "data" / "data.csv")
    source = PIPELINE.format(label=label, params=params, thresholds=thresholds)
    (project / "pipeline.py").write_text(source)
    return project


def _run(project: Path, store: SqlMetadataStore):  # type: ignore[no-untyped-def]
    from lockgate.cli.project import load_pipeline

    return run_pipeline(
        load_pipeline(project / "pipeline.py"),
        store=store,
        artifact_root=project / "artifacts",
        project_dir=project,
    )


def _ask(url: str, rows: pa.Table) -> dict[str, Any]:
    inputs = [
        {
            "name": name,
            "shape": [rows.num_rows],
            "datatype": "BYTES" if pa.types.is_string(rows.schema.field(name).type) else "FP64",
            "data": rows.column(name).to_pylist(),
        }
        for name in rows.column_names
    ]
    answer = httpx.post(f"{url}/v2/models/m/infer", json={"inputs": inputs}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {o["name"]: o for o in answer.json()["outputs"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_torch_mlp_is_trained_evaluated_pushed_and_served(
    case: str,
    tmp_path: Path,
    store: SqlMetadataStore,
    serve_app: Callable[[Any], str],
) -> None:
    make, label, params, _ = CASES[case]
    table = make()
    result = _run(_project(tmp_path, case, table), store)
    assert result.ok, result.error
    model = result.steps["train"].outputs["model"].properties
    assert (model["framework"], model["file"]) == ("pytorch", "model.safetensors")
    assert model["framework_version"] == version("torch") and model["device"] == "cpu"
    assert model["trainer"] == "torch_mlp" and model["base_model"] is None
    stopped = "early_stopping_rounds" in params
    assert (model["best_iteration"] is not None) == stopped
    if stopped:
        assert model["best_iteration"] < params["epochs"]

    servable = load_version("m", Registry(store).get("m"))  # as the server loads a version
    warm_up(servable, read_samples(Registry(store).get("m").artifact.uri, servable.transform))
    url = serve_app(create_app(ModelRepository([servable])))
    rows = table.slice(0, 60)
    outputs = _ask(url, rows.drop_columns([label]))
    truth = rows.column(label).to_pylist()
    predicted = outputs["predicted"]["data"]
    if case == "regression":
        assert r2_score(truth, predicted) > 0.3
        direct = servable.model.predict(servable.transform.apply(rows))
        np.testing.assert_allclose(predicted, direct, rtol=1e-9)
        return
    probabilities = np.asarray(outputs["probabilities"]["data"]).reshape(len(truth), -1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    assert accuracy_score([str(t) for t in truth], [str(p) for p in predicted]) > 0.9
    evaluation = result.steps["evaluate"].outputs["evaluation"].properties["metrics"]
    assert evaluation["accuracy"] > 0.9


def test_a_second_run_on_new_data_warm_starts_from_production(
    tmp_path: Path, store: SqlMetadataStore
) -> None:
    table = _breast_cancer()
    project = _project(tmp_path, "binary", table.slice(0, 400))
    first = _run(project, store)
    assert first.ok, first.error
    pacsv.write_csv(table, project / "data" / "data.csv")  # new rows came in
    second = _run(project, store)
    assert second.ok, second.error
    model = second.steps["train"].outputs["model"].properties
    production = first.steps["push"].outputs["pushed_model"]
    assert model["base_model"]["artifact_id"] == production.id
    assert model["base_model"]["framework"] == "pytorch"
    assert Registry(store).get("m").version == 2
    metrics = second.steps["evaluate"].outputs["evaluation"].properties
    assert metrics["metrics"]["accuracy"] > 0.9 and metrics["baseline"] is not None


def test_models_import_takes_a_safetensors_file_and_serves_it(
    tmp_path: Path, store: SqlMetadataStore
) -> None:
    """A model.safetensors trained elsewhere (here by lockgate's loop on raw columns) is
    imported with ``--features`` as ``lockgate models import`` does, and served."""
    from lockgate.training.model_files import save_model
    from lockgate.training.model_import import import_model
    from lockgate.training.trainers import train_model

    features = ["bill_length_mm", "flipper_length_mm"]
    table = _penguins()
    X = np.column_stack([table.column(f).to_numpy() for f in features])
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # a model whose inputs are already scaled
    species = ["Adelie", "Chinstrap", "Gentoo"]
    y = np.searchsorted(species, table.column("species").to_numpy(zero_copy_only=False))
    estimator = train_model(X, y, spec="torch_mlp", params={"epochs": 50}, task="classification")
    save_model(estimator, tmp_path / "trained")
    source = tmp_path / "penguins.safetensors"
    source.write_bytes((tmp_path / "trained" / "model.safetensors").read_bytes())

    imported = import_model(
        store, tmp_path / "artifacts", source, name="m", features=features, classes=species
    )
    assert imported.properties["framework"] == "pytorch"
    servable = load_version("m", imported)
    rows = pa.table({f: X[:, i] for i, f in enumerate(features)})
    answer = servable.predict({f: rows.column(f).to_numpy() for f in features})
    expected = np.asarray(species)[estimator.predict(X)]
    np.testing.assert_array_equal(answer["predicted"], expected)
