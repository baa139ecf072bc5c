"""Compare a span's statistics with the schema and list what does not fit.

Anomalies are findings, not exceptions: the gate (``validate_examples``) decides from their
severity whether the run stops. Each message is one line: the feature, what the schema
expects, what the data shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from lockgate.data.schema import Schema

__all__ = ["KINDS", "Anomaly", "find_anomalies"]

KINDS = (
    "missing_column",
    "new_column",
    "type_mismatch",
    "presence",
    "unexpected_value",
    "out_of_range",
)
_SHOWN_VALUES = 10


@dataclass(frozen=True)
class Anomaly:
    """One way a feature differs from the schema. ``count`` is affected rows, if known."""

    feature: str
    kind: str
    severity: Literal["error", "warning"]
    expected: Any
    seen: Any
    count: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _type_ok(expected: str, seen: str) -> bool:
    return seen == expected or seen == "null" or (expected == "float" and seen == "int")


def find_anomalies(stats: dict[str, Any], schema: Schema) -> list[Anomaly]:
    """Every anomaly of ``stats`` against ``schema``, in schema order, then new columns."""
    out: list[Anomaly] = []
    seen_features: dict[str, dict[str, Any]] = stats["features"]
    num_rows: int = stats["num_rows"]
    for name, spec in schema.features.items():
        fs = seen_features.get(name)
        if fs is None:
            out.append(
                Anomaly(
                    name,
                    "missing_column",
                    "error",
                    spec.type,
                    None,
                    num_rows,
                    f"feature '{name}': column missing; expected a {spec.type} column",
                )
            )
            continue
        if not _type_ok(spec.type, fs["type"]):
            out.append(
                Anomaly(
                    name,
                    "type_mismatch",
                    "error",
                    spec.type,
                    fs["type"],
                    fs["count"],
                    f"feature '{name}': expected type {spec.type}; saw {fs['type']}",
                )
            )
            continue
        out.extend(_presence(name, spec.min_presence, fs, num_rows))
        if spec.domain is not None and fs.get("top_values") is not None:
            out.extend(_domain(name, spec.domain, fs))
        if spec.range is not None and fs.get("min") is not None:
            out.extend(_range(name, spec.range, fs))
    for name, fs in seen_features.items():
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
    return out


def _presence(name: str, min_presence: float, fs: dict[str, Any], num_rows: int) -> list[Anomaly]:
    if num_rows == 0:
        return []
    presence = fs["count"] / num_rows
    if presence >= min_presence:
        return []
    return [
        Anomaly(
            name,
            "presence",
            "error",
            min_presence,
            presence,
            fs["missing"],
            f"feature '{name}': expected a value in at least {min_presence:.1%} of rows; "
            f"saw {presence:.1%} ({fs['missing']} of {num_rows} missing)",
        )
    ]


def _domain(name: str, domain: list[str], fs: dict[str, Any]) -> list[Anomaly]:
    allowed = set(domain)
    top = fs["top_values"]
    bad = [(v, c) for v, c in top if v not in allowed]
    # top_values is cut at TOP_K: past it, more distinct values than the domain allows
    # proves an unexpected value even when none is among the listed ones.
    partial = fs.get("distinct_is_estimate") or fs["distinct"] > len(top)
    if not bad and not (partial and fs["distinct"] > len(allowed)):
        return []
    values = [v for v, _ in bad]
    count = sum(c for _, c in bad)
    shown = ", ".join(repr(v) for v in values[:_SHOWN_VALUES]) or "values beyond the top ones"
    more = f" and {len(values) - _SHOWN_VALUES} more" if len(values) > _SHOWN_VALUES else ""
    partial_note = " (at least; only the top values are counted)" if partial else ""
    return [
        Anomaly(
            name,
            "unexpected_value",
            "error",
            list(domain),
            values,
            count,
            f"feature '{name}': expected values in {sorted(domain)}; "
            f"saw {shown}{more} in {count} rows{partial_note}",
        )
    ]


def _range(name: str, rng: tuple[float, float], fs: dict[str, Any]) -> list[Anomaly]:
    lo, hi = rng
    if lo <= fs["min"] and fs["max"] <= hi:
        return []
    return [
        Anomaly(
            name,
            "out_of_range",
            "error",
            [lo, hi],
            [fs["min"], fs["max"]],
            None,
            f"feature '{name}': expected values in [{lo}, {hi}]; "
            f"saw min {fs['min']}, max {fs['max']}",
        )
    ]
