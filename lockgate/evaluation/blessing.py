"""The evaluation gate: bless a candidate only if it meets every threshold.

Absolute checks compare the candidate with fixed bounds; regression checks compare it with
the baseline (the model now in production) and allow at most ``max_regression`` of change
in the bad direction. With no baseline (the first model) only absolute checks run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lockgate.errors import ConfigError, did_you_mean

HIGHER_IS_BETTER = frozenset({"accuracy", "f1_macro", "r2", "auc", "precision", "recall"})
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mse"})


@dataclass(frozen=True)
class Threshold:
    """Bounds on one metric; ``max_regression`` is absolute, in the metric's units."""

    metric: str
    lower_bound: float | None = None
    upper_bound: float | None = None
    max_regression: float | None = None
    higher_is_better: bool | None = None  # needed only for metrics lockgate does not know

    def __post_init__(self) -> None:
        if self.max_regression is not None:
            if self.max_regression < 0:
                raise ConfigError(
                    f"max_regression for '{self.metric}' must be >= 0; got {self.max_regression}"
                )
            if self.direction_higher is None:
                raise ConfigError(
                    f"lockgate does not know whether higher '{self.metric}' is better;"
                    " set higher_is_better on its threshold"
                )

    @property
    def direction_higher(self) -> bool | None:
        if self.higher_is_better is not None:
            return self.higher_is_better
        if self.metric in HIGHER_IS_BETTER:
            return True
        if self.metric in LOWER_IS_BETTER:
            return False
        return None


@dataclass
class BlessingDecision:
    """The gate's verdict, with every check so that the UI can show why."""

    blessed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_thresholds(
    thresholds: list[Threshold] | Mapping[str, Mapping[str, Any]],
) -> list[Threshold]:
    """Accept ``{"accuracy": {"lower_bound": 0.9}}`` as well as a list of Threshold."""
    if not isinstance(thresholds, Mapping):
        return list(thresholds)
    allowed = [f.name for f in fields(Threshold) if f.name != "metric"]
    parsed = []
    for metric, spec in thresholds.items():
        for key in spec:
            if key not in allowed:
                raise ConfigError(
                    f"unknown threshold setting '{key}' for metric '{metric}'; settings are"
                    f" {allowed}{did_you_mean(key, allowed)}"
                )
        parsed.append(Threshold(metric=metric, **spec))
    return parsed


def decide_blessing(
    candidate: Mapping[str, float | None],
    baseline: Mapping[str, float | None] | None,
    thresholds: list[Threshold] | Mapping[str, Mapping[str, Any]],
) -> BlessingDecision:
    """Run every check; blessed only when all pass (an unavailable value fails)."""
    checks: list[dict[str, Any]] = []
    for t in parse_thresholds(thresholds):
        if t.metric not in candidate:
            raise ConfigError(
                f"threshold on metric '{t.metric}', which the evaluation does not compute;"
                f" metrics are {sorted(candidate)}{did_you_mean(t.metric, candidate)}"
            )
        value = candidate[t.metric]
        if t.lower_bound is not None:
            checks.append(_absolute(t.metric, value, t.lower_bound, lower=True))
        if t.upper_bound is not None:
            checks.append(_absolute(t.metric, value, t.upper_bound, lower=False))
        if t.max_regression is not None and baseline is not None:
            checks.append(_regression(t, value, baseline.get(t.metric)))
    reasons = [c["message"] for c in checks if not c["passed"]]
    return BlessingDecision(blessed=not reasons, checks=checks, reasons=reasons)


def _available(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _absolute(metric: str, value: float | None, bound: float, *, lower: bool) -> dict[str, Any]:
    name = "lower bound" if lower else "upper bound"
    if not _available(value):
        passed, message = False, f"{metric} is not available, so its {name} {bound} is not met"
    else:
        assert value is not None
        passed = value >= bound if lower else value <= bound
        relation = (">=" if lower else "<=") if passed else ("<" if lower else ">")
        message = f"{metric} {value:.6g} {relation} {name} {bound:.6g}"
    return {
        "metric": metric,
        "kind": "absolute",
        "value": value,
        "bound": bound,
        "passed": passed,
        "message": message,
    }


def _regression(t: Threshold, value: float | None, base: float | None) -> dict[str, Any]:
    allowed = t.max_regression
    assert allowed is not None
    if not _available(base):
        passed = True
        message = f"baseline has no {t.metric}; regression not checked"
    elif not _available(value):
        passed, message = False, f"{t.metric} is not available to compare with the baseline"
    else:
        assert value is not None and base is not None
        worse_by = (base - value) if t.direction_higher else (value - base)
        passed = worse_by <= allowed + 1e-12
        if passed:
            message = (
                f"{t.metric} {value:.6g} vs baseline {base:.6g}: within the allowed"
                f" regression {allowed:.6g}"
            )
        else:
            message = (
                f"{t.metric} {value:.6g} is {worse_by:.6g} worse than the baseline"
                f" {base:.6g}; at most {allowed:.6g} is allowed"
            )
    return {
        "metric": t.metric,
        "kind": "regression",
        "value": value,
        "baseline": base,
        "max_regression": allowed,
        "passed": passed,
        "message": message,
    }
