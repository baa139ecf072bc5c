"""A model imported from elsewhere (here ONNX) in production is the baseline the pipeline's
candidate is compared with: the evaluator loads it as the server does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from lockgate.cli.project import load_pipeline
from lockgate.core.run import run_pipeline
from lockgate.data.components import read_split
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.training.model_import import import_model
from lockgate.training.transform import TransformGraph, drop_missing_label

FEATURES = ["bill_length_mm", "flipper_length_mm"]


def test_an_imported_onnx_model_in_production_is_the_baseline(
    penguins_project: Path, store: SqlMetadataStore, tmp_path: Path
) -> None:
    from skl2onnx import to_onnx

    options = pacsv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    table = pacsv.read_csv(penguins_project / "data" / "penguins.csv", convert_options=options)
    table = drop_missing_label(table, "species")
    X = np.nan_to_num(np.column_stack([table[f].to_numpy(zero_copy_only=False) for f in FEATURES]))
    # a deliberately weak model: its accuracy is far from the candidate's
    sklearn_model = LogisticRegression(C=1e-4, max_iter=200).fit(X, table["species"].to_numpy())
    onnx_path = tmp_path / "weak.onnx"
    onnx_path.write_bytes(to_onnx(sklearn_model, X[:1].astype(np.float32)).SerializeToString())
    imported = import_model(
        store,
        penguins_project / "artifacts",
        onnx_path,
        name="penguins",
        features=FEATURES,
        label="species",
        bless=True,
        reason="the model in production before lockgate",
    )
    Registry(store).set_alias("penguins", "production", imported.version, reason="test")

    result = run_pipeline(
        load_pipeline(penguins_project / "pipeline.py"),
        store=store,
        artifact_root=penguins_project / "artifacts",
        project_dir=penguins_project,
    )
    assert result.ok, result.error
    evaluation = result.steps["evaluate"].outputs["evaluation"]
    report = json.loads((Path(evaluation.uri) / "evaluation.json").read_text())
    assert report["baseline_uri"] == imported.artifact.uri
    baseline, candidate = evaluation.properties["baseline"], evaluation.properties["metrics"]

    # the oracle: scikit-learn's own model on the imported transform's view of the eval split
    eval_table = drop_missing_label(
        read_split(result.steps["ingest"].outputs["examples"], "eval"), "species"
    )
    graph = TransformGraph.load(Path(imported.artifact.uri) / "transform")
    expected = accuracy_score(
        eval_table["species"].to_pylist(), sklearn_model.predict(graph.apply(eval_table))
    )
    assert baseline["example_count"] == eval_table.num_rows
    assert abs(baseline["accuracy"] - expected) <= 1.0 / eval_table.num_rows  # float32 ONNX
    assert candidate["accuracy"] > baseline["accuracy"]
    assert Registry(store).get("penguins").version == imported.version + 1  # pushed over it
