"""The penguins pipeline: from a CSV file to a model served as `penguins`.

Run it with `lockgate run`; change a parameter below and run again: only the steps it
affects run again, the rest come from the cache.
"""

from lockgate import Pipeline
from lockgate.components import (
    check_skew,
    compute_statistics,
    evaluate,
    fit_transform,
    infer_schema,
    infra_validate,
    ingest,
    latest_inference_log,
    previous_span_statistics,
    production_baseline,
    push,
    train,
    validate_examples,
)

MODEL_NAME = "penguins"


def pipeline() -> Pipeline:
    examples = ingest(path="data/penguins.csv", eval_fraction=0.25)
    statistics = compute_statistics(examples=examples.outputs.examples)
    # The curated schema: the first run writes schema.yaml from its data (review it, keep it
    # in version control); later runs are checked against it. See: lockgate schema update
    schema = infer_schema(statistics=statistics.outputs.statistics, schema_file="schema.yaml")
    validation = validate_examples(
        statistics=statistics.outputs.statistics,
        schema=schema.outputs.schema,
        previous_statistics=previous_span_statistics(),  # drift, once data comes in spans
        examples=examples.outputs.examples,  # for duplicate keys, when the schema has a key
    )
    skew = check_skew(  # training data against what `lockgate serve` was asked (its request log)
        statistics=statistics.outputs.statistics,
        schema=schema.outputs.schema,
        inference_log=latest_inference_log(MODEL_NAME),
    )
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label="species"
    ).after(validation)  # the data gate: nothing is trained on data that failed validation
    model = train(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        trainer="lightgbm",
        params={"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15},
    )
    evaluation = evaluate(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        model=model.outputs.model,
        baseline=production_baseline(MODEL_NAME),
        # metrics overall, per island, per sex and per island x sex, each with a 95%
        # bootstrap interval; slices under 10 eval rows are reported but never gated on
        slice_by=["island", "sex", ["island", "sex"]],
        min_slice_size=10,
        thresholds=[
            {"metric": "accuracy", "lower_bound": 0.9},
            # against production: no slice may lose more than 0.02 of accuracy, unless the
            # loss is within the noise of its few rows (the paired interval says so)
            {"metric": "accuracy", "max_regression": 0.02, "slices": "every", "significant": True},
        ],
    )
    # the candidate in a real `lockgate serve` with a registry of its own: it must load,
    # answer V2 and TF-Serving requests, and answer what it answers here
    infra = infra_validate(
        model=model.outputs.model,
        transform=transform.outputs.transform,
        examples=examples.outputs.examples,
        model_name=MODEL_NAME,
    )
    pushed = push(  # only a model both gates blessed becomes the production version
        model=model.outputs.model,
        transform=transform.outputs.transform,
        blessing=evaluation.outputs.blessing,
        infra_blessing=infra.outputs.infra_blessing,
        model_name=MODEL_NAME,
    )
    return Pipeline(
        "penguins",
        [
            *(examples, statistics, schema, validation, skew, transform, model),
            *(evaluation, infra, pushed),
        ],
    )
