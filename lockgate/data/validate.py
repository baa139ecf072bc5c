"""Compare a span's statistics with the schema and list what does not fit.

Anomalies are findings, not exceptions: the gate (``validate_examples``) decides from their
severity whether the run stops, and the schema sets that severity per feature and kind.
Each message is one line: the feature, what the schema expects, what the data shows.

Everything is decided from statistics, so a span is read once however many checks run.
Duplicate keys are the exception: statistics hold an exact distinct count only for a
single key column with few enough values; otherwise pass the count from
``lockgate.data.keys.find_duplicate_keys`` (computed on the data) as ``duplicate_keys``.
"""

from __future__ import annotations

from typing import Any

from lockgate.data.anomaly import KINDS, Anomaly
from lockgate.data.schema import FeatureSpec, Schema

__all__ = ["KINDS", "Anomaly", "find_anomalies", "invalid_value_anomalies"]

_SHOWN_VALUES = 10
#: HyperLogLog's relative standard error at the precision statistics use (p=12) is 1.6%;
#: an estimated distinct count this far below the row count is duplicates, not noise.
_HLL_DUPLICATE_GAP = 0.08


def find_anomalies(
    stats: dict[str, Any],
    schema: Schema,
    *,
    previous_stats: dict[str, Any] | None = None,
    duplicate_keys: int | None = None,
    bad_value_nulls: dict[str, int] | None = None,
) -> list[Anomaly]:
    """Every anomaly of ``stats`` against ``schema``: per schema feature in order, then new
    columns, then values that did not parse (``stats["invalid_values"]``, when reading kept
    them as nulls), then duplicate keys, then (with ``previous_stats``, the span before) drift. A
    span with no rows is the one anomaly ``no_rows``.

    ``previous_stats`` also bounds the cardinality: distinct values may not more than
    double the previous span's, scaled to this span's rows.

    Nulls that were values that did not parse are not missing values: they are reported
    once, as ``type_mismatch``, and ``bad_value_nulls`` ({feature: nulls}; by default the
    counts in ``stats["invalid_values"]``) are left out of the presence checks.
    """
    if stats["num_rows"] == 0:
        return [_no_rows(stats)]
    out: list[Anomaly] = []
    features: dict[str, dict[str, Any]] = stats["features"]
    previous = (previous_stats or {}).get("features", {})
    if bad_value_nulls is None:
        invalid = stats.get("invalid_values") or {}
        bad_value_nulls = {name: found["count"] for name, found in invalid.items()}
    for name, spec in schema.features.items():
        fs = features.get(name)
        if fs is None:
            out.append(
                _anomaly(
                    name,
                    spec,
                    "missing_column",
                    spec.type,
                    None,
                    stats["num_rows"],
                    f"feature '{name}': column missing; expected a {spec.type} column",
                )
            )
            continue
        if bad_value_nulls.get(name):
            fs = _without_bad_value_nulls(fs, bad_value_nulls[name])
        out.extend(_feature(name, spec, fs, stats["num_rows"], previous.get(name)))
    for name, fs in features.items():
        if name not in schema.features:
            out.append(
                Anomaly(
                    name,
                    "new_column",
                    "warning",
                    None,
                    fs["type"],
                    fs["count"],
                    f"feature '{name}': not in the schema; saw a {fs['type']} column "
                    "(add it to the schema or drop it)",
                )
            )
    out.extend(invalid_value_anomalies(stats, schema))
    out.extend(_duplicates(stats, schema, duplicate_keys))
    if previous_stats is not None:
        from lockgate.data.drift import compare_statistics

        out.extend(compare_statistics(previous_stats, stats, schema=schema).anomalies())
    return out


#: The ``feature`` of an anomaly about the whole span.
DATASET = "(dataset)"


def _no_rows(stats: dict[str, Any]) -> Anomaly:
    """Every check of a span without rows would pass vacuously (or, without its columns,
    report each one missing): one anomaly says what is wrong instead."""
    msg = (
        f"no rows: expected at least one row; saw 0 rows of {len(stats['features'])} "
        "columns (a header-only file or an empty span)"
    )
    return Anomaly(DATASET, "no_rows", "error", ">= 1 row", 0, 0, msg)


def _anomaly(
    name: str, spec: FeatureSpec | None, kind: str, expected: Any, seen: Any, count: Any, msg: str
) -> Anomaly:
    severity = spec.severity_for(kind) if spec is not None else "error"
    return Anomaly(name, kind, severity, expected, seen, count, msg)


def _type_ok(expected: str, seen: str) -> bool:
    return seen == expected or seen == "null" or (expected == "float" and seen == "int")


def _feature(
    name: str, spec: FeatureSpec, fs: dict[str, Any], num_rows: int, prev: dict[str, Any] | None
) -> list[Anomaly]:
    if not _type_ok(spec.type, fs["type"]):
        msg = f"feature '{name}': expected type {spec.type}; saw {fs['type']}"
        return [_anomaly(name, spec, "type_mismatch", spec.type, fs["type"], fs["count"], msg)]
    out = _presence(name, spec, fs, num_rows)
    values = fs.get("values", {}) if spec.type == "list" else fs
    prev_values = (prev or {}).get("values", {}) if spec.type == "list" else prev
    if spec.domain is not None and values.get("top_values") is not None:
        out.extend(_domain(name, spec, values))
    if spec.range is not None and values.get("min") is not None:
        out.extend(_range(name, spec, values))
    if spec.value_count is not None and fs.get("value_count", {}).get("min") is not None:
        out.extend(_value_count(name, spec, fs["value_count"]))
    out.extend(_cardinality(name, spec, values, prev_values))
    return out


def _without_bad_value_nulls(fs: dict[str, Any], nulls: int) -> dict[str, Any]:
    """``fs`` as if the values that did not parse had been present (for presence only)."""
    kept = min(nulls, fs["missing"])
    return dict(fs, missing=fs["missing"] - kept, count=fs["count"] + kept)


def _presence(name: str, spec: FeatureSpec, fs: dict[str, Any], num_rows: int) -> list[Anomaly]:
    missing = fs["missing"]
    if num_rows == 0:
        return []
    if not spec.nullable and missing:
        msg = (
            f"feature '{name}': expected no missing value; saw {missing} of {num_rows} rows missing"
        )
        return [_anomaly(name, spec, "unexpected_null", 0, missing, missing, msg)]
    presence = fs["count"] / num_rows
    if presence >= spec.min_presence:
        return []
    msg = (
        f"feature '{name}': expected a value in at least {spec.min_presence:.1%} of rows; "
        f"saw {presence:.1%} ({missing} of {num_rows} missing)"
    )
    return [_anomaly(name, spec, "presence", spec.min_presence, presence, missing, msg)]


def _domain(name: str, spec: FeatureSpec, fs: dict[str, Any]) -> list[Anomaly]:
    """Values outside the domain, as a fraction of values, against ``domain_tolerance``.

    ``top_values`` may be cut short; a domain value not listed then has at most the
    smallest listed count, which bounds the rows outside the domain from below.
    """
    domain = spec.domain or []
    allowed = set(domain)
    top: list[list[Any]] = fs["top_values"]
    count: int = fs["count"]
    bad = [(str(v), int(c)) for v, c in top if str(v) not in allowed]
    inside = sum(int(c) for v, c in top if str(v) in allowed)
    complete = not fs.get("distinct_is_estimate") and fs.get("distinct") == len(top)
    outside = count - inside
    if not complete:
        unlisted = len(allowed - {str(v) for v, _ in top})
        smallest = min((int(c) for _, c in top), default=0)
        outside = max(sum(c for _, c in bad), outside - unlisted * smallest)
    if count == 0 or outside <= 0 or outside / count <= spec.domain_tolerance:
        return []
    values = [v for v, _ in bad]
    shown = ", ".join(repr(v) for v in values[:_SHOWN_VALUES]) or "values beyond the top ones"
    more = f" and {len(values) - _SHOWN_VALUES} more" if len(values) > _SHOWN_VALUES else ""
    at_least = "" if complete else "at least "
    tolerated = f", tolerated {spec.domain_tolerance:.1%}" if spec.domain_tolerance else ""
    msg = (
        f"feature '{name}': expected values in {sorted(domain)}; saw {shown}{more} in "
        f"{at_least}{outside} rows ({outside / count:.1%} of values{tolerated})"
    )
    return [_anomaly(name, spec, "unexpected_value", list(domain), values, outside, msg)]


def _range(name: str, spec: FeatureSpec, fs: dict[str, Any]) -> list[Anomaly]:
    lo, hi = spec.range or (None, None)
    if lo <= fs["min"] and fs["max"] <= hi:
        return []
    msg = f"feature '{name}': expected values in [{lo}, {hi}]; saw min {fs['min']}, max {fs['max']}"
    return [_anomaly(name, spec, "out_of_range", [lo, hi], [fs["min"], fs["max"]], None, msg)]


def _value_count(name: str, spec: FeatureSpec, vc: dict[str, Any]) -> list[Anomaly]:
    lo, hi = spec.value_count or (0, 0)
    if lo <= vc["min"] and vc["max"] <= hi:
        return []
    msg = (
        f"feature '{name}': expected {lo} to {hi} values per row; "
        f"saw min {vc['min']}, max {vc['max']}"
    )
    return [_anomaly(name, spec, "out_of_range", [lo, hi], [vc["min"], vc["max"]], None, msg)]


def _cardinality(
    name: str, spec: FeatureSpec, fs: dict[str, Any], prev: dict[str, Any] | None
) -> list[Anomaly]:
    """Against the schema's ``max_distinct``; else against the previous span: the expected
    distinct count grows at most in proportion to the rows (it is concave in them), so more
    than twice that, plus 10 for small counts, is a jump and not a bigger span."""
    distinct = fs.get("distinct")
    if distinct is None:
        return []
    if spec.max_distinct is not None:
        if distinct <= spec.max_distinct:
            return []
        limit, why = spec.max_distinct, "max_distinct"
    elif prev and prev.get("distinct") and prev.get("count"):
        scale = max(1.0, fs["count"] / prev["count"])
        limit = int(2 * prev["distinct"] * scale + 10)
        if distinct <= limit:
            return []
        why = f"twice the previous span's {prev['distinct']}, scaled to the rows, + 10"
    else:
        return []
    about = "about " if fs.get("distinct_is_estimate") else ""
    msg = (
        f"feature '{name}': expected at most {limit} distinct values ({why}); saw {about}{distinct}"
    )
    return [_anomaly(name, spec, "cardinality_jump", limit, distinct, None, msg)]


def invalid_value_anomalies(stats: dict[str, Any], schema: Schema) -> list[Anomaly]:
    """A ``type_mismatch`` per column whose values did not all parse as its type (the
    schema's, else the type most of the column has), from the ``invalid_values`` that
    reading kept as nulls: the count and the first few values with their lines."""
    out: list[Anomaly] = []
    for name, found in (stats.get("invalid_values") or {}).items():
        spec = schema.features.get(name)
        expected = spec.type if spec is not None else found.get("expected")
        examples = list(found.get("examples", []))
        shown = ", ".join(f"{e['value']!r} at line {e['line']}" for e in examples)
        more = " and more" if found["count"] > len(examples) else ""
        msg = (
            f"feature '{name}': expected {expected} values; {found['count']} did not parse "
            f"as {found.get('expected') or expected}: {shown}{more}"
        )
        out.append(_anomaly(name, spec, "type_mismatch", expected, examples, found["count"], msg))
    return out


def duplicate_key_anomalies(schema: Schema, duplicates: int) -> list[Anomaly]:
    """The ``duplicate_key`` anomaly for ``duplicates`` rows counted on the data (e.g. over
    every split at once, where a key repeated across train and eval is a leak)."""
    return _duplicates({"features": {}}, schema, duplicates)


def _duplicates(stats: dict[str, Any], schema: Schema, given: int | None) -> list[Anomaly]:
    """From ``given`` (counted on the data) or, for a single key column, its statistics."""
    if not schema.key:
        return []
    label = ", ".join(schema.key)
    spec = schema.features.get(schema.key[0])
    about = ""
    if given is not None:
        duplicates = given
    elif len(schema.key) == 1 and schema.key[0] in stats["features"]:
        fs = stats["features"][schema.key[0]]
        distinct, count = fs.get("distinct"), fs["count"]
        if distinct is None:
            return []
        duplicates = count - distinct
        if fs.get("distinct_is_estimate"):
            if distinct >= count * (1 - _HLL_DUPLICATE_GAP):
                return []  # within the sketch's error: cannot tell
            about = "about "
    else:
        return []
    if duplicates <= 0:
        return []
    msg = f"key ({label}): expected unique values; saw {about}{duplicates} rows repeating a key"
    return [_anomaly(label, spec, "duplicate_key", 0, duplicates, duplicates, msg)]
