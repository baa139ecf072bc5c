"""The model gate in a real pipeline run: thresholds, comparison with production, push."""

from __future__ import annotations

import textwrap
from pathlib import Path

from lockgate.cli.project import apply_overrides, load_pipeline
from lockgate.core.run import run_pipeline
from lockgate.errors import NotBlessedError
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore


def run(project: Path, store: SqlMetadataStore, *overrides: str):  # type: ignore[no-untyped-def]
    pipeline = apply_overrides(load_pipeline(project / "pipeline.py"), list(overrides))
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


def test_an_unblessed_model_is_refused_by_push_and_production_is_untouched(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    result = run(penguins_project, store, 'evaluate.thresholds={"log_loss": {"upper_bound": 1e-9}}')
    assert result.status == "blocked" and result.failed_step == "push"
    assert isinstance(result.error, NotBlessedError)
    assert "push refused" in str(result.error) and "log_loss" in str(result.error)
    assert result.steps["evaluate"].outputs["blessing"].properties["blessed"] is False
    assert store.artifacts_of_type("PushedModel") == []
    assert Registry(store).models() == []


def test_a_model_worse_than_production_is_not_pushed(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    first = run(penguins_project, store)
    assert first.ok, first.error
    worse = run(
        penguins_project,
        store,
        "train.trainer=logistic_regression",
        'train.params={"C": 0.0001}',
        'evaluate.thresholds={"accuracy": {"max_regression": 0.02}}',
    )
    evaluation = worse.steps["evaluate"].outputs["evaluation"].properties
    assert evaluation["baseline"]["accuracy"] > evaluation["metrics"]["accuracy"] + 0.02
    assert worse.status == "blocked" and worse.failed_step == "push"
    assert "accuracy" in str(worse.error) and "baseline" in str(worse.error)
    registry = Registry(store)
    assert registry.get("penguins").version == 1
    assert [v.version for v in registry.versions("penguins")] == [1]


def test_a_users_own_training_function_trains_caches_and_reruns_when_edited(
    penguins_project: Path, store: SqlMetadataStore
) -> None:
    pipeline_file = penguins_project / "pipeline.py"
    source = pipeline_file.read_text()
    trainer = textwrap.dedent(
        """
        def my_forest(X, y, params):
            from sklearn.ensemble import ExtraTreesClassifier
            return ExtraTreesClassifier(n_estimators=params.get("trees", 30), random_state=0).fit(X, y)
        """
    )
    custom = source.replace('trainer="lightgbm"', "trainer=my_forest").replace(
        'params={"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15}',
        'params={"trees": 30}',
    )
    pipeline_file.write_text(custom.replace("MODEL_NAME = ", trainer + "\nMODEL_NAME = "))
    first = run(penguins_project, store)
    assert first.ok, first.error
    model = first.steps["train"].outputs["model"]
    assert model.properties["framework"] == "sklearn" and model.properties["trainer"] == "my_forest"
    assert run(penguins_project, store).steps["train"].status == "cached"
    pipeline_file.write_text(pipeline_file.read_text().replace("random_state=0", "random_state=1"))
    assert run(penguins_project, store).steps["train"].status == "complete"
