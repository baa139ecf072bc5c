"""Warm start in a real pipeline: ``train(base_model=production_model(...))`` continues the
model in production, records it in lineage, stays cached on an unchanged re-run, and
refuses a base model of another framework or feature set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockgate.cli.project import apply_overrides, load_pipeline
from lockgate.core.run import run_pipeline
from lockgate.errors import ConfigError
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.training.model_files import load_model

LENIENT = 'evaluate.thresholds={"accuracy": {"lower_bound": 0.5}}'


def warm_project(project: Path) -> Path:
    """The penguins template with its train step continuing from production."""
    pipeline_file = project / "pipeline.py"
    source = pipeline_file.read_text()
    source = source.replace(
        "    production_baseline,\n", "    production_baseline,\n    production_model,\n"
    )
    source = source.replace(
        '        trainer="lightgbm",\n',
        '        trainer="lightgbm",\n        base_model=production_model(MODEL_NAME),\n',
    )
    assert "base_model=production_model" in source
    pipeline_file.write_text(source)
    return project


def run(project: Path, store: SqlMetadataStore, *overrides: str) -> Any:
    pipeline = apply_overrides(load_pipeline(project / "pipeline.py"), [LENIENT, *overrides])
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


def rounds(model_artifact: Any) -> int:
    """Trees (LightGBM, XGBoost) or estimators (scikit-learn) in a saved model."""
    loaded = load_model(model_artifact.uri).model
    if hasattr(loaded, "num_trees"):  # LightGBM Booster: one tree per class per round
        return int(loaded.current_iteration())
    if hasattr(loaded, "num_boosted_rounds"):
        return int(loaded.num_boosted_rounds())
    if hasattr(loaded, "n_iter_"):  # HistGradientBoosting
        return int(loaded.n_iter_)
    return len(loaded.estimators_)


CASES = {
    "lightgbm": ('{"n_estimators": 20}', '{"n_estimators": 20, "learning_rate": 0.05}', 40),
    "xgboost": ('{"n_estimators": 20}', '{"n_estimators": 20, "learning_rate": 0.05}', 40),
    "random_forest": ('{"n_estimators": 20}', '{"n_estimators": 35}', 35),
    "gradient_boosting": ('{"max_iter": 20}', '{"max_iter": 30}', 30),
}


@pytest.mark.parametrize("trainer", sorted(CASES))
def test_warm_start_continues_production_and_shows_it_in_lineage(
    trainer: str, penguins_project: Path, store: SqlMetadataStore
) -> None:
    first_params, second_params, expected_rounds = CASES[trainer]
    project = warm_project(penguins_project)
    first = run(project, store, f"train.trainer={trainer}", f"train.params={first_params}")
    assert first.ok, first.error
    model = first.steps["train"].outputs["model"]
    assert model.properties["base_model"] is None  # nothing in production yet: from scratch
    assert rounds(model) == 20

    second = run(project, store, f"train.trainer={trainer}", f"train.params={second_params}")
    assert second.ok, second.error
    continued = second.steps["train"].outputs["model"]
    pushed = first.steps["push"].outputs["pushed_model"]
    assert continued.properties["base_model"]["artifact_id"] == pushed.id
    assert continued.properties["base_model"]["model_name"] == "penguins"
    assert rounds(continued) == expected_rounds
    train_execution = store.producer(continued.id)
    assert train_execution is not None
    inputs = store.execution_artifacts(train_execution.id, "input")
    assert inputs["base_model"].id == pushed.id  # lineage: the model it continued from
    assert Registry(store).get("penguins").version == 2

    again = run(project, store, f"train.trainer={trainer}", f"train.params={second_params}")
    assert again.ok, again.error
    assert again.steps["train"].status == "cached"  # not a third round on its own output
    assert Registry(store).get("penguins").version == 2


def test_a_base_model_of_another_framework_is_refused_and_nothing_is_registered(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    project = warm_project(penguins_project)
    assert run(project, store).ok
    models_before = len(store.artifacts_of_type("Model"))
    refused = run(project, store, "train.trainer=xgboost", 'train.params={"n_estimators": 20}')
    assert refused.status == "failed" and refused.failed_step == "train"
    assert isinstance(refused.error, ConfigError)
    assert "lightgbm model" in str(refused.error) and "xgboost" in str(refused.error)
    assert len(store.artifacts_of_type("Model")) == models_before
    assert Registry(store).get("penguins").version == 1


def test_a_base_model_on_other_features_is_refused_naming_them(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    project = warm_project(penguins_project)
    assert run(project, store).ok
    refused = run(
        project,
        store,
        'fit_transform.features=["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]',
    )
    assert refused.failed_step == "train"
    assert isinstance(refused.error, ConfigError)
    message = str(refused.error)
    assert "does not fit" in message and "island=Biscoe" in message


def test_a_tampered_base_model_is_refused_before_it_is_read(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    project = warm_project(penguins_project)
    first = run(project, store)
    pushed = first.steps["push"].outputs["pushed_model"]
    model_file = Path(pushed.uri) / "model" / "model.txt"
    model_file.write_text(model_file.read_text().replace("tree\n", "tree\n\n", 1))
    refused = run(project, store, 'train.params={"n_estimators": 7}')
    assert refused.failed_step == "train"
    assert "sha256" in str(refused.error) and "model.txt" in str(refused.error)
