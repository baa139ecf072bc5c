"""The finding that validation and drift detection share: one ``Anomaly`` per problem.

It lives apart from ``validate`` so that ``drift`` can produce anomalies without importing
the validator (and the validator can run drift detection against the previous span).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["DEFAULT_SEVERITY", "KINDS", "SEVERITIES", "Anomaly", "Severity"]

Severity = Literal["error", "warning"]
SEVERITIES: tuple[str, ...] = ("error", "warning")

#: Every kind, with the severity it has unless the schema says otherwise. A new column and a
#: drift or skew over a *default* threshold only report: neither was asked for by anybody.
#: (A threshold written in the schema makes drift and skew errors; see ``drift``.) A span
#: with no rows is one anomaly of its own (as in TFDV), always an error: nothing can be
#: checked, trained or evaluated on it.
DEFAULT_SEVERITY: dict[str, Severity] = {
    "no_rows": "error",
    "missing_column": "error",
    "new_column": "warning",
    "type_mismatch": "error",
    "presence": "error",
    "unexpected_value": "error",
    "out_of_range": "error",
    "unexpected_null": "error",
    "cardinality_jump": "error",
    "duplicate_key": "error",
    "drift": "warning",
    "skew": "warning",
}
KINDS: tuple[str, ...] = tuple(DEFAULT_SEVERITY)


@dataclass(frozen=True)
class Anomaly:
    """One way a feature differs from the schema. ``count`` is affected rows, if known."""

    feature: str
    kind: str
    severity: Severity
    expected: Any
    seen: Any
    count: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
