"""The diabetes pipeline: a regression, from a CSV file to a tuned XGBoost model served as
`diabetes`.

Disease progression one year after baseline (`progression`) from ten measurements (the
diabetes data of Efron et al., 2004, as scikit-learn ships it). `tune` searches XGBoost's
parameters with Optuna (the study lives in this project's metadata database), `train` fits
the best of them, and `evaluate` blesses the model only on regression thresholds.

Run it with `lockgate run`; raise `n_trials` and run again: the same study continues.
"""

from lockgate import Pipeline
from lockgate.components import (
    check_skew,
    compute_statistics,
    evaluate,
    fit_transform,
    infer_schema,
    ingest,
    latest_inference_log,
    previous_span_statistics,
    production_baseline,
    push,
    train,
    tune,
    validate_examples,
)

MODEL_NAME = "diabetes"


def pipeline() -> Pipeline:
    examples = ingest(path="data/diabetes.csv", eval_fraction=0.25)
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics, schema_file="schema.yaml")
    validation = validate_examples(
        statistics=statistics.outputs.statistics,
        schema=schema.outputs.schema,
        previous_statistics=previous_span_statistics(),
        examples=examples.outputs.examples,
    )
    skew = check_skew(
        statistics=statistics.outputs.statistics,
        schema=schema.outputs.schema,
        inference_log=latest_inference_log(MODEL_NAME),
    )
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label="progression"
    ).after(validation)
    tuned = tune(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        trainer="xgboost",
        params={"n_estimators": 200},
        search_space={
            "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
            "max_depth": {"low": 2, "high": 6, "type": "int"},
            "min_child_weight": {"low": 1, "high": 20, "log": True},
            "subsample": {"low": 0.5, "high": 1.0},
            "reg_lambda": {"low": 0.1, "high": 20, "log": True},
        },
        n_trials=20,
        metric="rmse",
    )
    model = train(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        hyperparameters=tuned.outputs.hyperparameters,
        trainer="xgboost",
        params={"n_estimators": 200},
    )
    evaluation = evaluate(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        model=model.outputs.model,
        baseline=production_baseline(MODEL_NAME),
        slice_by=["sex"],
        thresholds={
            "rmse": {"upper_bound": 70.0, "max_regression": 2.0},
            "r2": {"lower_bound": 0.2},
        },
    )
    pushed = push(
        model=model.outputs.model,
        transform=transform.outputs.transform,
        blessing=evaluation.outputs.blessing,
        model_name=MODEL_NAME,
    )
    return Pipeline(
        "diabetes",
        [
            examples,
            statistics,
            schema,
            validation,
            skew,
            transform,
            tuned,
            model,
            evaluation,
            pushed,
        ],
    )
