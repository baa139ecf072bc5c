"""Realistic ``evaluation.json`` dicts (format_version 2) for the report and ``show`` tests,
built from real curves (``compute_curves``) and the documented shapes of ``results.py``."""

from __future__ import annotations

from typing import Any

import numpy as np

from lockgate.evaluation.curves import compute_curves
from lockgate.evaluation.results import MetricEstimate, ModelScores, SliceMetrics

HOSTILE = "<script>alert(1)</script>"


def _scores(
    metrics: dict[str, float], slices: list[tuple[Any, int, bool]], shift: float
) -> ModelScores:
    out = []
    for key, count, gated in slices:
        width = 0.5 / np.sqrt(count)
        values = {
            name: MetricEstimate(value + shift, value + shift - width, value + shift + width)
            for name, value in metrics.items()
        }
        out.append(
            SliceMetrics(
                key,
                count,
                values,
                gated,
                None if gated else f"{count} examples < min_slice_size 20",
            )
        )
    return ModelScores(out)


def _differences(candidate: ModelScores, baseline: ModelScores) -> list[dict[str, Any]]:
    out = []
    for c, b in zip(candidate.slices, baseline.slices, strict=True):
        metrics = {}
        for name, est in c.metrics.items():
            d = (est.value or 0.0) - (b.metrics[name].value or 0.0)
            half = ((est.upper or 0.0) - (est.lower or 0.0)) / 2
            metrics[name] = {"value": d, "lower": d - half, "upper": d + half}
        out.append({"slice": c.to_dict()["slice"], "label": c.label, "metrics": metrics})
    return out


def classification_evaluation(
    *, baseline: bool, classes: list[str] | None = None
) -> dict[str, Any]:
    """A binary (or multiclass, with 3+ ``classes``) classifier, sliced by island and by a
    hostile value, failing a per-slice change threshold on island=Dream."""
    classes = classes or ["Adelie", "Gentoo"]
    k = len(classes)
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 0.8
    proba /= proba.sum(axis=1, keepdims=True)
    slices = [
        ((), n, True),
        ((("island", "Biscoe"),), 160, True),
        ((("island", "Dream"),), 128, True),
        ((("island", HOSTILE),), 12, False),
    ]
    metrics = {
        "accuracy": 0.912,
        "f1_macro": 0.9,
        "roc_auc": 0.97,
        "log_loss": 0.25,
        "brier_score": 0.07,
    }
    metrics[f"recall[{classes[0]}]"] = 0.88
    candidate = _scores(metrics, slices, 0.0)
    base = _scores(metrics, slices, 0.03) if baseline else None
    checks: list[dict[str, Any]] = [
        {
            "metric": "accuracy",
            "slice": [],
            "label": "Overall",
            "kind": "value",
            "passed": True,
            "message": "accuracy 0.912 >= lower bound 0.8",
        },
        {
            "metric": "brier_score",
            "slice": [["island", HOSTILE]],
            "label": f"island={HOSTILE}",
            "kind": "change",
            "passed": None,
            "skipped": True,
            "message": f"island={HOSTILE} has 12 examples < min_slice_size 20: not gated",
        },
    ]
    if baseline:
        checks.append(
            {
                "metric": "f1_macro",
                "slice": [["island", "Dream"]],
                "label": "island=Dream",
                "kind": "change",
                "passed": False,
                "message": "f1_macro on island=Dream is 0.03 worse than the baseline; at most 0.02 is allowed",
            }
        )
    candidate_curves = compute_curves("classification", y, proba.argmax(1), proba, classes, 0.5)
    noisy = np.clip(proba + rng.normal(0, 0.1, proba.shape), 1e-6, None)
    noisy /= noisy.sum(axis=1, keepdims=True)
    baseline_curves = compute_curves("classification", y, noisy.argmax(1), noisy, classes, 0.5)
    failed = [c["message"] for c in checks if c["passed"] is False]
    return {
        "format_version": 2,
        "task": "classification",
        "classes": classes,
        "settings": {
            "n_resamples": 200,
            "confidence_level": 0.95,
            "min_slice_size": 20,
            "decision_threshold": 0.5,
            "slice_by": ["island"],
            "metrics": None,
        },
        "candidate": candidate.to_dict(),
        "baseline": base.to_dict() if base else None,
        "baseline_uri": "/project/artifacts/PushedModel/7" if baseline else None,
        "differences": _differences(candidate, base) if base else None,
        "curves": {
            "candidate": candidate_curves,
            "baseline": baseline_curves if baseline else None,
        },
        "blessing": {"blessed": not failed, "checks": checks, "reasons": failed},
    }


def regression_evaluation(*, baseline: bool) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    n = 800
    y = rng.normal(150, 40, n)
    pred = y + rng.normal(0, 20, n)
    slices = [((), n, True), ((("sex", "F"),), 420, True), ((("sex", "M"),), 380, True)]
    metrics = {"mae": 16.1, "rmse": 20.2, "r2": 0.74, "residual_p50": 0.4}
    candidate = _scores(metrics, slices, 0.0)
    base = _scores(metrics, slices, -1.0) if baseline else None
    checks = [
        {
            "metric": "rmse",
            "slice": [["sex", "M"]],
            "label": "sex=M",
            "kind": "value",
            "passed": False,
            "message": "rmse 20.2 > upper bound 18 on sex=M",
        }
    ]
    return {
        "format_version": 2,
        "task": "regression",
        "classes": None,
        "settings": {
            "n_resamples": 200,
            "confidence_level": 0.9,
            "min_slice_size": 1,
            "decision_threshold": 0.5,
            "slice_by": ["sex"],
            "metrics": None,
        },
        "candidate": candidate.to_dict(),
        "baseline": base.to_dict() if base else None,
        "baseline_uri": "/project/artifacts/PushedModel/3" if baseline else None,
        "differences": _differences(candidate, base) if base else None,
        "curves": {
            "candidate": compute_curves("regression", y, pred, None),
            "baseline": compute_curves("regression", y, pred + rng.normal(0, 5, n), None)
            if baseline
            else None,
        },
        "blessing": {"blessed": False, "checks": checks, "reasons": [checks[0]["message"]]},
    }


def format_1_evaluation() -> dict[str, Any]:
    """evaluation.json as the evaluate component wrote it before format_version 2."""
    overall = {"accuracy": 0.95, "f1_macro": 0.94, "log_loss": 0.2, "example_count": 70.0}
    return {
        "task": "classification",
        "overall": overall,
        "slices": [
            {"feature": "island", "value": "Biscoe", "metrics": {**overall, "example_count": 40.0}},
            {"feature": "island", "value": None, "metrics": {**overall, "example_count": 3.0}},
        ],
        "baseline": {"overall": {**overall, "accuracy": 0.9}, "slices": []},
        "baseline_uri": "/somewhere",
    }
