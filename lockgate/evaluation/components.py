"""The Model Evaluation and Validation Pipeline's component: evaluate, the model gate.

The candidate and the production baseline are scored on the same eval rows, each through
its own transform, by one call of the metric engine (so their bootstrap resamples are
paired); the gate decides on those scores; the artifact holds both, their difference, the
curves and an HTML report. Nothing here computes a metric or a threshold itself.
"""

from __future__ import annotations

import json
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


def predictions_of(graph: Any, loaded: Any, table: Any) -> Any:
    """One model's ``Predictions`` on ``table`` (its label already present in every row),
    through that model's own transform."""
    import numpy as np

    from lockgate.evaluation.engine import Predictions

    X = graph.apply(table)
    proba = loaded.predict_proba(X) if graph.task == "classification" else None
    return Predictions(
        y_pred=np.asarray(loaded.predict(X)),
        proba=None if proba is None else np.asarray(proba, dtype=np.float64),
    )


def load_candidate(
    model: Model, transform: TransformGraph, examples: Examples
) -> tuple[Any, Any, Any]:
    """(transform graph, eval rows with a label, loaded model) of a candidate, as evaluate
    and infra-validation both judge it: the model file checked against the sha256 and the
    trust the store recorded when it was trained, not what model.json says now."""
    from lockgate.training.model_files import load_model
    from lockgate.training.transform import TransformGraph as Graph
    from lockgate.training.transform import drop_missing_label

    graph = Graph.load(transform.path)
    table = drop_missing_label(read_split(examples, "eval"), graph.label)
    loaded = load_model(
        model.path,
        sha256=model.properties["sha256"],
        trusted=model.properties.get("trusted_types", []),
    )
    return graph, table, loaded


def load_pushed(pushed: PushedModel) -> tuple[Any, Any]:
    """(transform, model) of a PushedModel, loaded as the server loads it: folder fingerprint
    and model sha256 checked before anything is deserialised, and only the skops types the
    store recorded as trusted. A model imported from elsewhere (skops, LightGBM, XGBoost,
    ONNX) loads as well, so that it can be the baseline a candidate is compared with."""
    from lockgate.serving.servable import PipelineServable

    servable = PipelineServable.load(
        pushed.properties.get("model_name", "baseline"),
        "baseline",
        pushed.path,
        model_sha256=pushed.properties["model_sha256"],
        fingerprint=pushed.fingerprint,
        trusted_types=pushed.properties.get("trusted_types"),
    )
    return servable.transform, servable.model


def baseline_mismatch(candidate: Any, baseline: Any, table: Any) -> str | None:
    """Why the baseline cannot be scored beside the candidate on these rows, or None: a
    different task or label, other classes, or inputs the eval split does not have. (Other
    features are fine: each model reads the raw columns through its own transform.)"""
    if baseline.task != candidate.task:
        return f"the baseline is a {baseline.task} model and the candidate a {candidate.task} one"
    if baseline.label != candidate.label:
        return f"the baseline predicts '{baseline.label}' and the candidate '{candidate.label}'"
    if candidate.task == "classification":
        ours, theirs = candidate.label_classes or [], baseline.label_classes or []
        if sorted(map(str, ours)) != sorted(map(str, theirs)):
            return f"the baseline's classes {theirs} are not the candidate's {ours}"
    missing = [name for name in baseline.features if name not in table.column_names]
    if missing:
        return f"the baseline takes {missing}, which the eval split does not have"
    return None


def _in_candidate_order(predictions: Any, candidate: Any, baseline: Any) -> Any:
    """The baseline's class indices and probability columns in the candidate's class order."""
    import numpy as np

    from lockgate.evaluation.engine import Predictions

    ours = [str(c) for c in candidate.label_classes or []]
    theirs = [str(c) for c in baseline.label_classes or []]
    if ours == theirs:
        return predictions
    order = np.asarray([theirs.index(c) for c in ours])  # our column j is their order[j]
    to_ours = np.asarray([ours.index(c) for c in theirs])
    return Predictions(
        y_pred=to_ours[np.asarray(predictions.y_pred, dtype=np.int64)],
        proba=None if predictions.proba is None else predictions.proba[:, order],
    )


#: The overall metrics the run summary shows (with those a threshold names).
HEADLINE = {
    "classification": ("accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("mae", "rmse", "r2"),
}


@component
def evaluate(
    examples: Input[Examples],
    transform: Input[TransformGraph],
    model: Input[Model],
    baseline: Input[PushedModel] | None,
    evaluation: Output[ModelEvaluation],
    blessing: Output[Blessing],
    *,
    slice_by: list[Any] | None = None,
    thresholds: Any = None,
    metrics: list[Any] | None = None,
    n_resamples: int = 200,
    confidence_level: float = 0.95,
    min_slice_size: int = 1,
    decision_threshold: float = 0.5,
    bless_without_thresholds: bool = False,
    seed: int = 0,
) -> None:
    """Score the candidate and the baseline (the model in production) on the eval split:
    every metric, overall and on every slice, with bootstrap intervals. Blesses the
    candidate only when every threshold holds; with no thresholds it is not blessed unless
    ``bless_without_thresholds=True``.

    ``slice_by``: feature names, lists of names (crossed slices) and
    ``{"feature": name, "quantiles": k}`` (buckets of a numeric feature). ``thresholds``:
    ``{"accuracy": {"lower_bound": 0.9}}`` or a list of ``Threshold`` (value bounds, change
    against the baseline, per slice or on every slice, optionally significant). Slices
    smaller than ``min_slice_size`` are reported, never gated on. ``metrics``: the metric
    names or your own ``fn(y_true, y_pred, proba) -> float`` (default: all of the task's)."""
    import numpy as np

    from lockgate.evaluation.blessing import decide_blessing
    from lockgate.evaluation.curves import compute_curves
    from lockgate.evaluation.engine import higher_is_better, score_models
    from lockgate.evaluation.report import render_html
    from lockgate.evaluation.results import BootstrapSettings, differences

    graph, table, loaded = load_candidate(model, transform, examples)
    predictions = {"candidate": predictions_of(graph, loaded, table)}
    mismatch = None
    if baseline is not None:
        baseline_graph, baseline_model = load_pushed(baseline)
        mismatch = baseline_mismatch(graph, baseline_graph, table)
        if mismatch is None:
            predictions["baseline"] = _in_candidate_order(
                predictions_of(baseline_graph, baseline_model, table), graph, baseline_graph
            )
    classes = [str(c) for c in graph.label_classes] if graph.label_classes else None
    settings = BootstrapSettings(
        n_resamples=n_resamples, confidence_level=confidence_level, seed=seed
    )
    y_true = graph.encode_label(table)
    scores = score_models(
        graph.task,
        y_true,
        predictions,
        table,
        slice_by=list(slice_by or []),
        metrics=metrics,
        class_names=classes,
        decision_threshold=decision_threshold,
        min_slice_size=min_slice_size,
        bootstrap=settings,
    )
    candidate, base = scores["candidate"], scores.get("baseline")
    decision = decide_blessing(
        candidate,
        base,
        thresholds,
        directions={
            name: direction
            for name in candidate.overall.metrics
            if (direction := higher_is_better(name)) is not None
        },
        bless_without_thresholds=bless_without_thresholds,
        confidence_level=confidence_level,
    )
    refusals = []
    if mismatch is not None:
        refusals.append(
            f"the candidate cannot be compared with the model in production: {mismatch}"
        )
    if graph.task == "classification" and len(np.unique(y_true)) < 2:
        present = sorted({str(v) for v in table.column(graph.label).to_pylist()})
        refusals.append(
            f"the eval split holds {table.num_rows} rows of {len(present)} class(es) {present}:"
            " a classifier cannot be judged on one class (ROC-AUC, recall of the others and"
            " the comparison are undefined); ingest more data or a larger eval_fraction"
        )
    if refusals:
        decision.blessed = False
        decision.reasons[:0] = refusals
    report = {
        "format_version": 2,
        "task": graph.task,
        "classes": classes,
        "settings": {
            "n_resamples": n_resamples,
            "confidence_level": confidence_level,
            "min_slice_size": min_slice_size,
            "decision_threshold": decision_threshold,
            "slice_by": list(slice_by or []),
            "metrics": sorted(candidate.overall.metrics),
            "seed": seed,
        },
        "candidate": candidate.to_dict(),
        "baseline": base.to_dict() if base is not None else None,
        "baseline_uri": baseline.uri if baseline is not None else None,
        "baseline_mismatch": mismatch,
        "differences": differences(candidate, base, confidence_level) if base else None,
        "curves": {
            name: compute_curves(graph.task, y_true, p.y_pred, p.proba, classes, decision_threshold)
            for name, p in predictions.items()
        },
        "blessing": decision.to_dict(),
    }
    folder = evaluation.path
    (folder / "evaluation.json").write_text(json.dumps(report, indent=1, allow_nan=False))
    (folder / "report.html").write_text(render_html(report), encoding="utf-8")
    (blessing.path / "blessing.json").write_text(json.dumps(decision.to_dict(), indent=1))
    shown = [*HEADLINE[graph.task], *(c["metric"] for c in decision.to_dict()["checks"])]
    evaluation.properties.update(
        metrics=_flat(candidate.overall),
        baseline=_flat(base.overall) if base is not None else None,
        slices=len(candidate.slices),
        headline={
            name: candidate.overall.metrics[name].to_dict()
            for name in dict.fromkeys(shown)
            if name in candidate.overall.metrics
        },
    )
    blessing.properties.update(blessed=decision.blessed, reasons=decision.reasons)


def _flat(overall: Any) -> dict[str, float | None]:
    """The overall point estimates and the row count, as the run summary and the UI show."""
    values = {name: estimate.to_dict()["value"] for name, estimate in overall.metrics.items()}
    return {**values, "example_count": float(overall.example_count)}
