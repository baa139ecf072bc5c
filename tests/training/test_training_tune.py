"""tune in real pipeline runs: the study in the project's metadata database (SQLite, and
PostgreSQL when LOCKGATE_TEST_POSTGRES_URL is set), its output consumed by train, the
cache and a continued study, pruning, and bad input refused before any trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from support import lockgate

from lockgate import Pipeline
from lockgate.components import (
    compute_statistics,
    evaluate,
    fit_transform,
    infer_schema,
    ingest,
    push,
    train,
    tune,
)
from lockgate.core.run import RunResult, run_pipeline
from lockgate.errors import ConfigError
from lockgate.metadata.store import SqlMetadataStore
from lockgate.training import tuning

PENGUINS = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"
SPACE = {
    "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
    "num_leaves": {"low": 4, "high": 31},
}


def pipeline(**tune_args: Any) -> Pipeline:
    examples = ingest(path=str(PENGUINS), eval_fraction=0.25)
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics)
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label="species"
    )
    args = {"search_space": SPACE, "n_trials": 4, "params": {"n_estimators": 30}, **tune_args}
    tuned = tune(examples=examples.outputs.examples, transform=transform.outputs.transform, **args)
    model = train(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        trainer=args.get("trainer", "lightgbm"),
        hyperparameters=tuned.outputs.hyperparameters,
    )
    evaluation = evaluate(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        model=model.outputs.model,
        baseline=None,
        thresholds={"accuracy": {"lower_bound": 0.8}},
    )
    pushed = push(
        model=model.outputs.model,
        transform=transform.outputs.transform,
        blessing=evaluation.outputs.blessing,
        model_name="penguins",
    )
    steps = [examples, statistics, schema, transform, tuned, model, evaluation, pushed]
    return Pipeline("tuned", steps)


def run(store: SqlMetadataStore, root: Path, **tune_args: Any) -> RunResult:
    return run_pipeline(
        pipeline(**tune_args), store=store, artifact_root=root / "artifacts", project_dir=root
    )


@pytest.fixture
def tune_store(store_url: str) -> Any:
    """The store, with no study left by another test (PostgreSQL keeps them in a schema
    that the shared fixture does not empty)."""
    if store_url.startswith("postgresql"):
        engine = sa.create_engine(store_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {tuning.OPTUNA_SCHEMA} CASCADE"))
        engine.dispose()
    opened = SqlMetadataStore(store_url)
    yield opened
    opened.close()


def study(store: SqlMetadataStore, name: str) -> tuple[list[Any], str]:
    """(the study's trials, its direction), read with Optuna itself from the store."""
    storage = tuning.open_storage(store.url)
    try:
        found = optuna.load_study(study_name=name, storage=storage.storage)
        return found.get_trials(), found.direction.name
    finally:
        storage.close()


def test_tune_feeds_train_its_study_lives_in_the_store_and_more_trials_continue_it(
    tune_store: SqlMetadataStore, tmp_path: Path
) -> None:
    first = run(tune_store, tmp_path)
    assert first.ok, first.error
    tuned = first.steps["tune"].outputs["hyperparameters"]
    props = tuned.properties
    assert props["trials"] == 4 and props["ran"] == 4 and props["metric"] == "log_loss"
    assert props["direction"] == "minimize" and props["rounds"] > 0
    assert set(props["params"]) == {"n_estimators", "learning_rate", "num_leaves"}
    model = first.steps["train"].outputs["model"].properties
    assert model["params"] == props["params"] and model["hyperparameters"] == tuned.id
    assert first.steps["push"].status == "complete"
    name = props["study_name"]
    assert name.startswith("tuned.tune.")
    found, _ = study(tune_store, name)
    first_params = [t.params for t in found]
    assert len(first_params) == 4
    best = min((t for t in found if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert best.params == {k: props["params"][k] for k in SPACE}
    assert best.value == pytest.approx(props["best_value"])
    assert "password" not in props["storage"] and props["storage"]

    again = run(tune_store, tmp_path)
    assert again.steps["tune"].status == "cached" and again.steps["train"].status == "cached"

    more = run(tune_store, tmp_path, n_trials=7)
    assert more.ok, more.error
    grown = more.steps["tune"].outputs["hyperparameters"].properties
    assert grown["study_name"] == name  # the same study, continued
    assert grown["trials"] == 7 and grown["ran"] == 3
    trials, _ = study(tune_store, name)
    assert len(trials) == 7
    assert [t.params for t in trials[:4]] == first_params
    assert grown["best_value"] <= props["best_value"]

    other = run(
        tune_store, tmp_path, n_trials=7, search_space={"num_leaves": {"low": 4, "high": 8}}
    )
    assert other.ok, other.error
    assert other.steps["tune"].outputs["hyperparameters"].properties["study_name"] != name
    assert tune_store.artifacts_of_type("HyperParameters") != []


def test_pruning_stops_trials_that_lag_and_records_their_rounds(
    tune_store: SqlMetadataStore, tmp_path: Path
) -> None:
    space = {"learning_rate": {"low": 0.001, "high": 0.5, "log": True}}
    result = run(tune_store, tmp_path, search_space=space, n_trials=10, params={"n_estimators": 60})
    assert result.ok, result.error
    hp = result.steps["tune"].outputs["hyperparameters"]
    props = hp.properties
    assert props["pruned"] > 0
    assert props["rounds"] < 10 * 60
    import json

    trials = json.loads((Path(hp.uri) / "hyperparameters.json").read_text())["trials"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and all(0 < t["rounds"] < 60 for t in pruned)
    assert all(t["rounds"] == 60 for t in trials if t["state"] == "complete")
    assert sum(t["rounds"] for t in trials) == props["rounds"]


def test_xgboost_tunes_for_accuracy_which_it_maximises(
    tune_store: SqlMetadataStore, tmp_path: Path
) -> None:
    space = {"max_depth": {"low": 2, "high": 6}, "eta": {"low": 0.05, "high": 0.5}}
    result = run(
        tune_store,
        tmp_path,
        trainer="xgboost",
        search_space=space,
        metric="accuracy",
        params={"n_estimators": 20},
    )
    assert result.ok, result.error
    props = result.steps["tune"].outputs["hyperparameters"].properties
    assert props["direction"] == "maximize" and props["metric"] == "accuracy"
    assert 0.8 < props["best_value"] <= 1.0
    assert result.steps["train"].outputs["model"].properties["framework"] == "xgboost"
    assert study(tune_store, props["study_name"])[1] == "MAXIMIZE"


@pytest.mark.parametrize(
    ("tune_args", "match"),
    [
        (
            {"search_space": {"num_leaves": {"low": 40, "high": 8}}},
            r"'num_leaves' has an empty range",
        ),
        (
            {"search_space": {"learning_rate": {"low": 0.1, "high": 0.1}}},
            r"'learning_rate' has an empty range",
        ),
        ({"search_space": {"boosting_type": {"choices": []}}}, r"'boosting_type' has no choices"),
        (
            {"search_space": {"learning_rate": {"low": 0.0, "high": 0.3, "log": True}}},
            r"'learning_rate': a log range needs low > 0",
        ),
        (
            {"search_space": {"learning_rate": {"lo": 0.01, "high": 0.3}}},
            r"unknown key 'lo'.*did you mean 'low'",
        ),
        (
            {"search_space": {"num_leavs": {"low": 4, "high": 31}}},
            r"tune step 'tune': search_space: unknown parameter 'num_leavs' for trainer"
            r" 'lightgbm'.*did you mean 'num_leaves'",
        ),
        (
            {"params": {"n_estimator": 30}},
            r"tune step 'tune': params: unknown parameter 'n_estimator'.*did you mean 'n_estimators'",
        ),
        ({"metric": "logloss"}, r"cannot optimise metric 'logloss'.*did you mean 'log_loss'"),
        ({"metric": "rmse"}, r"cannot optimise metric 'rmse' for classification"),
        ({"n_trials": 0}, r"n_trials must be a positive int"),
        (
            {"params": {"n_estimators": 30, "num_leaves": 8}},
            r"\['num_leaves'\] are both fixed in params and searched",
        ),
    ],
)
def test_bad_input_fails_before_any_trial_and_registers_nothing(
    tune_store: SqlMetadataStore, tmp_path: Path, tune_args: dict[str, Any], match: str
) -> None:
    result = run(tune_store, tmp_path, **tune_args)
    assert result.status == "failed" and result.failed_step == "tune"
    assert isinstance(result.error, ConfigError)
    with pytest.raises(ConfigError, match=match):
        raise result.error
    assert tune_store.artifacts_of_type("HyperParameters") == []
    storage = tuning.open_storage(tune_store.url)
    try:
        assert optuna.get_all_study_names(storage.storage) == []
    finally:
        storage.close()


def test_lockgate_show_and_lineage_list_the_trials(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "lockgate.toml").write_text('[project]\nname = "tuned"\n')
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        result = run_pipeline(
            pipeline(),
            store=store,
            artifact_root=project / ".lockgate/artifacts",
            project_dir=project,
        )
        assert result.ok, result.error
        artifact = result.steps["tune"].outputs["hyperparameters"]
    finally:
        store.close()
    shown = lockgate("show", str(artifact.id), cwd=project)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"HyperParameters #{artifact.id} from step 'tune'")
    assert f"study {artifact.properties['study_name']} in sqlite:///" in shown.stdout
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "state"])
    rows = lines[header + 1 :]
    assert [row.split()[0] for row in rows] == ["0", "1", "2", "3"]
    assert sum(row.endswith(" *") for row in rows) == 1 and "learning_rate" in rows[0]

    lineage = lockgate("lineage", "penguins", cwd=project)
    assert lineage.returncode == 0, lineage.stderr
    assert f"hyperparameters: HyperParameters #{artifact.id}  <- step 'tune'" in lineage.stdout
    assert "log_loss=" in lineage.stdout and "best of 4 trials" in lineage.stdout
    listed = [line for line in lineage.stdout.splitlines() if '{"learning_rate"' in line]
    assert len(listed) == 4


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({}, r"non-empty dict"),
        ({"x": 3}, r"'x' must be a dict"),
        ({"x": {"low": 1, "high": 5, "type": "integer"}}, r"did you mean 'int'"),
        ({"x": {"low": 1.5, "high": 5, "type": "int"}}, r"whole low and high"),
        ({"x": {"low": 1, "high": 5, "step": 0}}, r"step must be a positive number"),
        ({"x": {"low": 0.1, "high": 5.0, "step": 0.1, "log": True}}, r"step and log"),
        ({"x": {"choices": [[1, 2]]}}, r"a choice must be"),
        ({"x": {"low": "a", "high": 5}}, r"'low' must be a finite number"),
    ],
)
def test_search_space_mistakes_name_the_parameter(space: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        tuning.parse_space(space)


def test_search_space_kinds_and_helpers() -> None:
    space = {
        "a": tuning.float_range(0.01, 1.0, log=True),
        "b": tuning.int_range(2, 8, step=2),
        "c": tuning.choice("gbdt", "dart"),
        "d": {"low": 1, "high": 1},  # one int value is a range of one
    }
    kinds = {d.name: d.kind for d in tuning.parse_space(space)}
    assert kinds == {"a": "float", "b": "int", "c": "categorical", "d": "int"}
    assert tuning.parse_space({"x": {"low": 0, "high": 1.0}})[0].kind == "float"


@pytest.mark.parametrize(
    ("trainer", "params", "match"),
    [
        ("lightgbm", {"num_leavs": 7}, r"unknown parameter 'num_leavs'.*did you mean 'num_leaves'"),
        ("xgboost", {"max_dept": 3}, r"unknown parameter 'max_dept'.*did you mean 'max_depth'"),
    ],
)
def test_train_refuses_a_booster_parameter_the_library_does_not_know(
    trainer: str, params: dict[str, Any], match: str
) -> None:
    import numpy as np

    from lockgate.training.trainers import train_model

    X, y = np.arange(20.0).reshape(10, 2), np.array([0, 1] * 5)
    with pytest.raises(ConfigError, match=match):
        train_model(X, y, spec=trainer, params=params, task="classification")
    # the booster's own names and aliases pass
    known = {
        "lightgbm": {"min_data_in_leaf": 1, "lambda_l1": 0.1, "n_estimators": 2},
        "xgboost": {"eta": 0.3, "lambda": 1.0, "rate_drop": 0.0, "n_estimators": 2},
    }
    assert train_model(X, y, spec=trainer, params=known[trainer], task="classification")


def test_two_runs_tuning_the_same_study_at_once_take_turns(
    tune_store: SqlMetadataStore, tmp_path: Path
) -> None:
    """Both ask for 6 trials of one study: the second to get the study's lock finds the
    first's 6 and runs none, instead of each running 6 (12 in the study)."""
    from concurrent.futures import ThreadPoolExecutor

    def one() -> RunResult:
        store = SqlMetadataStore(tune_store.url)
        try:
            return run(store, tmp_path, n_trials=6)
        finally:
            store.close()

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: one(), range(2)))
    assert all(r.ok for r in results), [r.error for r in results]
    tuned = [r.steps["tune"].outputs["hyperparameters"] for r in results]
    names = {t.properties["study_name"] for t in tuned}
    assert len(names) == 1
    trials, _ = study(tune_store, names.pop())
    assert len(trials) == 6
    assert len({t.properties["best_value"] for t in tuned}) == 1
