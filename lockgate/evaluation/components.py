"""The Model Evaluation and Validation Pipeline's component: evaluate, the model gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lockgate.core.artifacts import (
    Blessing,
    Examples,
    Model,
    ModelEvaluation,
    PushedModel,
    TransformGraph,
)
from lockgate.core.component import Input, Output, component
from lockgate.data.components import read_split


def score(graph: Any, loaded: Any, table: Any, slice_by: list[str]) -> dict[str, Any]:
    """Metrics of one model (its own transform) on a table, overall and per slice."""
    from lockgate.errors import ColumnNotFoundError
    from lockgate.evaluation.metrics import compute_metrics, sliced_metrics
    from lockgate.training.transform import drop_missing_label

    table = drop_missing_label(table, graph.label)
    X, y = graph.apply(table), graph.encode_label(table)
    predicted = loaded.predict(X)
    proba = loaded.predict_proba(X) if graph.task == "classification" else None
    n_classes = len(graph.label_classes) if graph.label_classes else None
    for feature in slice_by:
        if feature not in table.column_names:
            raise ColumnNotFoundError(
                feature, table.column_names, where="the eval split (slice_by)"
            )
    slices = sliced_metrics(
        graph.task,
        y,
        predicted,
        proba,
        {feature: table.column(feature).to_pylist() for feature in slice_by},
        n_classes,
    )
    return {
        "overall": compute_metrics(graph.task, y, predicted, proba, n_classes),
        "slices": slices,
    }


def load_pushed(pushed: PushedModel) -> tuple[Any, Any]:
    """(transform, model) of a PushedModel, loaded as the server loads it: folder fingerprint
    and model sha256 checked before anything is deserialised, and only the skops types the
    store recorded as trusted. A model imported from elsewhere (skops, LightGBM, XGBoost,
    ONNX) loads as well, so that it can be the baseline a candidate is compared with."""
    from lockgate.serving.servable import PipelineServable

    servable = PipelineServable.load(
        pushed.properties.get("model_name", "baseline"),
        "baseline",
        pushed.uri,
        model_sha256=pushed.properties["model_sha256"],
        fingerprint=pushed.fingerprint,
        trusted_types=pushed.properties.get("trusted_types"),
    )
    return servable.transform, servable.model


@component
def evaluate(
    examples: Input[Examples],
    transform: Input[TransformGraph],
    model: Input[Model],
    baseline: Input[PushedModel] | None,
    evaluation: Output[ModelEvaluation],
    blessing: Output[Blessing],
    *,
    slice_by: list[str] | None = None,
    thresholds: dict[str, dict[str, float]] | None = None,
) -> None:
    """Score the candidate on the eval split, overall and per slice, and compare it with the
    baseline (the model in production). Blesses it only when every threshold holds."""
    from lockgate.evaluation.blessing import decide_blessing
    from lockgate.training.model_files import load_model
    from lockgate.training.transform import TransformGraph as Graph

    slice_by = list(slice_by or [])
    table = read_split(examples, "eval")
    graph = Graph.load(transform.uri)
    # the trust the store recorded when the model was trained, not what model.json says now
    loaded = load_model(
        Path(model.uri),
        sha256=model.properties["sha256"],
        trusted=model.properties.get("trusted_types", []),
    )
    candidate = score(graph, loaded, table, slice_by)
    baseline_scores = None
    if baseline is not None:
        baseline_graph, baseline_model = load_pushed(baseline)
        baseline_scores = score(baseline_graph, baseline_model, table, slice_by)
    decision = decide_blessing(
        candidate["overall"],
        baseline_scores["overall"] if baseline_scores else None,
        thresholds or {},
    )
    report = {
        "task": graph.task,
        "overall": candidate["overall"],
        "slices": candidate["slices"],
        "baseline": baseline_scores,
        "baseline_uri": baseline.uri if baseline is not None else None,
    }
    (Path(evaluation.uri) / "evaluation.json").write_text(json.dumps(report, indent=1))
    (Path(blessing.uri) / "blessing.json").write_text(json.dumps(decision.to_dict(), indent=1))
    evaluation.properties.update(
        metrics=candidate["overall"], baseline=report["baseline"] and report["baseline"]["overall"]
    )
    blessing.properties.update(blessed=decision.blessed, reasons=decision.reasons)
