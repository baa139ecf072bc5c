"""The model gate: check every threshold on every slice it names; bless when none fails.

The thresholds themselves (kinds, slices, the accepted forms) are in ``thresholds.py``.

The significance rule (``significant=True``, change thresholds only). Candidate and baseline
are resampled with the same Poisson weights, so ``candidate.samples - baseline.samples`` are
paired differences (resamples where either is NaN are dropped). A significant change check
fails only when the candidate is worse than allowed both in its point estimate *and* across
the whole two-sided interval of the paired differences at ``confidence_level``: noise on a
small slice, whose interval reaches back inside the limit, does not block a good model, and
the rule is never stricter than the plain one. What keeps a bad model from slipping through:

1. The interval is of the *paired* difference. The rows that happen to land in a resample
   move both models alike, so that noise cancels; the interval is much narrower than the two
   models' own intervals, whose overlap would wave through a clearly worse model.
2. Only change checks take the rule. Value bounds always judge the point estimate.
3. When fewer than half of the resamples give a defined difference (and at least two), the
   interval is not trusted and the point estimate decides, as without the rule; the check's
   message says so.
4. ``significant=True`` without resamples (``n_resamples=0``) is a ConfigError, never a silent
   fall back to the point rule nor a silent pass.
5. A pass granted by the rule is not silent: the check keeps the point estimate, the interval
   and a message saying "not significantly", and that message is among the decision's reasons.
6. It does not re-open slices below ``min_slice_size``: those stay ungated (their checks are
   recorded as skipped with the engine's note). Keep a plain threshold on the overall slice
   beside a significant one on ``"every"`` slice: a candidate a little worse on many small
   slices is then caught where the rows are many.

Every change check records ``diff`` (candidate - baseline) and, where resamples exist,
``diff_lower``/``diff_upper`` (its interval), with or without ``significant``.

No thresholds at all: not blessed (as TFX), unless ``bless_without_thresholds=True``; the
reasons say so. The first model (no baseline): change checks are skipped ("no baseline: first
model"), bounds run. A metric that is undefined (value None) fails a bound and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, did_you_mean
from lockgate.evaluation.results import (
    MetricEstimate,
    ModelScores,
    SliceMetrics,
    paired_difference,
)
from lockgate.evaluation.thresholds import (
    BOUND_KINDS,
    CHANGE_KINDS,
    Threshold,
    parse_thresholds,
    resolve_slices,
)

_TOLERANCE = 1e-12  # a change exactly at the limit passes despite float rounding

# Kept for tune_component until it asks the engine (engine.higher_is_better); not the gate's
# source of directions any more: decide_blessing takes them as ``directions``.
HIGHER_IS_BETTER = frozenset({"accuracy", "f1_macro", "r2", "auc", "precision", "recall"})
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mse"})


@dataclass
class BlessingDecision:
    """The gate's verdict. ``checks`` holds one record per (threshold kind, slice), each with
    the keys ``metric, slice, slice_label, kind, value, baseline, bound, allowed, worse_by,
    higher_is_better, diff, diff_lower, diff_upper, significant, passed, skipped, message``:
    ``bound`` is the threshold's setting for that kind, ``allowed`` the allowed worsening in
    the metric's units (change kinds), ``worse_by`` the candidate's worsening (positive is
    worse), ``passed`` is None on a skipped check. ``reasons`` are the failing checks'
    messages, then notes (passes granted by significance, why nothing was checked);
    ``decided_by`` the failing checks, or when blessed every check that passed."""

    blessed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    decided_by: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["passed"] is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "blessed": self.blessed,
            "reasons": list(self.reasons),
            "checks": [dict(c) for c in self.checks],
            "decided_by": [dict(c) for c in self.decided_by],
        }


def decide_blessing(
    candidate: ModelScores,
    baseline: ModelScores | None,
    thresholds: Threshold
    | Sequence[Threshold | Mapping[str, Any]]
    | Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]
    | None,
    *,
    directions: Mapping[str, bool | None],
    bless_without_thresholds: bool = False,
    confidence_level: float = 0.95,
) -> BlessingDecision:
    """Check every threshold on every slice it names; blessed when none fails.

    Every setting is validated before any check runs (ConfigError with did-you-mean).
    """
    if not 0 < confidence_level < 1:
        raise ConfigError(f"confidence_level must be in (0, 1); got {confidence_level}")
    parsed = parse_thresholds(thresholds)
    if not parsed:
        if bless_without_thresholds:
            note = "no thresholds were set; blessed because bless_without_thresholds=True"
            return BlessingDecision(blessed=True, reasons=[note])
        return BlessingDecision(
            blessed=False,
            reasons=[
                "no thresholds were set: a model is blessed only when it meets thresholds;"
                " set evaluate's thresholds, or pass bless_without_thresholds=True to bless"
                " without a gate"
            ],
        )
    # every setting is checked before any check runs
    plans = [(t, _validate(t, candidate), _direction(t, directions)) for t in parsed]
    has_baseline = baseline is not None
    base_slices = baseline.by_key() if baseline is not None else {}
    checks = [
        _check(t, kind, higher, s, base_slices.get(s.key), has_baseline, confidence_level)
        for t, slices, higher in plans
        for s in slices
        for kind in t.kinds
    ]
    return _decision(checks)


def _validate(t: Threshold, candidate: ModelScores) -> list[SliceMetrics]:
    metrics = list(candidate.overall.metrics)
    if t.metric not in metrics:
        raise ConfigError(
            f"threshold on metric '{t.metric}', which the evaluation does not compute;"
            f" metrics are {metrics}{did_you_mean(t.metric, metrics)}"
        )
    if t.significant and candidate.overall.metrics[t.metric].samples is None:
        raise ConfigError(
            f"the threshold on '{t.metric}' sets significant=True, which needs bootstrap"
            " resamples, and the evaluation has none (n_resamples=0)",
            hint="set n_resamples > 0, or drop significant=True",
        )
    return resolve_slices(t, candidate)


def _direction(t: Threshold, directions: Mapping[str, bool | None]) -> bool | None:
    known = directions.get(t.metric)
    if t.higher_is_better is not None:
        if known is not None and known != t.higher_is_better:
            raise ConfigError(
                f"the threshold on '{t.metric}' sets higher_is_better={t.higher_is_better},"
                f" but {'higher' if known else 'lower'} '{t.metric}' is better; drop"
                " higher_is_better from the threshold"
            )
        return t.higher_is_better
    if known is None and t.change_kinds:
        raise ConfigError(
            f"lockgate does not know whether higher '{t.metric}' is better; set"
            " higher_is_better on its threshold"
        )
    return known


def _check(
    t: Threshold,
    kind: str,
    higher: bool | None,
    s: SliceMetrics,
    base: SliceMetrics | None,
    has_baseline: bool,
    level: float,
) -> dict[str, Any]:
    record = _record(t, kind, s)
    if kind in CHANGE_KINDS and higher is not None:
        record["higher_is_better"] = bool(higher)
    estimate = s.metrics.get(t.metric)
    record["value"] = _finite(estimate.value if estimate is not None else None)
    where = f"{t.metric} on {s.label}"
    if not s.gated:
        note = s.note or "the slice is not gated on"  # the engine's note says why
        return _skip(record, f"{where}: {note}; {kind} not checked")
    if kind in BOUND_KINDS:
        return _bound(record, where, kind)
    if not has_baseline:
        return _skip(record, f"{where}: no baseline: first model; {kind} not checked")
    if base is None:
        return _skip(record, f"{where}: the baseline has no such slice; {kind} not checked")
    assert higher is not None  # _direction raised for a change threshold without one
    return _change(record, where, t, kind, higher, estimate, base.metrics.get(t.metric), level)


def _record(t: Threshold, kind: str, s: SliceMetrics) -> dict[str, Any]:
    return {
        "metric": t.metric,
        "slice": [[feature, _plain(value)] for feature, value in s.key],
        "slice_label": s.label,
        "kind": kind,
        "value": None,
        "baseline": None,
        "bound": getattr(t, kind),
        "allowed": None,
        "worse_by": None,
        "higher_is_better": None,
        "diff": None,
        "diff_lower": None,
        "diff_upper": None,
        "significant": t.significant and kind in CHANGE_KINDS,
        "passed": None,
        "skipped": False,
        "message": "",
    }


def _skip(record: dict[str, Any], message: str) -> dict[str, Any]:
    record.update(skipped=True, passed=None, message=message)
    return record


def _bound(record: dict[str, Any], where: str, kind: str) -> dict[str, Any]:
    value, bound = record["value"], record["bound"]
    name = kind.replace("_", " ")
    if value is None:
        passed = False
        message = f"{where}: undefined (cannot be computed on these rows), so the {name}"
        message += f" {_fmt(bound)} is not met"
    else:
        lower = kind == "lower_bound"
        passed = value >= bound if lower else value <= bound
        relation = (">=" if lower else "<=") if passed else ("<" if lower else ">")
        message = f"{where}: {_fmt(value)} {relation} {name} {_fmt(bound)}"
    record.update(passed=passed, message=message)
    return record


def _change(
    record: dict[str, Any],
    where: str,
    t: Threshold,
    kind: str,
    higher: bool,
    estimate: MetricEstimate | None,
    base_estimate: MetricEstimate | None,
    level: float,
) -> dict[str, Any]:
    value = record["value"]
    base = _finite(base_estimate.value) if base_estimate is not None else None
    record["baseline"] = base
    paired = None
    if estimate is not None and base_estimate is not None:
        paired = paired_difference(t.metric, estimate, base_estimate, level)
    interval = None
    if paired is not None and paired.lower is not None and paired.upper is not None:
        interval = (paired.lower, paired.upper)
    if interval is not None:
        record["diff_lower"], record["diff_upper"] = interval
    if base is None:
        return _skip(record, f"{where}: undefined for the baseline; {kind} not checked")
    if value is None:
        record["passed"] = False
        record["message"] = (
            f"{where}: undefined for the candidate (the baseline has {_fmt(base)}), so the"
            f" change cannot be checked"
        )
        return record
    relative = kind == "max_relative_regression"
    setting = record["bound"]
    allowed = setting * abs(base) if relative else setting
    diff = value - base
    worse_by = -diff if higher else diff
    record.update(diff=diff, worse_by=worse_by, allowed=allowed)
    beyond = worse_by > allowed + _TOLERANCE
    amount = _fmt(abs(worse_by))
    if relative and base != 0:
        amount += f" ({abs(worse_by) / abs(base):.1%})"
    limit = f"{100 * setting:g}% of the baseline ({_fmt(allowed)})" if relative else _fmt(allowed)
    pct = f"{100 * level:g}%"
    head, versus = f"{where}: {_fmt(value)}", f"the baseline {_fmt(base)}"
    passed = not beyond
    if worse_by == 0:
        message = f"{head} equals {versus}"
    elif worse_by < 0:
        message = f"{head} is {amount} better than {versus}"
    elif not beyond:
        message = f"{head} is {amount} worse than {versus}, within the allowed {limit}"
    elif not t.significant:
        message = f"{head} is {amount} worse than {versus}; at most {limit} is allowed"
    elif interval is None:
        counts = f"{paired.defined} of {paired.resamples}" if paired is not None else "none"
        message = (
            f"{head} is {amount} worse than {versus}; at most {limit} is allowed, and too few"
            f" resamples are defined ({counts}) for an interval, so the point estimate decides"
        )
    else:
        lo, hi = (-interval[1], -interval[0]) if higher else (interval[0], interval[1])
        span = f"the {pct} interval of the worsening [{_fmt(lo)}, {_fmt(hi)}]"
        if lo > allowed + _TOLERANCE:
            message = (
                f"{head} is {amount} worse than {versus}; at most {limit} is allowed, and"
                f" {span} lies entirely beyond it"
            )
        else:
            passed = True
            message = (
                f"{head} is {amount} worse than {versus}, more than the allowed {limit} but"
                f" not significantly: {span} does not lie entirely beyond it"
            )
    if interval is not None and not (beyond and t.significant):
        message += f" (difference {_fmt(diff)}, {pct} interval"
        message += f" [{_fmt(interval[0])}, {_fmt(interval[1])}])"
    record.update(passed=passed, message=message)
    return record


def _decision(checks: list[dict[str, Any]]) -> BlessingDecision:
    failed = [c for c in checks if c["passed"] is False]
    passed = [c for c in checks if c["passed"] is True]
    reasons = [c["message"] for c in failed]
    reasons += [c["message"] for c in passed if "but not significantly" in c["message"]]
    if not failed and not passed:
        skipped = sorted({c["message"].split(": ", 1)[1] for c in checks})
        reasons.append(f"no check could run ({'; '.join(skipped)}); blessed as none failed")
    return BlessingDecision(
        blessed=not failed, checks=checks, reasons=reasons, decided_by=failed or passed
    )


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _fmt(value: float) -> str:
    return f"{value:.4g}"


__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "BlessingDecision",
    "Threshold",
    "decide_blessing",
    "parse_thresholds",
]
