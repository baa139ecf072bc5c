"""What the evaluator computes, as plain data: the seam between the metric engine
(``evaluation/engine.py``), the gate (``evaluation/thresholds.py``), the report
(``evaluation/report.py``) and the ``evaluate`` component.

A slice is named by its key: ``()`` is the whole eval split, ``(("island", "Biscoe"),)`` one
value of one feature, ``(("island", "Biscoe"), ("sex", "male"))`` a crossed slice, and a
quantile bucket of a numeric feature has a value like ``"[39.2, 44.5)"``. Every metric on
every slice carries its point estimate, its bootstrap interval and the resampled values
themselves; the candidate and the baseline are resampled with the *same* Poisson weights, so
``candidate.samples - baseline.samples`` are paired differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SliceKey = tuple[tuple[str, Any], ...]
OVERALL: SliceKey = ()


def slice_label(key: SliceKey) -> str:
    """``"Overall"`` or ``"island=Biscoe, sex=male"`` (a missing value shows as ``null``)."""
    if not key:
        return "Overall"
    return ", ".join(f"{feature}={'null' if value is None else value}" for feature, value in key)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass
class MetricEstimate:
    """One metric on one slice of one model: the point estimate on the rows as they are
    (equal to scikit-learn's), the percentile bootstrap interval at the evaluation's level,
    and the resampled values (NaN where the metric is undefined on a resample). ``value`` is
    None when the metric is undefined on the slice (r2 on one row, AUC with one class)."""

    value: float | None
    lower: float | None = None
    upper: float | None = None
    samples: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, float | None]:
        return {
            "value": _finite(self.value),
            "lower": _finite(self.lower),
            "upper": _finite(self.upper),
        }


@dataclass
class SliceMetrics:
    """Every metric of one model on one slice. ``gated`` is False for a slice smaller than
    ``min_slice_size``: it is reported, never gated on, and ``note`` says why."""

    key: SliceKey
    example_count: int
    metrics: dict[str, MetricEstimate]
    gated: bool = True
    note: str | None = None

    @property
    def label(self) -> str:
        return slice_label(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": [[feature, value] for feature, value in self.key],
            "label": self.label,
            "example_count": self.example_count,
            "gated": self.gated,
            "note": self.note,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
        }


@dataclass
class ModelScores:
    """One model's metrics on every slice; ``slices[0]`` is the whole split (``OVERALL``).
    The candidate's and the baseline's lists hold the same keys in the same order."""

    slices: list[SliceMetrics]

    @property
    def overall(self) -> SliceMetrics:
        return self.slices[0]

    def by_key(self) -> dict[SliceKey, SliceMetrics]:
        return {s.key: s for s in self.slices}

    def to_dict(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.slices]


@dataclass(frozen=True)
class BootstrapSettings:
    """Poisson bootstrap (TFMA's method): every row of every resample gets a Poisson(1)
    weight drawn from ``seed``; ``n_resamples=0`` turns intervals off."""

    n_resamples: int = 200
    confidence_level: float = 0.95
    seed: int = 0


def percentile_interval(
    samples: np.ndarray, confidence_level: float
) -> tuple[float | None, float | None]:
    """The percentile interval of the finite samples; (None, None) when none is finite."""
    import numpy as np

    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    alpha = (1.0 - confidence_level) / 2.0
    lower, upper = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(lower), float(upper)


#: of the resamples that must give a defined difference for its interval to be trusted
MIN_DEFINED_FRACTION = 0.5


@dataclass(frozen=True)
class PairedDifference:
    """candidate - baseline of one metric on one slice. ``lower``/``upper``: the
    percentile interval of the paired resampled differences (the same Poisson weights on
    both sides, resamples where either side is undefined left out); None without
    resamples, or when fewer than half of them (or than two) are defined."""

    value: float | None
    lower: float | None
    upper: float | None
    defined: int
    resamples: int

    def to_dict(self) -> dict[str, float | None]:
        return {"value": _finite(self.value), "lower": self.lower, "upper": self.upper}


def paired_difference(
    metric: str,
    candidate: MetricEstimate,
    baseline: MetricEstimate,
    confidence_level: float,
) -> PairedDifference:
    """The one computation of candidate - baseline and its interval, for the report and
    the gate alike."""
    import numpy as np

    from lockgate.errors import ConfigError

    value = None
    if candidate.value is not None and baseline.value is not None:
        value = candidate.value - baseline.value
    if candidate.samples is None or baseline.samples is None:
        return PairedDifference(value, None, None, 0, 0)
    c = np.asarray(candidate.samples, dtype=np.float64)
    b = np.asarray(baseline.samples, dtype=np.float64)
    if c.shape != b.shape:
        raise ConfigError(
            f"the resamples of '{metric}' are not paired: the candidate has {c.size}, the"
            f" baseline {b.size}; score both models in one call so they share the weights"
        )
    d = c - b
    defined = int(np.isfinite(d).sum())
    if defined < max(2, math.ceil(MIN_DEFINED_FRACTION * c.size)):
        return PairedDifference(value, None, None, defined, int(c.size))
    lower, upper = percentile_interval(d, confidence_level)
    return PairedDifference(value, lower, upper, defined, int(c.size))


def differences(
    candidate: ModelScores, baseline: ModelScores, confidence_level: float
) -> list[dict[str, Any]]:
    """candidate - baseline for every metric on every slice both have, as evaluation.json
    holds it."""
    base = baseline.by_key()
    out = []
    for piece in candidate.slices:
        other = base.get(piece.key)
        if other is None:
            continue
        metrics = {
            name: paired_difference(name, estimate, other.metrics[name], confidence_level).to_dict()
            for name, estimate in piece.metrics.items()
            if name in other.metrics
        }
        out.append(
            {"slice": [[f, v] for f, v in piece.key], "label": piece.label, "metrics": metrics}
        )
    return out
