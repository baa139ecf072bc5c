"""How a first-draft schema is read off statistics without causing false alarms.

The inferred schema must pass a fresh sample of the same data: a gate that cries wolf on
healthy spans teaches people to ignore it. So each rule leaves room for sampling noise and
still catches the gross changes (a column half empty, values from nowhere, a unit change,
a category explosion):

- presence: a column with no missing value in at least ``REQUIRED_MIN_ROWS`` rows is
  required (``nullable: false``). Otherwise ``min_presence`` is the observed fraction less
  ``max(PRESENCE_MARGIN, 4 standard errors)``, the error being that of a fresh span of
  ``REFERENCE_ROWS`` rows plus that of the sample itself, rounded down to 0.01.
- domain: only for string and bool features whose values are all known (exact counts, at
  most ``DOMAIN_MAX`` values) and repeat (at least ``DOMAIN_MIN_REPEATS`` rows per value,
  and at most 5% of rows holding a value seen once, the Good-Turing estimate of the mass
  not seen yet). ``domain_tolerance`` is twice that unseen mass, at least 0.01.
- range: TFDV infers none; a hard [min, max] from the sample fails the first span with a
  new extreme. Here the observed range is widened by ``RANGE_MARGIN`` of its width on each
  side (not below 0 for data that had no negative value), rounded outward to a readable
  number, and written with ``severity: {out_of_range: warning}``: it reports a unit change
  or a sentinel such as -999 without stopping the run; delete the line to make it a gate.
- max_distinct: only for features whose set of values looks complete (every string value
  seen at least ``SATURATED_MIN_COUNT`` times; for ints, ``INT_SATURATED_REPEATS`` rows per
  distinct value): ``2 * distinct + 10``. An open-ended feature (names, ids) gets none,
  because its distinct count grows with the span's size.
- value_count: a list feature whose rows all had the same length keeps that length.
- no key (uniqueness in a sample is no evidence of a key) and no drift or skew threshold
  (the documented defaults apply until a person chooses one).

``update_schema`` is the other half: once people own the schema, new data changes only
what it contradicts (a domain gains the values seen, a range widens, a new column is
added, a column gone is removed), and every choice nobody was asked about — severities,
thresholds, a key, a tightened range the data still fits — stays as written.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lockgate.data.schema import TYPES, FeatureSpec, Schema

__all__ = [
    "DOMAIN_MAX",
    "DOMAIN_MIN_REPEATS",
    "PRESENCE_MARGIN",
    "RANGE_MARGIN",
    "REFERENCE_ROWS",
    "REQUIRED_MIN_ROWS",
    "infer_feature",
]

DOMAIN_MAX = 50
DOMAIN_MIN_REPEATS = 10
DOMAIN_MIN_TOLERANCE = 0.01
DOMAIN_MAX_UNSEEN = 0.05
REQUIRED_MIN_ROWS = 100
REFERENCE_ROWS = 50
PRESENCE_MARGIN = 0.1
RANGE_MARGIN = 0.5
SATURATED_MIN_COUNT = 5
INT_SATURATED_REPEATS = 20


def infer_feature(fs: dict[str, Any], num_rows: int) -> FeatureSpec:
    """The spec of one feature from its statistics (``num_rows``: rows of the span)."""
    kind = fs["type"] if fs["type"] in TYPES else "string"  # all-null: no type seen
    spec = FeatureSpec(type=kind)
    spec.min_presence, spec.nullable = _presence(fs["count"], num_rows)
    values = fs.get("values", {}) if kind == "list" else fs
    if kind == "list":
        counts = fs.get("value_count") or {}
        if counts.get("min") is not None and counts.get("min") == counts.get("max"):
            spec.value_count = (int(counts["min"]), int(counts["max"]))
    value_kind = values.get("type", kind)
    if value_kind in ("string", "bool"):
        domain = _domain(values)
        if domain is not None:
            spec.domain, spec.domain_tolerance = domain
    if value_kind in ("int", "float"):
        spec.range = _range(values.get("min"), values.get("max"), integer=value_kind == "int")
        if spec.range is not None:
            spec.severity = {"out_of_range": "warning"}
    spec.max_distinct = _max_distinct(values, value_kind)
    return spec


def _floor2(x: float) -> float:
    return max(0.0, math.floor(round(x * 100, 6)) / 100)


def _presence(count: int, num_rows: int) -> tuple[float, bool]:
    """``(min_presence, nullable)``; see the module docstring."""
    if num_rows == 0:
        return 0.0, True
    if count == num_rows and num_rows >= REQUIRED_MIN_ROWS:
        return 1.0, False
    p = count / num_rows
    smoothed = (count + 1) / (num_rows + 2)  # so that 0 missing in 20 rows is not certainty
    se = math.sqrt(smoothed * (1 - smoothed) * (1 / REFERENCE_ROWS + 1 / num_rows))
    return _floor2(p - max(PRESENCE_MARGIN, 4 * se)), True


def _complete_counts(fs: dict[str, Any]) -> list[tuple[str, int]] | None:
    """Every value with its count, or None when the statistics hold only the top ones."""
    top = fs.get("top_values")
    if top is None or fs.get("distinct_is_estimate") or len(top) != fs.get("distinct"):
        return None
    return [(str(v), int(c)) for v, c in top]


def _domain(fs: dict[str, Any]) -> tuple[list[str], float] | None:
    counts = _complete_counts(fs)
    if not counts or len(counts) > DOMAIN_MAX:
        return None
    total = sum(c for _, c in counts)
    if total < DOMAIN_MIN_REPEATS * len(counts):
        return None
    unseen = sum(c == 1 for _, c in counts) / total  # Good-Turing: mass of unseen values
    if unseen > DOMAIN_MAX_UNSEEN:
        return None
    tolerance = max(DOMAIN_MIN_TOLERANCE, math.ceil(round(2 * unseen * 100, 6)) / 100)
    return sorted(v for v, _ in counts), tolerance


def _range(lo: Any, hi: Any, *, integer: bool) -> tuple[float, float] | None:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    width = hi - lo
    margin = RANGE_MARGIN * width if width > 0 else max(1.0, RANGE_MARGIN * abs(hi))
    low, high = lo - margin, hi + margin
    if lo >= 0:
        low = max(0.0, low)
    step = 10.0 ** (math.floor(math.log10(high - low)) - 1)
    if integer:
        step = max(step, 1.0)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    if integer:
        return int(low), int(high)
    digits = max(0, -math.floor(math.log10(step)))
    return round(low, digits), round(high, digits)


def _max_distinct(fs: dict[str, Any], kind: str) -> int | None:
    distinct = fs.get("distinct")
    if distinct is None or fs.get("distinct_is_estimate") or distinct == 0 or kind == "bool":
        return None
    if kind == "string":
        counts = _complete_counts(fs)
        if counts is None or min(c for _, c in counts) < SATURATED_MIN_COUNT:
            return None
    elif kind != "int" or fs["count"] < INT_SATURATED_REPEATS * distinct:
        return None
    return 2 * int(distinct) + 10


def update_schema(curated: Schema, stats: dict[str, Any]) -> Schema:
    """``curated`` changed only where the data of ``stats`` contradicts it.

    Each anomaly of the data against ``curated`` is resolved by the field that raised it,
    taken from (or widened towards) what the data shows; a value that did not parse is no
    schema change (the data has to be fixed) and neither is a duplicate key."""
    from lockgate.data.validate import find_anomalies

    inferred = Schema.from_statistics(stats)
    features = dict(curated.features)
    for anomaly in find_anomalies(stats, curated):
        name, kind = anomaly.feature, anomaly.kind
        if kind == "new_column" and name in inferred.features:
            features[name] = inferred.features[name]
        elif kind == "missing_column":
            features.pop(name, None)
        elif name in features and name in inferred.features:
            features[name] = _resolve(features[name], inferred.features[name], kind, anomaly)
    key = [c for c in curated.key or [] if c in features] or None
    return Schema(features, key=key)


def _resolve(spec: FeatureSpec, seen: FeatureSpec, kind: str, anomaly: Any) -> FeatureSpec:
    """``spec`` with the field behind one anomaly of ``kind`` made to fit ``seen``."""
    if kind == "type_mismatch" and isinstance(anomaly.seen, str):  # the column's type changed
        keep = {k: getattr(spec, k) for k in ("severity", "drift_threshold", "skew_threshold")}
        return dataclasses.replace(seen, **keep)
    if kind == "unexpected_value" and spec.domain is not None:
        added = [v for v in (seen.domain or anomaly.seen or []) if v not in spec.domain]
        return dataclasses.replace(spec, domain=[*spec.domain, *added])
    if kind == "out_of_range" and spec.range is not None and spec.type != "list":
        wider = seen.range or tuple(anomaly.seen)
        lo, hi = min(spec.range[0], wider[0]), max(spec.range[1], wider[1])
        return dataclasses.replace(spec, range=(lo, hi))
    if kind == "out_of_range" and spec.value_count is not None:
        counts = [c for c in (spec.value_count, seen.value_count) if c is not None]
        lo, hi = min(c[0] for c in counts), max(c[1] for c in counts)
        seen_min, seen_max = anomaly.seen if isinstance(anomaly.seen, list) else (lo, hi)
        return dataclasses.replace(spec, value_count=(min(lo, seen_min), max(hi, seen_max)))
    if kind == "presence":
        return dataclasses.replace(spec, min_presence=min(spec.min_presence, seen.min_presence))
    if kind == "unexpected_null":
        return dataclasses.replace(spec, nullable=True, min_presence=seen.min_presence)
    if kind == "cardinality_jump" and spec.max_distinct is not None:
        return dataclasses.replace(spec, max_distinct=seen.max_distinct)
    return spec
