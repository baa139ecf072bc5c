"""The evaluate step in real pipeline runs on the penguins project: what the artifact holds,
the rules of the gate, and the bad input that must not bless a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from lockgate.cli.project import apply_overrides, load_pipeline
from lockgate.core.run import run_pipeline
from lockgate.errors import ColumnNotFoundError, ConfigError, NotBlessedError
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore


def run(project: Path, store: SqlMetadataStore, *overrides: str) -> Any:
    pipeline = apply_overrides(load_pipeline(project / "pipeline.py"), list(overrides))
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


def report_of(result: Any) -> dict[str, Any]:
    folder = Path(result.steps["evaluate"].outputs["evaluation"].uri)
    return json.loads((folder / "evaluation.json").read_text())


def test_the_evaluation_holds_slices_intervals_curves_and_a_report(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    result = run(
        penguins_project,
        store,
        'evaluate.slice_by=["island", ["island", "sex"], {"feature": "bill_length_mm", "quantiles": 4}]',
        "evaluate.n_resamples=50",
    )
    assert result.ok, result.error
    report = report_of(result)
    assert report["format_version"] == 2 and report["task"] == "classification"
    assert report["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    slices = report["candidate"]
    assert slices[0]["label"] == "Overall" and slices[0]["slice"] == []
    crossed = [s for s in slices if len(s["slice"]) == 2]
    islands = [s for s in slices if [f for f, _ in s["slice"]] == ["island"]]
    buckets = [s for s in slices if [f for f, _ in s["slice"]] == ["bill_length_mm"]]
    assert len(islands) == 3 and len(buckets) == 4 and crossed
    # every row is in exactly one value of each slicing
    total = slices[0]["example_count"]
    assert sum(s["example_count"] for s in islands) == total
    assert sum(s["example_count"] for s in crossed) == total
    assert sum(s["example_count"] for s in buckets) == total
    accuracy = slices[0]["metrics"]["accuracy"]
    assert accuracy["lower"] <= accuracy["value"] <= accuracy["upper"]
    assert accuracy["upper"] - accuracy["lower"] > 0  # 50 resamples of ~86 rows vary
    assert report["baseline"] is None and report["differences"] is None
    assert report["curves"]["candidate"]  # ROC, PR, calibration, confusion matrix
    html = (Path(result.steps["evaluate"].outputs["evaluation"].uri) / "report.html").read_text()
    assert "<svg" in html and "island=Biscoe" in html

    # the point estimate is scikit-learn's on the eval split the step read
    from lockgate.data.components import read_split
    from lockgate.evaluation.components import predictions_of
    from lockgate.training.model_files import load_model
    from lockgate.training.transform import TransformGraph, drop_missing_label

    graph = TransformGraph.load(result.steps["fit_transform"].outputs["transform"].uri)
    table = drop_missing_label(
        read_split(result.steps["ingest"].outputs["examples"], "eval"), "species"
    )
    loaded = load_model(Path(result.steps["train"].outputs["model"].uri))
    predicted = predictions_of(graph, loaded, table).y_pred
    assert accuracy["value"] == pytest.approx(
        accuracy_score(graph.encode_label(table), predicted), abs=1e-12
    )


def test_without_thresholds_nothing_is_blessed_unless_asked(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    result = run(penguins_project, store, "evaluate.thresholds=null")
    blessing = result.steps["evaluate"].outputs["blessing"].properties
    assert blessing["blessed"] is False
    assert any("bless_without_thresholds" in reason for reason in blessing["reasons"])
    assert result.failed_step == "push" and isinstance(result.error, NotBlessedError)
    assert Registry(store).models() == []

    allowed = run(
        penguins_project,
        store,
        "evaluate.thresholds=null",
        "evaluate.bless_without_thresholds=true",
    )
    assert allowed.ok, allowed.error
    assert Registry(store).get("penguins").version == 1


def test_candidate_and_baseline_are_scored_on_the_same_rows_with_paired_differences(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    assert run(penguins_project, store).ok
    second = run(
        penguins_project,
        store,
        'train.params={"n_estimators": 20, "learning_rate": 0.1, "num_leaves": 4}',
        "evaluate.thresholds=null",
        "evaluate.bless_without_thresholds=true",
    )
    assert second.ok, second.error
    report = report_of(second)
    candidate, baseline = report["candidate"], report["baseline"]
    assert [s["label"] for s in candidate] == [s["label"] for s in baseline]
    assert [s["example_count"] for s in candidate] == [s["example_count"] for s in baseline]
    difference = report["differences"][0]["metrics"]["accuracy"]
    expected = (
        candidate[0]["metrics"]["accuracy"]["value"] - baseline[0]["metrics"]["accuracy"]["value"]
    )
    assert difference["value"] == pytest.approx(expected, abs=1e-12)
    if difference["lower"] is not None:
        assert difference["lower"] <= difference["value"] <= difference["upper"]


def test_a_worse_model_is_refused_naming_the_failing_slice_and_production_keeps_its_version(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    assert run(penguins_project, store).ok
    worse = run(
        penguins_project,
        store,
        "train.trainer=logistic_regression",
        'train.params={"C": 0.0001}',
        'evaluate.thresholds=[{"metric": "accuracy", "max_regression": 0.02, "slices": "every"}]',
        'evaluate.slice_by=["island"]',
    )
    assert worse.status == "blocked" and worse.failed_step == "push"
    reasons = worse.steps["evaluate"].outputs["blessing"].properties["reasons"]
    assert any("accuracy" in r and "island=" in r for r in reasons), reasons
    assert Registry(store).get("penguins").version == 1


def test_a_baseline_with_another_label_is_not_compared_and_not_blessed(
    penguins_project: Path, store: SqlMetadataStore, tmp_path: Path
) -> None:
    import pyarrow.csv as pacsv
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from lockgate.training.model_import import import_model

    features = ["bill_length_mm", "flipper_length_mm"]
    options = pacsv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    table = pacsv.read_csv(penguins_project / "data" / "penguins.csv", convert_options=options)
    table = table.filter(table["sex"].is_valid())
    X = np.nan_to_num(np.column_stack([table[f].to_numpy(zero_copy_only=False) for f in features]))
    model = LogisticRegression(max_iter=500).fit(X, table["sex"].to_numpy(zero_copy_only=False))
    path = tmp_path / "sex.skops"
    skops.io.dump(model, path)
    imported = import_model(
        store,
        penguins_project / "artifacts",
        path,
        name="penguins",
        features=features,
        label="sex",
        bless=True,
        reason="a model of another label, by mistake",
    )
    Registry(store).set_alias("penguins", "production", imported.version, reason="test")
    result = run(penguins_project, store)
    assert result.failed_step == "push"
    blessing = result.steps["evaluate"].outputs["blessing"].properties
    assert blessing["blessed"] is False
    assert "cannot be compared" in blessing["reasons"][0] and "'sex'" in blessing["reasons"][0]
    assert report_of(result)["baseline"] is None
    assert Registry(store).get("penguins").version == imported.version


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        (
            'evaluate.thresholds={"acuracy": {"lower_bound": 0.9}}',
            ConfigError,
            "did you mean 'accuracy'",
        ),
        ('evaluate.thresholds={"rmse": {"upper_bound": 1.0}}', ConfigError, "rmse"),
        ('evaluate.slice_by=["iland"]', ColumnNotFoundError, "did you mean 'island'"),
        ('evaluate.metrics=["acuracy"]', ConfigError, "did you mean 'accuracy'"),
    ],
)
def test_bad_evaluation_settings_fail_the_step_with_a_clear_error_and_push_nothing(
    penguins_project: Path, store: SqlMetadataStore, override: str, error: type, match: str
) -> None:
    result = run(penguins_project, store, override)
    assert result.failed_step == "evaluate"
    with pytest.raises(error, match=match):
        raise result.error
    assert store.artifacts_of_type("PushedModel") == []
    assert Registry(store).models() == []


def test_an_eval_split_of_one_class_does_not_bless_and_says_why(tmp_path: Path) -> None:
    """Trained on every species, evaluated on Adelie penguins only: accuracy alone would
    pass, but nothing can be judged on one class."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from lockgate.core.artifacts import (
        Blessing,
        Examples,
        Model,
        ModelEvaluation,
        TransformGraph,
    )
    from lockgate.evaluation.components import evaluate
    from lockgate.training.model_files import save_model
    from lockgate.training.trainers import train_model
    from lockgate.training.transform import TransformGraph as Graph
    from lockgate.training.transform import drop_missing_label

    data = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"
    options = pacsv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    table = drop_missing_label(pacsv.read_csv(data, convert_options=options), "species")
    adelie = table.filter(pa_equal(table, "species", "Adelie"))
    for split, rows in (("train", table), ("eval", adelie.slice(0, 40))):
        (tmp_path / "examples" / split).mkdir(parents=True)
        pq.write_table(rows, tmp_path / "examples" / split / "part-0.parquet")
    graph = Graph.fit(table, label="species")
    graph.save(tmp_path / "transform")
    fitted = train_model(
        graph.apply(table), graph.encode_label(table), spec="lightgbm", task=graph.task
    )
    info = save_model(fitted, tmp_path / "model")
    for name in ("evaluation", "blessing"):
        (tmp_path / name).mkdir()
    blessing = Blessing(uri=str(tmp_path / "blessing"))
    evaluate.fn(
        examples=Examples(uri=str(tmp_path / "examples")),
        transform=TransformGraph(uri=str(tmp_path / "transform")),
        model=Model(uri=str(tmp_path / "model"), properties={"sha256": info.sha256}),
        baseline=None,
        evaluation=ModelEvaluation(uri=str(tmp_path / "evaluation")),
        blessing=blessing,
        thresholds={"accuracy": {"lower_bound": 0.5}},
        n_resamples=20,
    )
    assert blessing.properties["blessed"] is False
    reason = blessing.properties["reasons"][0]
    assert "40 rows of 1 class(es) ['Adelie']" in reason and "cannot be judged" in reason
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert report["candidate"][0]["metrics"]["accuracy"]["value"] > 0.5  # it would have passed
    assert report["candidate"][0]["metrics"]["roc_auc"]["value"] is None


def pa_equal(table: Any, column: str, value: str) -> Any:
    import pyarrow.compute as pc

    return pc.equal(table[column], value)
