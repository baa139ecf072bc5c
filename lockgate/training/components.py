"""The Model Training Pipeline's components: fit_transform and train."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lockgate.core.artifacts import (
    Examples,
    HyperParameters,
    Model,
    PushedModel,
    Schema,
    TransformGraph,
)
from lockgate.core.component import Input, Output, component
from lockgate.data.components import load_schema, read_split


@component
def fit_transform(
    examples: Input[Examples],
    schema: Input[Schema],
    transform: Output[TransformGraph],
    *,
    label: str,
    features: list[str] | None = None,
    task: str | None = None,
    transforms: list[dict[str, Any]] | None = None,
) -> None:
    """Fit the preprocessing on the train split only; features default to the schema's.

    ``task`` ("classification" or "regression") overrides the task decided from the label
    (a string, bool or few-valued integer label is classification, a float one regression);
    the decision and its reason are the artifact's ``task`` and ``task_reason``.

    ``transforms`` are steps of ``lockgate.transforms`` (``zscore("x")``, ``one_hot("c")``,
    ...), fitted by streaming the train split's batches once (format 2); features no step
    names keep the default (numbers z-scored, text one-hot)."""
    from lockgate.errors import ColumnNotFoundError
    from lockgate.training.label_checks import check_label_present, check_label_varies
    from lockgate.training.transform import TransformGraph as Graph
    from lockgate.training.transform import drop_missing_label

    schema_features = list(load_schema(schema).features)
    if label not in schema_features:
        raise ColumnNotFoundError(label, schema_features, where="the schema (label)")
    chosen = features if features is not None else [f for f in schema_features if f != label]
    labels = _train_labels(examples, label)  # checked before anything is fitted on them
    present = drop_missing_label(labels, label)
    check_label_present(present, label, rows_before=labels.num_rows)
    if transforms:
        graph, _ = _fit_library(examples, label, chosen, transforms, task)
    else:
        train = drop_missing_label(read_split(examples, "train"), label)
        graph = Graph.fit(train, label=label, features=chosen, task=task)
    check_label_varies(present, label, task=graph.task)
    rows = present.num_rows
    graph.save(transform.path)
    transform.properties.update(
        label=label,
        task=graph.task,
        task_reason=graph.task_reason,
        classes=list(graph.label_classes) if graph.label_classes is not None else None,
        features=list(graph.features),
        outputs=len(graph.feature_names_out),
        train_rows=rows,
        **({"steps": [step["op"] for step in graph.steps]} if graph.steps else {}),
    )


def _train_labels(examples: Examples, label: str) -> Any:
    """The train split's label column alone (a table of one column)."""
    import pyarrow.dataset as ds

    from lockgate.data.components import split_files

    return ds.dataset(split_files(examples, "train"), format="parquet").to_table(columns=[label])


def _fit_library(
    examples: Examples,
    label: str,
    features: list[str],
    transforms: list[dict[str, Any]],
    task: str | None,
) -> tuple[Any, int]:
    """The library graph of the train split, read batch by batch (statistics' batch size)."""
    import pyarrow.dataset as ds

    from lockgate.data.components import split_files
    from lockgate.data.statistics.compute import BATCH_SIZE, coalesce
    from lockgate.training.transform_fit import fit_library
    from lockgate.transforms import spec_from_dict

    dataset = ds.dataset(split_files(examples, "train"), format="parquet")
    read = {label, *features, *(name for t in transforms for name in spec_from_dict(t).inputs)}
    columns = [name for name in dataset.schema.names if name in read]  # only what is used
    return fit_library(
        lambda: coalesce(dataset.to_batches(columns=columns, batch_size=BATCH_SIZE), BATCH_SIZE),
        dataset.schema,  # all columns, to name them when a step asks for a missing one
        label=label,
        features=features,
        transforms=transforms,
        task=task,
    )


def load_transform(transform: TransformGraph) -> Any:
    from lockgate.training.transform import TransformGraph as Graph

    return Graph.load(transform.path)


def prepare(examples: Examples, transform: Any, split: str) -> tuple[Any, Any, Any]:
    """(table, X, y) of one split, rows without a label dropped, via the fitted transform."""
    from lockgate.training.transform import drop_missing_label

    table = drop_missing_label(read_split(examples, split), transform.label)
    return table, transform.apply(table), transform.encode_label(table)


@component
def train(
    examples: Input[Examples],
    transform: Input[TransformGraph],
    model: Output[Model],
    base_model: Input[PushedModel] | None = None,
    hyperparameters: Input[HyperParameters] | None = None,
    *,
    trainer: str | Callable[..., Any] = "lightgbm",
    params: dict[str, Any] | None = None,
    seed: int = 0,
    trust: list[str] | None = None,
    sample_weight_column: str | None = None,
    class_weight: str | dict[str, float] | None = None,
    device: str = "cpu",
) -> None:
    """Train on the transformed train split; ``trainer`` is a spec name (``"lightgbm"``,
    ``"xgboost"``, ``"random_forest"``, ...), a scikit-learn estimator by import path
    (``"sklearn:sklearn.ensemble.ExtraTreesClassifier"``) or your own
    ``fn(X, y, params) -> fitted estimator``. Saved in a safe format with its sha256.

    A scikit-learn model that holds types beyond what lockgate's own trainers produce is
    refused when saved, naming them; ``trust`` lists the ones you vouch for, and is
    recorded with the model (``trusted_types``) for the evaluator and the server.

    ``sample_weight_column`` (a column of the train split that is not a feature) and
    ``class_weight`` (``"balanced"`` or ``{class: weight}``) weight the rows; both are
    multiplied when given together.

    ``base_model`` (``production_model("name")``) continues from that model (warm start);
    it must be of the trainer's framework and take the same transformed features.
    ``hyperparameters`` (a ``tune`` step's output) are laid over ``params``. ``device``:
    "cpu", "cuda" or "auto" (CUDA where the trainer can use it and a GPU is present)."""
    from lockgate.training.model_files import save_model
    from lockgate.training.trainers import framework_record, train_model, trainer_device
    from lockgate.training.warm_start import load_base_model
    from lockgate.training.weights import row_weights

    graph = load_transform(transform)
    params = {**(params or {}), **tuned_params(hyperparameters)}
    chosen = trainer_device(trainer, graph.task, device)
    base = load_base_model(base_model, graph) if base_model is not None else None
    table, X, y = prepare(examples, graph, "train")
    weights = row_weights(
        table,
        y,
        column=sample_weight_column,
        class_weight=class_weight,
        classes=graph.label_classes if graph.task == "classification" else None,
        features=list(graph.features),
    )
    eval_set = None
    if params.get("early_stopping_rounds") is not None:  # stops on the eval split
        _, X_eval, y_eval = prepare(examples, graph, "eval")
        eval_set = (X_eval, y_eval)
    estimator = train_model(
        X,
        y,
        spec=trainer,
        params=params,
        task=graph.task,
        seed=seed,
        eval_set=eval_set,
        sample_weight=weights,
        device=chosen.name,
        base_model=base.model if base is not None else None,
        base_framework=base.framework if base is not None else None,
    )
    info = save_model(estimator, model.path, trust=trust)
    model.properties.update(
        framework=info.framework,
        **framework_record(info.framework),
        file=info.file,
        sha256=info.sha256,
        trainer=trainer if isinstance(trainer, str) else getattr(trainer, "__qualname__", "custom"),
        params=params,
        task=graph.task,
        train_rows=int(len(y)),
        best_iteration=_best_iteration(estimator),
        sample_weight_column=sample_weight_column,
        class_weight=class_weight,
        trusted_types=info.trusted_types,
        device=chosen.name,
        device_note=chosen.note,
        base_model=base.record if base is not None else None,
        hyperparameters=hyperparameters.id if hyperparameters is not None else None,
        feature_names_out=list(graph.feature_names_out),
    )


def tuned_params(hyperparameters: HyperParameters | None) -> dict[str, Any]:
    """The best parameters a ``tune`` step chose (empty without one)."""
    if hyperparameters is None:
        return {}
    import json

    from lockgate.errors import ModelError

    path = hyperparameters.path / HyperParameters.FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        params = data["params"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the tuned parameters in {path}: {exc}") from exc
    if not isinstance(params, dict):
        raise ModelError(f"{path}: 'params' is not a JSON object")
    return params


def _best_iteration(estimator: Any) -> int | None:
    """The boosting round early stopping kept (LightGBM, XGBoost), else None."""
    for name in ("best_iteration_", "best_iteration"):  # XGBoost's raises when it did not stop
        value = getattr(estimator, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
