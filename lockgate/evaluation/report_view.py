"""What both renderings of the evaluation report read from ``evaluation.json``: the
evaluation in format 2 (a format 1 one upgraded), its checks in order (failing, skipped,
passing), the metrics worth a table, the rows of candidate, baseline and difference per
slice, and how an estimate with its interval is written (``"0.912 [0.887, 0.934]"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lockgate.errors import ConfigError, DataError, did_you_mean
from lockgate.evaluation.results import slice_label

__all__ = [
    "FORMAT_VERSION",
    "available_metrics",
    "check_slice",
    "check_status",
    "check_text",
    "failing_cells",
    "fmt_estimate",
    "fmt_number",
    "main_metrics",
    "normalise_evaluation",
    "ordered_checks",
    "rows",
    "significant",
    "summary_line",
    "unlisted_reasons",
    "verdict",
]

FORMAT_VERSION = 2
MAIN_METRICS = {
    "classification": ("accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("mae", "rmse", "r2"),
}
_STATUS_ORDER = {"failed": 0, "skipped": 1, "passed": 2}


def normalise_evaluation(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """``evaluation`` in format 2; a format 1 dict (task, overall, slices, baseline) becomes
    one with point estimates only, no curves, and the verdict only when the caller added
    the run's ``blessing.json`` as ``"blessing"``."""
    version = evaluation.get("format_version", 1)
    if version == FORMAT_VERSION:
        return dict(evaluation)
    if version != 1 or "overall" not in evaluation:
        raise DataError(
            f"evaluation.json has format_version {version!r}; this lockgate reads 1 and"
            f" {FORMAT_VERSION}. Upgrade lockgate or run the evaluate step again"
        )
    baseline = evaluation.get("baseline")
    return {
        "format_version": 1,
        "task": evaluation.get("task"),
        "classes": None,
        "settings": {},
        "candidate": _v1_scores(evaluation),
        "baseline": _v1_scores(baseline) if baseline else None,
        "baseline_uri": evaluation.get("baseline_uri"),
        "differences": None,
        "curves": None,
        "blessing": evaluation.get("blessing"),  # blessing.json beside it, when the caller has it
    }


def _v1_scores(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    def entry(key: list[list[Any]], metrics: Mapping[str, Any]) -> dict[str, Any]:
        count = metrics.get("example_count")
        return {
            "slice": key,
            "label": slice_label(tuple((f, v) for f, v in key)),
            "example_count": int(count) if isinstance(count, int | float) else None,
            "gated": True,
            "note": None,
            "metrics": {
                name: {"value": value, "lower": None, "upper": None}
                for name, value in metrics.items()
                if name != "example_count"
            },
        }

    out = [entry([], scores.get("overall") or {})]
    for s in scores.get("slices") or []:
        out.append(entry([[s.get("feature"), s.get("value")]], s.get("metrics") or {}))
    return out


def check_status(check: Mapping[str, Any]) -> str:
    """``"failed"``, ``"skipped"`` (not evaluated, e.g. no baseline yet) or ``"passed"``."""
    if check.get("skipped") or check.get("status") == "skipped" or check.get("passed") is None:
        return "skipped"
    return "passed" if check.get("passed") else "failed"


def ordered_checks(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The blessing's checks, failing first, then skipped, then passing (stable within)."""
    checks = list((evaluation.get("blessing") or {}).get("checks") or [])
    return sorted(checks, key=lambda c: _STATUS_ORDER[check_status(c)])


def check_slice(check: Mapping[str, Any]) -> str:
    """The label of the slice a check is on (the whole split when it names none)."""
    if check.get("label"):
        return str(check["label"])
    key = check.get("slice")
    if isinstance(key, Sequence) and not isinstance(key, str):
        return slice_label(tuple((str(p[0]), p[1]) for p in key))
    return slice_label(()) if key is None else str(key)


def check_text(check: Mapping[str, Any]) -> str:
    """The check's own message, or one made from its parts."""
    text = check.get("message") or check.get("reason")
    if text:
        return str(text)
    parts = [str(check.get(k)) for k in ("metric", "kind", "value") if check.get(k) is not None]
    return " ".join(parts) or json.dumps(check, default=str)


def unlisted_reasons(evaluation: Mapping[str, Any]) -> list[str]:
    """The blessing's reasons that no check states (``"no thresholds: not blessed"``)."""
    blessing = evaluation.get("blessing") or {}
    listed = {check_text(c) for c in blessing.get("checks") or []}
    return [str(r) for r in blessing.get("reasons") or [] if str(r) not in listed]


def verdict(evaluation: Mapping[str, Any]) -> str | None:
    """``"BLESSED"``, ``"NOT BLESSED"``, or None when the evaluation records no verdict."""
    blessing = evaluation.get("blessing")
    if not blessing or blessing.get("blessed") is None:
        return None
    return "BLESSED" if blessing["blessed"] else "NOT BLESSED"


def main_metrics(evaluation: Mapping[str, Any], metrics: Sequence[str] | None = None) -> list[str]:
    """The metrics the tables show: ``metrics`` when given (each must be in the evaluation),
    else those a threshold names, then the task's main ones, as far as they were computed."""
    available = available_metrics(evaluation)
    if metrics:
        for name in metrics:
            if name not in available:
                raise ConfigError(
                    f"metric '{name}' is not in this evaluation; metrics are"
                    f" {available}{did_you_mean(name, available)}"
                )
        return list(dict.fromkeys(metrics))
    named = [str(c["metric"]) for c in ordered_checks(evaluation) if c.get("metric")]
    wanted = [*named, *MAIN_METRICS.get(str(evaluation.get("task")), ())]
    chosen = [m for m in dict.fromkeys(wanted) if m in available]
    return chosen or available[:4]


def available_metrics(evaluation: Mapping[str, Any]) -> list[str]:
    names: dict[str, None] = {}
    for entry in evaluation.get("candidate") or []:
        names.update(dict.fromkeys(entry.get("metrics") or {}))
    return list(names)


def _slice_id(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry.get("slice"), default=str)


def rows(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per slice: the candidate's entry, the baseline's and the difference's (or
    None), matched by slice key."""
    baseline = {_slice_id(e): e for e in evaluation.get("baseline") or []}
    differences = {_slice_id(e): e for e in evaluation.get("differences") or []}
    return [
        {
            "candidate": entry,
            "baseline": baseline.get(_slice_id(entry)),
            "difference": differences.get(_slice_id(entry)),
        }
        for entry in evaluation.get("candidate") or []
    ]


def failing_cells(evaluation: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(slice label, metric) of every failed check."""
    return {
        (check_slice(c), str(c.get("metric")))
        for c in ordered_checks(evaluation)
        if check_status(c) == "failed"
    }


def fmt_number(value: Any, *, signed: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    size = abs(value)
    sign = "+" if signed else ""
    if size == 0 or 1e-3 <= size < 1e4:
        return f"{value:{sign}.3f}"
    return f"{value:{sign}.4g}"


def fmt_estimate(
    estimate: Mapping[str, Any] | None, *, signed: bool = False, sep: str = " "
) -> str:
    """``"0.912 [0.887, 0.934]"``; the point alone without an interval; ``"–"`` if undefined."""
    if not estimate or estimate.get("value") is None:
        return "–"
    text = fmt_number(estimate["value"], signed=signed)
    lower, upper = estimate.get("lower"), estimate.get("upper")
    if lower is not None and upper is not None:
        text += f"{sep}[{fmt_number(lower, signed=signed)}, {fmt_number(upper, signed=signed)}]"
    return text


def significant(estimate: Mapping[str, Any] | None) -> bool:
    """A difference whose interval lies wholly on one side of zero."""
    if not estimate:
        return False
    lower, upper = estimate.get("lower"), estimate.get("upper")
    return lower is not None and upper is not None and (lower > 0 or upper < 0)


def summary_line(evaluation: Mapping[str, Any]) -> str:
    """Task, eval rows, baseline and how the intervals were made, in one line."""
    settings = evaluation.get("settings") or {}
    candidate = evaluation.get("candidate") or []
    parts = [str(evaluation.get("task") or "unknown task")]
    if candidate and candidate[0].get("example_count") is not None:
        parts.append(f"{candidate[0]['example_count']} eval examples")
    uri = evaluation.get("baseline_uri")
    parts.append(f"baseline {uri}" if evaluation.get("baseline") else "no baseline")
    if settings.get("n_resamples"):
        level = settings.get("confidence_level") or 0.95
        parts.append(f"{level:.0%} intervals from {settings['n_resamples']} bootstrap resamples")
    elif evaluation.get("format_version") == 1:
        parts.append("no intervals (evaluation format 1)")
    if (settings.get("min_slice_size") or 1) > 1:
        parts.append(f"slices under {settings['min_slice_size']} examples not gated")
    if (
        settings.get("decision_threshold") is not None
        and evaluation.get("task") == "classification"
    ):
        parts.append(f"decision threshold {settings['decision_threshold']}")
    return " · ".join(parts)
